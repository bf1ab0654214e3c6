// The cache manager core (Venus / afsd), independent of FUSE. Responsibilities:
//   1. the cells this client serves, their server links and volume locations
//   2. cached objects: statuses under callbacks, directory listings, container files
//   3. fetching whole files on demand and storing them back whole
//   4. taking callback breaks (demote, never evict) and evicting containers by LRU
import { createReadStream } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import {
  AfsError, makeLog, noSpace, notDir, notFound, tooLarge, formatSize, CHUNK_BYTES,
  type DirReply, type Fid, type StatusReply, type VnodeStatus,
} from '@afs-ts/common'
import { Cell } from './cell.ts'
import { ContainerStore } from './container-file.ts'
import { newCounters, type Counters } from './counters.ts'
import { hasData, isEvictable, isListed, type Dirent, type FsObject } from './fs-object.ts'
import { FsObjectTable, objectKey } from './fs-object-table.ts'
import { CALLBACK_SLACK_MS, DEFAULT_CACHE_BYTES } from './constants.ts'
import { ReadFdCache } from './read-fd-cache.ts'
import type { ServerLink } from './server-link.ts'

const log = makeLog('cache-manager')

export interface CacheManagerOptions {
  cacheDir: string
  /** One list of server addresses per cell. */
  cells: string[][]
  cacheBytes?: number
}

export class CacheManager {
  readonly counters: Counters = newCounters()
  readonly cells = new Map<string, Cell>()
  readonly table: FsObjectTable
  readonly containers: ContainerStore
  readonly cacheBytes: number
  readonly readFds = new ReadFdCache()
  usedBytes = 0
  private readonly inflight = new Map<string, Promise<void>>()
  private readonly locks = new Map<string, Promise<unknown>>()
  private clientId = ''

  constructor (readonly opts: CacheManagerOptions) {
    this.table = new FsObjectTable(opts.cacheDir)
    this.containers = new ContainerStore(opts.cacheDir)
    this.cacheBytes = opts.cacheBytes ?? DEFAULT_CACHE_BYTES
  }

  async ready (): Promise<void> {
    await mkdir(this.opts.cacheDir, { recursive: true })
    this.clientId = await this.loadClientId()
    await this.containers.ready()
    this.table.load()
    await this.reconcileContainers()
    for (const servers of this.opts.cells) {
      const cell = new Cell(servers, this.clientId, this.counters, (c, link) => this.watchLink(c, link))
      await cell.ready()
      this.cells.set(cell.name, cell)
      log.info(`cell ${cell.name} via ${servers.join(', ')}`)
    }
  }

  async close (): Promise<void> {
    this.readFds.closeAll()
    for (const c of this.cells.values()) c.close()
    await this.table.close()
  }

  private async loadClientId (): Promise<string> {
    const file = join(this.opts.cacheDir, 'client-id')
    try { return (await readFile(file, 'utf8')).trim() } catch { /* first start */ }
    const id = randomUUID()
    await writeFile(file, id + '\n')
    return id
  }

  /** Drops records of containers that vanished and containers nobody records. */
  private async reconcileContainers (): Promise<void> {
    const present = new Set(await this.containers.list())
    for (const o of this.table.values()) {
      if (o.cachedVersion === null) continue
      if (!present.has(o.key)) { o.cachedVersion = null; o.cachedBytes = 0; o.dirty = false; continue }
      present.delete(o.key)
      this.usedBytes += o.cachedBytes
    }
    for (const stray of present) await this.containers.remove(stray)
  }

  private watchLink (cell: Cell, link: ServerLink): void {
    link.on('break', (fids: Fid[]) => {
      for (const fid of fids) {
        this.counters.callbackBreaks++
        const o = this.table.get(objectKey(cell.name, fid))
        if (o) o.cbExpiresAt = 0
      }
    })
  }

  cell (name: string): Cell {
    const c = this.cells.get(name)
    if (!c) throw notFound(`no cell named ${name}`)
    return c
  }

  // ---- statuses under callbacks ----

  hasCallback (o: FsObject, now = Date.now()): boolean {
    if (o.cbExpiresAt - CALLBACK_SLACK_MS <= now) return false
    const link = this.cell(o.cell).linkFor(o.status.fid.volume)
    return link.connected && link.epoch === o.cbEpoch
  }

  /** Takes a status reply from a server: refreshes the object and its callback. */
  accept (cell: Cell, reply: StatusReply): FsObject {
    const o = this.table.upsert(cell.name, reply.status)
    o.cbExpiresAt = reply.callback.expiresAt
    o.cbEpoch = cell.linkFor(reply.status.fid.volume).epoch
    void this.table.save(o)
    return o
  }

