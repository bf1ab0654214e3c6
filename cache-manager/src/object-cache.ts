// The objects this cache holds, as the namespace uses them (Coda's fsdb). Responsibilities:
//   1. statuses under callbacks: an object from cache while its promise holds, else one
//      fetchStatus — with every other cached object of its volume that lost its promise
//      too (a restart, a reconnection), in bulk; while its volume is unreachable, the
//      cached object as it is
//   2. directory listings: fetched in pages (a cold one with its children's statuses and
//      small files' bytes), kept at their version, our own changes applied in place, the
//      log's and the conflicts' names laid over the server's
//   3. taking callback breaks (demote, never evict) and revalidating all after a replay
//   4. forgetting objects whose last name is gone, and running concurrent work once
import {
  isUnreachable, AfsError, fidKey, formatRights, makeLog, notDir, notFound, permission, volumeOffline, BULK_STATUS_MAX, PREFETCH_FILE_MAX_BYTES,
  type DirReply, type Fid, type StatusReply, type VnodeStatus,
} from '@afs-ts/common'
import type { Cell } from './cell.ts'
import type { ContainerStore } from './container-file.ts'
import { demoteListing, isListed, type Dirent, type FsObject } from './fs-object.ts'
import { objectKey, type FsObjectTable } from './fs-object-table.ts'
import { CALLBACK_SLACK_MS } from './constants.ts'
import type { ReadFdCache } from './read-fd-cache.ts'
import { isLocalFid, type ClientModifyLog } from './cml.ts'
import type { LocalObjects } from './local-objects.ts'
import type { Counters } from './counters.ts'
import type { Prefetcher } from './prefetch.ts'
import { NO_USER, actingUid } from './tokens.ts'

const log = makeLog('cache-manager')

/** Something the user tried to reach while disconnected and the cache did not have. */
export interface Miss { path: string, time: number, count: number }

/** What the object cache needs of the cache manager (read when used: the table opens after construction). */
export interface ObjectCacheDeps {
  readonly table: FsObjectTable
  readonly cells: Map<string, Cell>
  readonly cml: ClientModifyLog
  readonly local: Pick<LocalObjects, 'overlay'>
  readonly containers: ContainerStore
  readonly space: { usedBytes: number }
  readonly readFds: ReadFdCache
  readonly counters: Counters
  /** Fills the containers of files whose bytes came with a listing. */
  readonly prefetcher: Pick<Prefetcher, 'add'>
}

export class ObjectCache {
  /** Paths asked for while disconnected that the cache did not hold (`afs status --misses`). */
  readonly misses = new Map<string, Miss>()
  private readonly inflight = new Map<string, Promise<unknown>>()
  private readonly locks = new Map<string, Promise<unknown>>()
  /** By cell and volume: the cached objects still to revalidate in bulk, found once per link epoch. */
  private readonly stale = new Map<string, { epoch: string, keys: string[] }>()

  constructor (private readonly d: ObjectCacheDeps) {}

  /** Callback breaks from a server of `cell`: the objects are revalidated before their next use. */
  broken (cell: Cell, fids: Fid[]): void {
    if (log.debugging) log.debug(`${cell.name}: callbacks broken on ${fids.map(fidKey).join(' ')}`)
    for (const fid of fids) {
      this.d.counters.callbackBreaks++
      const o = this.d.table.get(objectKey(cell.name, fid))
      if (o) o.cbExpiresAt = 0
    }
  }

  /**
   * Whether a mutation on `volume` goes to the server now. Not while the server is
   * unreachable, in write-back mode, or while older changes of the cell wait in the
   * log (they must reach the server first, in order).
   */
  online (cell: Cell, volume: number): boolean {
    return cell.route(volume).connected && !cell.writeBack && !this.d.cml.hasRecordsFor(cell.name)
  }

  /** Notes a cache miss while disconnected and returns the error for it. */
  miss (path: string, cause: unknown): AfsError {
    const m = this.misses.get(path)
    if (m) { m.count++; m.time = Date.now() } else this.misses.set(path, { path, time: Date.now(), count: 1 })
    return volumeOffline(`${path} is not in the cache and its server is unreachable (${(cause as Error)?.message ?? cause})`)
  }

