// The cache manager core (Venus / afsd), independent of FUSE. Responsibilities:
//   1. the cells this client serves, their server links and volume locations
//   2. cached objects: statuses under callbacks, directory listings, container files
//   3. whole files fetched on demand and stored back whole (`whole-file.ts`)
//   4. taking callback breaks (demote, never evict); the space containers take is
//      `cache-space.ts`'s
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import {
  AfsError, fidKey, makeLog, notDir, notFound, volumeOffline,
  type DirReply, type Fid, type StatusReply, type VnodeStatus,
} from '@afs-ts/common'
import { Cell } from './cell.ts'
import { ContainerStore } from './container-file.ts'
import { newCounters, type Counters } from './counters.ts'
import { demoteListing, isListed, type Dirent, type FsObject } from './fs-object.ts'
import { objectKey, type FsObjectTable } from './fs-object-table.ts'
import { openTable } from './cache-metadata.ts'
import { CALLBACK_SLACK_MS, DEFAULT_CACHE_BYTES } from './constants.ts'
import { ReadFdCache } from './read-fd-cache.ts'
import { isUnreachable, type ServerLink } from './server-link.ts'
import { ClientModifyLog, isLocalFid } from './cml.ts'
import { LocalObjects } from './local-objects.ts'
import { Emulator } from './emulator.ts'
import { Reintegrator } from './reintegrator.ts'
import { Locks } from './locks.ts'
import { Connectivity } from './connectivity.ts'
import { CacheSpace } from './cache-space.ts'
import { WholeFiles } from './whole-file.ts'
import { ConflictKeeper } from './repair/conflict-keeper.ts'
import { Ancestors } from './repair/ancestors.ts'
import { Repairer } from './repair/repairer.ts'
import { Resolvers } from './repair/resolvers.ts'

const log = makeLog('cache-manager')

export interface CacheManagerOptions {
  cacheDir: string
  /** One list of server addresses per cell. */
  cells: string[][]
  cacheBytes?: number
  /** Keep-alive probe interval: also how fast a dead server is noticed. */
  probeIntervalMs?: number
}

/** Something the user tried to reach while disconnected and the cache did not have. */
export interface Miss { path: string, time: number, count: number }

export class CacheManager {
  readonly counters: Counters = newCounters()
  readonly cells = new Map<string, Cell>()
  table!: FsObjectTable
  readonly containers: ContainerStore
  readonly space: CacheSpace
  readonly files: WholeFiles
  readonly readFds = new ReadFdCache()
  private readonly inflight = new Map<string, Promise<unknown>>()
  private readonly locks = new Map<string, Promise<unknown>>()
  clientId = ''
  readonly cml: ClientModifyLog
  readonly local: LocalObjects
  readonly emulator: Emulator
  readonly reintegrator: Reintegrator
  readonly connectivity: Connectivity
  readonly conflicts: ConflictKeeper
  readonly ancestors: Ancestors
  readonly repairer: Repairer
  readonly resolvers: Resolvers
  readonly fileLocks: Locks
  /** Paths asked for while disconnected that the cache did not hold (`afs status --misses`). */
  readonly misses = new Map<string, Miss>()
  /** Called after a cell's servers came back and its log was replayed (the hoard walker listens). */
  onReconnected: (cell: Cell) => void = () => {}

  constructor (readonly opts: CacheManagerOptions) {
    this.containers = new ContainerStore(opts.cacheDir)
    this.space = new CacheSpace(this, opts.cacheBytes ?? DEFAULT_CACHE_BYTES)
    this.files = new WholeFiles(this)
    this.cml = new ClientModifyLog(opts.cacheDir)
    this.local = new LocalObjects(this)
    this.emulator = new Emulator(this)
    this.reintegrator = new Reintegrator(this)
    this.connectivity = new Connectivity(this)
    this.conflicts = new ConflictKeeper(this)
    this.ancestors = new Ancestors(opts.cacheDir)
    this.repairer = new Repairer(this)
    this.resolvers = new Resolvers(this, this.repairer)
    this.fileLocks = new Locks({ cells: this.cells, reachable: (cell, volume) => cell.route(volume).connected })
  }

  async ready (): Promise<void> {
    await mkdir(this.opts.cacheDir, { recursive: true })
    this.clientId = await this.loadClientId()
    await this.containers.ready()
    const { table, damaged } = await openTable(this.opts.cacheDir)
    this.table = table
    await this.local.finish()
    if (damaged) await this.local.rebuild()
    await this.reconcileContainers()
    await this.ancestors.ready(key => this.cml.referencesKey(key))
    await this.resolvers.load()
    for (const servers of this.opts.cells) {
      const cell = new Cell(servers, this.clientId, this.counters, (c, link) => this.watchLink(c, link), this.opts.probeIntervalMs)
      const online = await cell.ready(s => this.table.savedCell(s) ?? this.cml.savedCell(s))
      this.cells.set(cell.name, cell)
      await this.saveCell(cell)
      log.info(`cell ${cell.name} via ${servers.join(', ')}${online ? '' : ': no server answers, starting disconnected from the cache'}`)
      if (online) void this.reintegrator.run(cell)
    }
  }

  async saveCell (cell: Cell): Promise<void> {
    await this.table.saveCell(cell.servers, cell.snapshot())
    await this.cml.saveCell(cell.servers, cell.snapshot())
  }

  /**
   * Whether a mutation on `volume` goes to the server now. Not while the server is
   * unreachable, in write-back mode, or while older changes of the cell wait in the
   * log (they must reach the server first, in order).
   */
  online (cell: Cell, volume: number): boolean {
    return cell.route(volume).connected && !cell.writeBack && !this.cml.hasRecordsFor(cell.name)
  }