  /** Refreshes a status we got as a side effect of a mutation (no callback change). */
  update (cell: Cell, status: VnodeStatus): FsObject {
    const o = this.table.upsert(cell.name, status)
    void this.table.save(o)
    return o
  }

  /** The cached object for `fid` if a callback still covers it (no I/O: the hot path). */
  cachedObject (cell: Cell, fid: Fid): FsObject | null {
    const o = this.table.get(objectKey(cell.name, fid))
    if (!o || !this.hasCallback(o)) return null
    o.lastUse = Date.now()
    return o
  }

  /** A directory's cached entries if they are current under a callback. */
  cachedEntries (dir: FsObject): Map<string, Dirent> | null {
    return isListed(dir) && this.hasCallback(dir) ? dir.entries : null
  }

  /** The object for `fid` with a trustworthy status: from cache under a callback, else one fetchStatus. */
  async object (cell: Cell, fid: Fid): Promise<FsObject> {
    const o = this.table.get(objectKey(cell.name, fid))
    if (o && this.hasCallback(o)) { o.lastUse = Date.now(); return o }
    await cell.volumeById(fid.volume)
    const reply = await cell.linkFor(fid.volume).call('fetchStatus', { fid }) as StatusReply
    const fresh = this.accept(cell, reply)
    fresh.lastUse = Date.now()
    return fresh
  }

  /** A directory's entries, listed from the server unless cached at its current version. */
  async entries (cell: Cell, dir: FsObject): Promise<Map<string, Dirent>> {
    if (dir.status.type !== 'dir') throw notDir('not a directory')
    if (isListed(dir)) return dir.entries!
    await this.once(dir.key, () => this.list(cell, dir))
    return dir.entries ?? new Map()
  }

  private async list (cell: Cell, dir: FsObject): Promise<void> {
    const fid = dir.status.fid
    for (let attempt = 0; attempt < 5; attempt++) {
      const entries = new Map<string, Dirent>()
      let after: string | undefined
      let first: DirReply | null = null
      let last: DirReply
      do {
        last = await cell.linkFor(fid.volume).call('fetchDir', after === undefined ? { fid } : { fid, after }) as DirReply
        first ??= last
        for (const [name, f, type] of last.entries) { entries.set(name, { fid: f, type }); after = name }
      } while (last.more && last.status.dataVersion === first.status.dataVersion)
      if (last.status.dataVersion !== first.status.dataVersion) continue // changed under us: list again
      this.accept(cell, last)
      dir.entries = entries
      dir.listedVersion = last.status.dataVersion
      void this.table.saveListing(dir)
      return
    }
    throw new AfsError('BUSY', 'directory keeps changing while listed')
  }

  /**
   * Applies our own changes to a cached listing. Safe when we still hold the directory's
   * callback (nobody else changed it: every other change is one of ours, applied by its
   * own reply) or when `dirStatus` is exactly one version past the listing.
   */
  applyEntries (cell: Cell, dirStatus: VnodeStatus, changes: Array<[string, Dirent | null]>): void {
    const dir = this.table.get(objectKey(cell.name, dirStatus.fid))
    const trusted = dir !== undefined && dir.entries !== null && (this.hasCallback(dir) || dir.listedVersion === dirStatus.dataVersion - 1)
    this.update(cell, dirStatus)
    if (!dir?.entries) return
    if (!trusted) {
      dir.entries = null
      dir.listedVersion = -1
      void this.table.save(dir)
      return
    }
    for (const [name, d] of changes) {
      if (d) dir.entries.set(name, d)
      else dir.entries.delete(name)
      this.table.saveEntry(dir, name, d)
    }
    dir.listedVersion = Math.max(dir.listedVersion, dirStatus.dataVersion)
    void this.table.save(dir)
  }

  // ---- whole-file data ----

  /** Makes sure the container holds the current version of a file (fetching it whole if not). */
  async ensureData (cell: Cell, o: FsObject): Promise<void> {
    if (hasData(o)) return
    await this.once(o.key, () => this.fetch(cell, o))
  }

  private async fetch (cell: Cell, o: FsObject): Promise<void> {
    if (hasData(o)) return
    const size = o.status.size
    if (size > this.cacheBytes) {
      log.error(`cannot cache ${o.key}: it is ${formatSize(size)} and the cache holds ${formatSize(this.cacheBytes)}`)
      throw tooLarge(`file of ${size} bytes is larger than the cache (${this.cacheBytes} bytes)`)
    }
    await this.makeRoom(size, o.key)
    const { result, body } = await cell.linkFor(o.status.fid.volume).download('fetchData', { fid: o.status.fid })
    const reply = result as StatusReply
    this.counters.fetches++
    const bytes = await this.containers.fill(o.key, body)
    this.counters.bytesFetched += bytes
    this.accept(cell, reply)
    this.setCached(o, reply.status.dataVersion, bytes)
  }