  /**
   * After a cell's whole log reached its servers: everything cached is revalidated (by
   * version: contents and listings stay for disconnected use). Objects born in the log
   * have their server fids by now.
   */
  afterReintegration (cell: Cell): void {
    for (const k of this.stale.keys()) if (k.startsWith(`${cell.name}|`)) this.stale.delete(k)
    for (const o of this.d.table.values()) {
      if (o.cell !== cell.name) continue
      o.cbExpiresAt = 0
      o.baseVersion = null
      if (o.status.type === 'dir' && !o.conflict) demoteListing(o)
      if (isLocalFid(o.status.fid) && !o.conflict) log.error(`${o.key} was created offline but never got a server fid; kept as it is`)
      void this.d.table.save(o)
    }
  }

  cell (name: string): Cell {
    const c = this.d.cells.get(name)
    if (!c) throw notFound(`no cell named ${name}`)
    return c
  }

  // ---- statuses under callbacks ----

  hasCallback (o: FsObject, now = Date.now()): boolean {
    if (o.cbExpiresAt - CALLBACK_SLACK_MS <= now) return false
    const volume = this.cell(o.cell).route(o.status.fid.volume)
    return volume.connected && volume.epoch === o.cbEpoch
  }

  /** Takes a status reply from a server: refreshes the object and its callback. */
  accept (cell: Cell, reply: StatusReply): FsObject {
    const o = this.d.table.upsert(cell.name, reply.status)
    // Rights known under a promise that was broken may be stale (a new ACL breaks it): only this caller's are known again.
    if (!this.hasCallback(o)) o.access = {}
    const uid = actingUid()
    if (reply.access !== undefined && uid !== undefined) o.access[uid] = reply.access
    o.cbExpiresAt = reply.callback.expiresAt
    o.cbEpoch = cell.route(reply.status.fid.volume).epoch
    void this.d.table.save(o)
    return o
  }

  /**
   * Refuses what the acting local user may not do to `o` (`rights`: rlidwka bits): by the
   * rights its server gave that user, asked for again (as that user) when its callback is
   * gone; while disconnected, by the rights last known (none known: refused). Objects made
   * offline and work of no local user are not checked here (their server checks them).
   */
  async checkAccess (cell: Cell, o: FsObject, rights: number): Promise<void> {
    const uid = actingUid()
    if (uid === undefined || uid === NO_USER || isLocalFid(o.status.fid)) return
    let have = this.hasCallback(o) ? o.access[uid] : undefined
    if (have === undefined && cell.route(o.status.fid.volume).connected) {
      try {
        this.accept(cell, await cell.route(o.status.fid.volume).call('fetchStatus', { fid: o.status.fid }))
        have = o.access[uid]
      } catch (err) {
        if (!isUnreachable(err)) throw err
      }
    }
    have ??= o.access[uid]
    // (Disconnected, an object no rights are known of for anyone — made here and sent since, or after the cache was rebuilt — is left to its server to check.)
    if (have === undefined && Object.keys(o.access).length === 0) return
    if (have === undefined) throw permission(`${o.status.type === 'dir' ? 'this directory' : 'this file'}: no rights of uid ${uid} are known here while its server is unreachable`)
    if ((have & rights) !== rights) throw permission(`uid ${uid} lacks the ${formatRights(rights & ~have)} right here (has ${formatRights(have) || 'none'})`)
  }

  /** A status that came with a listing: taken for an object not cached yet (one cached is revalidated its own way). */
  private acceptNew (cell: Cell, reply: StatusReply): FsObject | null {
    return this.d.table.get(objectKey(cell.name, reply.status.fid)) ? null : this.accept(cell, reply)
  }

  /** Refreshes a status we got as a side effect of a mutation (no callback change). */
  update (cell: Cell, status: VnodeStatus): FsObject {
    const o = this.d.table.upsert(cell.name, status)
    void this.d.table.save(o)
    return o
  }

  /** The cached object for `fid` if a callback still covers it (no I/O: the hot path). */
  cachedObject (cell: Cell, fid: Fid): FsObject | null {
    const o = this.d.table.get(objectKey(cell.name, fid))
    if (!o || !this.hasCallback(o)) return null
    o.lastUse = Date.now()
    return o
  }

  /** A directory's cached entries if they are current under a callback. */
  cachedEntries (dir: FsObject): Map<string, Dirent> | null {
    return isListed(dir) && this.hasCallback(dir) ? dir.entries : null
  }