  /** Notes a cache miss while disconnected and returns the error for it. */
  miss (path: string, cause: unknown): AfsError {
    const m = this.misses.get(path)
    if (m) { m.count++; m.time = Date.now() } else this.misses.set(path, { path, time: Date.now(), count: 1 })
    return volumeOffline(`${path} is not in the cache and its server is unreachable (${(cause as Error)?.message ?? cause})`)
  }

  async close (): Promise<void> {
    this.connectivity.close()
    this.fileLocks.close()
    this.readFds.closeAll()
    for (const c of this.cells.values()) c.close()
    await this.table.close()
    await this.cml.close()
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
      this.space.usedBytes += o.cachedBytes
    }
    // Containers the log still needs are kept even when the cache lost track of them.
    for (const stray of present) if (!this.cml.referencesKey(stray)) await this.containers.remove(stray)
  }

  private watchLink (cell: Cell, link: ServerLink): void {
    link.on('break', (fids: Fid[]) => {
      if (log.debugging) log.debug(`${cell.name}: callbacks broken on ${fids.map(fidKey).join(' ')}`)
      for (const fid of fids) {
        this.counters.callbackBreaks++
        const o = this.table.get(objectKey(cell.name, fid))
        if (o) o.cbExpiresAt = 0
      }
    })
    link.on('up', () => { void this.reintegrator.run(cell).finally(() => this.onReconnected(cell)) })
  }

  /**
   * After a cell's whole log reached its servers: everything cached is revalidated (by
   * version: contents and listings stay for disconnected use). Objects born in the log
   * have their server fids by now.
   */
  afterReintegration (cell: Cell): void {
    for (const o of this.table.values()) {
      if (o.cell !== cell.name) continue
      o.cbExpiresAt = 0
      o.baseVersion = null
      if (o.status.type === 'dir' && !o.conflict) demoteListing(o)
      if (isLocalFid(o.status.fid) && !o.conflict) log.error(`${o.key} was created offline but never got a server fid; kept as it is`)
      void this.table.save(o)
    }
  }

  cell (name: string): Cell {
    const c = this.cells.get(name)
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
    const o = this.table.upsert(cell.name, reply.status)
    o.cbExpiresAt = reply.callback.expiresAt
    o.cbEpoch = cell.route(reply.status.fid.volume).epoch
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

  /**
   * The object for `fid`: from cache under a callback, else one fetchStatus. While its
   * server is unreachable, the cached object as it is (emulation), or a miss.
   */
  async object (cell: Cell, fid: Fid): Promise<FsObject> {
    const o = this.table.get(objectKey(cell.name, fid))
    if (o && this.hasCallback(o)) { o.lastUse = Date.now(); return o }
    if (o && (isLocalFid(fid) || o.conflict)) return o
    try {
      await cell.volumeById(fid.volume)
      const reply = await cell.route(fid.volume).call('fetchStatus', { fid })
      const fresh = this.accept(cell, reply)
      fresh.lastUse = Date.now()
      return fresh
    } catch (err) {
      if (!isUnreachable(err)) throw err
      if (o) { o.lastUse = Date.now(); return o }
      throw err
    }
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
    for (let attempt = 0; attempt < 5; attempt++) {
      const entries = new Map<string, Dirent>()
      let after: string | undefined
      let first: DirReply | null = null
      let last: DirReply
      do {
        last = await cell.route(fid.volume).call('fetchDir', after === undefined ? { fid } : { fid, after })
        first ??= last
        for (const [name, f, type] of last.entries) { entries.set(name, { fid: f, type }); after = name }
      } while (last.more && last.status.dataVersion === first.status.dataVersion)
      if (last.status.dataVersion !== first.status.dataVersion) continue // changed under us: list again
      this.accept(cell, last)
      // Names the log has yet to give or take here (an empty log costs nothing).
      if (this.cml.hasRecordsFor(cell.name)) this.local.overlay(cell.name, fid, entries)
      this.overlayConflicts(cell, dir, entries)
      dir.entries = entries
      dir.listedVersion = last.status.dataVersion
      void this.table.saveListing(dir)
      return entries
    }
    throw new AfsError('BUSY', 'directory keeps changing while listed')
  }

  /** Conflicted objects stay visible where they were, whatever the server's listing says. */
  private overlayConflicts (cell: Cell, dir: FsObject, entries: Map<string, Dirent>): void {
    for (const c of this.cml.conflicts()) {
      if (c.cell !== cell.name || !c.dir || c.name === null || objectKey(cell.name, this.cml.mapped(c.dir)) !== dir.key) continue
      const o = this.table.get(objectKey(cell.name, c.fid))
      if (o?.conflict?.id === c.id) entries.set(c.name, { fid: c.fid, type: 'symlink' })
    }
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
    for (const [name, d] of changes) {
      if (d) dir.entries.set(name, d)
      else dir.entries.delete(name)
      this.table.saveEntry(dir, name, d)
    }
    // Not trusted: others may have changed it too. Kept with our change for disconnected use.
    if (trusted) dir.listedVersion = Math.max(dir.listedVersion, dirStatus.dataVersion)
    else demoteListing(dir)
    void this.table.save(dir)
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
    this.readFds.drop(o.key)
    if (o.cachedVersion !== null && !this.cml.references(o.cell, o.status.fid)) await this.containers.remove(o.key)
    this.space.usedBytes -= o.cachedBytes
    this.table.delete(o.key)
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
