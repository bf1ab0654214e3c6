// The cache's space (Venus' replacement policy over its container files): the bytes
// containers and chunks hold and fetches have been promised, the priority of each object
// — hoard priority and recent use, 75:25 as in Coda — and eviction, lowest priority first.
// Never evicts open, dirty, logged or conflicted containers. Chunks of files too big to
// cache whole go before any container: a file streamed through the cache leaves the rest.
import { formatSize, noSpace } from '@afs-ts/common'
import type { ClientModifyLog } from './cml.ts'
import type { ContainerStore } from './container-file.ts'
import type { Counters } from './counters.ts'
import type { FsObjectTable } from './fs-object-table.ts'
import type { ReadFdCache } from './read-fd-cache.ts'
import { isEvictable, type FsObject } from './fs-object.ts'

/** What space accounting needs of the cache manager. */
export interface CacheSpaceDeps {
  readonly table: FsObjectTable
  readonly cml: Pick<ClientModifyLog, 'references'>
  readonly readFds: Pick<ReadFdCache, 'drop'>
  readonly containers: Pick<ContainerStore, 'remove' | 'chunks'>
  readonly counters: Counters
}

export class CacheSpace {
  usedBytes = 0
  /** Space promised to fetches under way. */
  reservedBytes = 0
  /** Hoard priority (1–1000) of each hoarded object, by key, from the last hoard walk. */
  hoardPriorities = new Map<string, number>()

  constructor (private readonly d: CacheSpaceDeps, readonly limitBytes: number) {}

  /** Bytes held: containers' and chunks'. */
  get heldBytes (): number {
    return this.usedBytes + this.d.containers.chunks.bytes
  }

  setCached (o: FsObject, version: number | null, bytes: number): void {
    this.usedBytes += bytes - o.cachedBytes
    o.cachedVersion = version
    o.cachedBytes = bytes
    void this.d.table.save(o)
  }

  /**
   * Evicts until `bytes` more fit: chunks first, least recently read first, those a reader
   * needs next last; then containers, never open, dirty, logged or conflicted ones. An
   * object's priority weighs its hoard priority and how recently it was used 75:25, as
   * Coda does; only objects of lower priority than the one that needs the room (`incoming`)
   * go, unhoarded ones before hoarded ones, lowest first. Incoming priority 0 (a prefetch)
   * evicts nothing.
   */
  async makeRoom (bytes: number, except?: string, incoming = Infinity): Promise<void> {
    const fits = () => this.heldBytes + this.reservedBytes + bytes <= this.limitBytes
    if (fits()) return
    if (incoming > 0) await this.d.containers.chunks.evict(fits, false)
    for (const [v, score] of this.evictionOrder(except)) {
      if (fits()) break
      if (score >= incoming) continue
      await this.evict(v)
    }
    if (incoming > 0) await this.d.containers.chunks.evict(fits, true)
    if (!fits()) {
      throw noSpace(`cache full: ${formatSize(this.heldBytes)} of ${formatSize(this.limitBytes)} held by open, unsaved or higher-priority files`)
    }
  }

  /** The priority an object has when it is being used right now. */
  usePriority (key: string): number {
    return 0.75 * (this.hoardPriorities.get(key) ?? 0) + 0.25 * 1000
  }

  /**
   * The priority of a hoard walk's fetch: the hoard priority alone (a walk is not a use),
   * so hoarded files of one priority that do not all fit do not evict each other on
   * every walk, and a walk never pushes out what the user is reading.
   */
  hoardFetchPriority (key: string): number {
    return 0.75 * (this.hoardPriorities.get(key) ?? 0)
  }

  /** Evictable objects with their priorities, first to go first. */
  evictionOrder (except?: string): Array<[FsObject, number]> {
    const victims = [...this.d.table.values()].filter(o => isEvictable(o) && o.key !== except && !this.d.cml.references(o.cell, o.status.fid))
    victims.sort((a, b) => a.lastUse - b.lastUse)
    const n = Math.max(1, victims.length)
    const scored = victims.map((o, i): [FsObject, number] => [o, 0.75 * (this.hoardPriorities.get(o.key) ?? 0) + 0.25 * 1000 * (i / n)])
    const hoarded = (o: FsObject) => this.hoardPriorities.has(o.key) ? 1 : 0
    return scored.sort(([a, sa], [b, sb]) => hoarded(a) - hoarded(b) || sa - sb)
  }

  /** Evicts what it can to get back under the limit (dirty containers may have pushed past it). */
  async trim (): Promise<void> {
    await this.makeRoom(0).catch(() => {})
  }

  /** Evicts an object's container, if it may go, and its chunks (always clean: a reader fetches them again). */
  async evict (o: FsObject): Promise<void> {
    await this.d.containers.chunks.drop(o.key)
    if (!isEvictable(o) || this.d.cml.references(o.cell, o.status.fid)) return // the log's data stays
    this.d.readFds.drop(o.key)
    await this.d.containers.remove(o.key)
    this.setCached(o, null, 0)
    this.d.counters.evictions++
  }
}