  /**
   * The object for `fid`: from cache under a callback, else one fetchStatus. While its
   * server is unreachable, the cached object as it is (emulation), or a miss.
   */
  async object (cell: Cell, fid: Fid): Promise<FsObject> {
    const o = this.d.table.get(objectKey(cell.name, fid))
    if (o && this.hasCallback(o)) { o.lastUse = Date.now(); return o }
    if (o && (isLocalFid(fid) || o.conflict)) return o
    try {
      await cell.volumeById(fid.volume)
      const fresh = o ? await this.revalidate(cell, o) : this.accept(cell, await cell.route(fid.volume).call('fetchStatus', { fid }))
      fresh.lastUse = Date.now()
      return fresh
    } catch (err) {
      if (!isUnreachable(err)) throw err
      if (o) { o.lastUse = Date.now(); return o }
      throw err
    }
  }

  /**
   * A cached object whose promise is gone, asked for again — in one request with the
   * other cached objects of its volume that lost theirs as well (after a restart or a
   * reconnection: Coda validates a volume's objects at once), up to BULK_STATUS_MAX.
   * Their contents and listings stay if their versions did not change.
   */
  private async revalidate (cell: Cell, o: FsObject): Promise<FsObject> {
    const fid = o.status.fid
    const volume = cell.route(fid.volume)
    // (Not in a replicated volume: a status there is compared across its members.)
    const others = volume.replicated ? [] : this.staleBeside(cell, o, volume.epoch)
    if (others.length > 0) {
      try {
        const { statuses } = await volume.call('fetchStatuses', { volume: fid.volume, fids: [fid, ...others.map(x => x.status.fid)] })
        for (const r of statuses.slice(1)) if (r) this.accept(cell, r)
        if (statuses[0]) return this.accept(cell, statuses[0])
        // Gone, or not to be looked up: its own answer says which.
      } catch (err) {
        if (isUnreachable(err)) throw err
        log.warn(`${cell.name}: bulk status of volume ${fid.volume} failed (${(err as Error).message}); asking one object at a time`)
      }
    }
    return this.accept(cell, await volume.call('fetchStatus', { fid }))
  }

  /**
   * Up to BULK_STATUS_MAX - 1 cached objects of `o`'s volume, clean and without a promise,
   * most recently used first: found by one pass over the cache per link epoch (a new
   * epoch voided every promise of the volume), then taken a batch at a time.
   */
  private staleBeside (cell: Cell, o: FsObject, epoch: string): FsObject[] {
    const volume = o.status.fid.volume
    const revalidatable = (x: FsObject) => x !== o && !this.hasCallback(x) && !x.dirty && !x.conflict && !isLocalFid(x.status.fid) && !this.d.cml.references(cell.name, x.status.fid)
    const k = `${cell.name}|${volume}`
    let q = this.stale.get(k)
    if (q?.epoch !== epoch) {
      const found = [...this.d.table.values()].filter(x => x.cell === cell.name && x.status.fid.volume === volume && revalidatable(x))
      q = { epoch, keys: found.sort((a, b) => a.lastUse - b.lastUse).map(x => x.key) }
      this.stale.set(k, q)
    }
    const out: FsObject[] = []
    while (out.length < BULK_STATUS_MAX - 1 && q.keys.length > 0) {
      const x = this.d.table.get(q.keys.pop()!)
      if (x && revalidatable(x)) out.push(x)
    }
    return out
  }

  /** A directory's entries, listed from the server unless cached at its current version (or the server is unreachable). */
  async entries (cell: Cell, dir: FsObject): Promise<Map<string, Dirent>> {
    if (dir.status.type !== 'dir') throw notDir('not a directory')
    if (isListed(dir) || (dir.entries && (!cell.route(dir.status.fid.volume).connected || isLocalFid(dir.status.fid)))) return dir.entries!
    try {
      return await this.once(dir.key, () => this.list(cell, dir))
    } catch (err) {
      if (!isUnreachable(err) || !dir.entries) throw err
      return dir.entries
    }
  }