  /** Stores a dirty container whole; later writes keep it dirty. Serialized per object. */
  async store (cell: Cell, o: FsObject): Promise<void> {
    await this.serialize(o.key, async () => {
      if (!o.dirty) return
      const gen = o.writeGen
      const size = await this.containers.size(o.key)
      let reply: StatusReply
      try {
        reply = await cell.linkFor(o.status.fid.volume).upload('store',
          { fid: o.status.fid, size, mtimeMs: o.localMtimeMs || Date.now() },
          size === 0 ? noBytes() : createReadStream(this.containers.path(o.key), { start: 0, end: size - 1, highWaterMark: CHUNK_BYTES })) as StatusReply
      } catch (err) {
        if (isRejection(err)) await this.discardLocal(o)
        throw err
      }
      this.counters.stores++
      this.counters.bytesStored += size
      this.accept(cell, reply)
      if (o.writeGen === gen) o.dirty = false
      this.setCached(o, reply.status.dataVersion, size)
    })
    await this.trim()
  }

  /** The server refused a store for good (quota, space, gone): the copy reverts to the server's. */
  private async discardLocal (o: FsObject): Promise<void> {
    log.warn(`store of ${o.key} refused; local changes dropped, the server's version stays`)
    o.dirty = false
    o.cbExpiresAt = 0
    this.readFds.drop(o.key)
    await this.containers.remove(o.key)
    this.setCached(o, null, 0)
  }

  setCached (o: FsObject, version: number | null, bytes: number): void {
    this.usedBytes += bytes - o.cachedBytes
    o.cachedVersion = version
    o.cachedBytes = bytes
    void this.table.save(o)
  }

  /** Evicts least recently used containers until `bytes` more fit. Never open or dirty ones. */
  async makeRoom (bytes: number, except?: string): Promise<void> {
    if (this.usedBytes + bytes <= this.cacheBytes) return
    const victims = [...this.table.values()].filter(o => isEvictable(o) && o.key !== except).sort((a, b) => a.lastUse - b.lastUse)
    for (const v of victims) {
      if (this.usedBytes + bytes <= this.cacheBytes) return
      await this.evict(v)
    }
    if (this.usedBytes + bytes > this.cacheBytes) {
      throw noSpace(`cache full: ${formatSize(this.usedBytes)} of ${formatSize(this.cacheBytes)} held by open or unsaved files`)
    }
  }

  /** Evicts what it can to get back under the limit (dirty containers may have pushed past it). */
  async trim (): Promise<void> {
    await this.makeRoom(0).catch(() => {})
  }

  async evict (o: FsObject): Promise<void> {
    if (!isEvictable(o)) return
    this.readFds.drop(o.key)
    await this.containers.remove(o.key)
    this.setCached(o, null, 0)
    this.counters.evictions++
  }

  /** Forgets an object that no longer exists. */
  async forget (o: FsObject): Promise<void> {
    if (o.openCount > 0) { o.cbExpiresAt = 0; return }
    this.readFds.drop(o.key)
    if (o.cachedVersion !== null) await this.containers.remove(o.key)
    this.usedBytes -= o.cachedBytes
    this.table.delete(o.key)
  }

  /** Runs `fn` once for concurrent callers on the same key. */
  private once (key: string, fn: () => Promise<void>): Promise<void> {
    let p = this.inflight.get(key)
    if (!p) {
      p = fn().finally(() => this.inflight.delete(key))
      this.inflight.set(key, p)
    }
    return p
  }

  /** Runs `fn` after every earlier `serialize` on the same key. Never awaits an RPC while holding anything else. */
  async serialize<T> (key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve()
    const run = prev.catch(() => {}).then(fn)
    this.locks.set(key, run)
    try { return await run } finally { if (this.locks.get(key) === run) this.locks.delete(key) }
  }
}

async function * noBytes (): AsyncIterable<Buffer> { /* an empty file */ }

/** Errors after which retrying the same store cannot succeed. */
function isRejection (err: unknown): boolean {
  return err instanceof AfsError && ['QUOTA', 'NO_SPACE', 'NOT_FOUND', 'PERMISSION', 'IS_DIR', 'INVALID'].includes(err.code)
}