  /** Lists a directory from its server; returns the listing it made (dir.entries may change again meanwhile). */
  private async list (cell: Cell, dir: FsObject): Promise<Map<string, Dirent>> {
    const fid = dir.status.fid
    const volume = cell.route(fid.volume)
    // Listed for the first time (a cold walk, ls -l, a hoard walk), its children's statuses come with it.
    // (Not from a replicated volume: a status there is compared across its members.)
    const statuses = dir.entries === null && !volume.replicated
    for (let attempt = 0; attempt < 5; attempt++) {
      const entries = new Map<string, Dirent>()
      let after: string | undefined
      let first: DirReply | null = null
      let last: DirReply
      do {
        last = await volume.call('fetchDir', { fid, ...after === undefined ? {} : { after }, ...statuses ? { statuses, data: PREFETCH_FILE_MAX_BYTES } : {} })
        first ??= last
        for (const [name, f, type] of last.entries) { entries.set(name, { fid: f, type }); after = name }
        for (const s of last.statuses ?? []) {
          const fresh = s ? this.acceptNew(cell, s) : null
          // A small file's bytes came along: its container is filled now, before it is opened.
          if (fresh && s?.data) this.d.prefetcher.add(fresh, s.status.dataVersion, s.data)
        }
      } while (last.more && last.status.dataVersion === first.status.dataVersion)
      if (last.status.dataVersion !== first.status.dataVersion) continue // changed under us: list again
      this.accept(cell, last)
      // Names the log has yet to give or take here (an empty log costs nothing).
      if (this.d.cml.hasRecordsFor(cell.name)) this.d.local.overlay(cell.name, fid, entries)
      this.overlayConflicts(cell, dir, entries)
      dir.entries = entries
      dir.listedVersion = last.status.dataVersion
      void this.d.table.saveListing(dir)
      return entries
    }
    throw new AfsError('BUSY', 'directory keeps changing while listed')
  }

  /** Conflicted objects stay visible where they were, whatever the server's listing says. */
  private overlayConflicts (cell: Cell, dir: FsObject, entries: Map<string, Dirent>): void {
    for (const c of this.d.cml.conflicts()) {
      if (c.cell !== cell.name || !c.dir || c.name === null || objectKey(cell.name, this.d.cml.mapped(c.dir)) !== dir.key) continue
      const o = this.d.table.get(objectKey(cell.name, c.fid))
      if (o?.conflict?.id === c.id) entries.set(c.name, { fid: c.fid, type: 'symlink' })
    }
  }

  /**
   * Applies our own changes to a cached listing. Safe when we still hold the directory's
   * callback (nobody else changed it: every other change is one of ours, applied by its
   * own reply) or when `dirStatus` is exactly one version past the listing.
   */
  applyEntries (cell: Cell, dirStatus: VnodeStatus, changes: Array<[string, Dirent | null]>): void {
    const dir = this.d.table.get(objectKey(cell.name, dirStatus.fid))
    const trusted = dir !== undefined && dir.entries !== null && (this.hasCallback(dir) || dir.listedVersion === dirStatus.dataVersion - 1)
    this.update(cell, dirStatus)
    if (!dir?.entries) return
    for (const [name, d] of changes) {
      if (d) dir.entries.set(name, d)
      else dir.entries.delete(name)
      this.d.table.saveEntry(dir, name, d)
    }
    // Not trusted: others may have changed it too. Kept with our change for disconnected use.
    if (trusted) dir.listedVersion = Math.max(dir.listedVersion, dirStatus.dataVersion)
    else demoteListing(dir)
    void this.d.table.save(dir)
  }

  /**
   * Forgets an object whose last name is gone. Still open, it lives on unnamed until
   * its last close (as POSIX has it) and is never stored again; a container the log
   * still needs (a store on its way) stays until replayed.
   */
  async forget (o: FsObject): Promise<void> {
    o.unlinked = true
    o.dirty = false
    if (o.openCount > 0 || o.conflict) { o.cbExpiresAt = 0; return }
    this.d.readFds.drop(o.key)
    if (o.cachedVersion !== null && !this.d.cml.references(o.cell, o.status.fid)) await this.d.containers.remove(o.key)
    else await this.d.containers.chunks.drop(o.key)
    this.d.space.usedBytes -= o.cachedBytes
    this.d.table.delete(o.key)
  }

  /** Runs `fn` once for concurrent callers on the same key. */
  once<T> (key: string, fn: () => Promise<T>): Promise<T> {
    let p = this.inflight.get(key) as Promise<T> | undefined
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
