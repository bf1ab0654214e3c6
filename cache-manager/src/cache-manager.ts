// The cache manager (Venus / afsd), independent of FUSE: it makes the subsystems, gives
// each the narrow part of the others it uses, and runs them. Responsibilities:
//   1. the cells this client serves, their server links and volumes (`cell.ts`)
//   2. the cache on disk: metadata table, containers, client id, log; opened, checked
//      against each other at start (a crash may have cut anything short) and closed
//   3. wiring: cached objects are `object-cache.ts`'s, whole files `whole-file.ts`'s,
//      offline work `emulator.ts`/`cml.ts`/`reintegrator.ts`'s, space `cache-space.ts`'s
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { makeLog, type Fid, type Trust } from '@afs-ts/common'
import { TokenTable, actingUid } from './tokens.ts'

/** Where local users' tokens are kept, in the cache directory. */
const TOKENS_FILE = 'tokens.json'
import { Cell } from './cell.ts'
import { ContainerStore } from './container-file.ts'
import { chunkSizeFor } from './chunk-store.ts'
import { newCounters, type Counters } from './counters.ts'
import type { FsObjectTable } from './fs-object-table.ts'
import { openTable } from './cache-metadata.ts'
import { DEFAULT_CACHE_BYTES } from './constants.ts'
import { ReadFdCache } from './read-fd-cache.ts'
import type { ServerLink } from './server-link.ts'
import { ClientModifyLog } from './cml.ts'
import { LocalObjects } from './local-objects.ts'
import { ObjectCache } from './object-cache.ts'
import { Emulator } from './emulator.ts'
import { Reintegrator } from './reintegrator.ts'
import { Locks } from './locks.ts'
import { Connectivity } from './connectivity.ts'
import { CacheSpace } from './cache-space.ts'
import { WholeFiles } from './whole-file.ts'
import { ChunkedFiles } from './chunked-file.ts'
import { Prefetcher } from './prefetch.ts'
import { DirReadAhead } from './read-ahead.ts'
import { ConflictKeeper } from './repair/conflict-keeper.ts'
import { Ancestors } from './repair/ancestors.ts'
import { Repairer } from './repair/repairer.ts'
import { Resolvers } from './repair/resolvers.ts'
import { ReplicaRepair } from './repair/replica-repair.ts'

const log = makeLog('cache-manager')

export interface CacheManagerOptions {
  cacheDir: string
  /** One list of server addresses per cell. */
  cells: string[][]
  /** The cells' CAs: a server's certificate must be signed by one of them (PEM). */
  trust: Trust
  cacheBytes?: number
  /** Keep-alive probe interval: also how fast a dead server is noticed. */
  probeIntervalMs?: number
}

export class CacheManager {
  readonly counters: Counters = newCounters()
  readonly cells = new Map<string, Cell>()
  /** Local users' tokens (`afs login`): each request carries the acting user's. */
  readonly tokens: TokenTable
  table!: FsObjectTable
  readonly containers: ContainerStore
  readonly space: CacheSpace
  readonly files: WholeFiles
  readonly chunkedFiles: ChunkedFiles
  readonly prefetcher: Prefetcher
  readonly readAhead: DirReadAhead
  readonly readFds = new ReadFdCache()
  readonly objects: ObjectCache
  clientId = ''
  readonly cml: ClientModifyLog
  readonly local: LocalObjects
  readonly emulator: Emulator
  readonly reintegrator: Reintegrator
  readonly connectivity: Connectivity
  readonly conflicts: ConflictKeeper
  readonly ancestors: Ancestors
  readonly repairer: Repairer
  readonly replicas: ReplicaRepair
  readonly resolvers: Resolvers
  readonly fileLocks: Locks
  /** Called after a cell's servers came back and its log was replayed (the hoard walker listens). */
  onReconnected: (cell: Cell) => void = () => {}

  constructor (readonly opts: CacheManagerOptions) {
    this.tokens = new TokenTable(join(opts.cacheDir, TOKENS_FILE))
    const cacheBytes = opts.cacheBytes ?? DEFAULT_CACHE_BYTES
    this.containers = new ContainerStore(opts.cacheDir, chunkSizeFor(cacheBytes))
    this.space = new CacheSpace(this, cacheBytes)
    this.files = new WholeFiles(this)
    this.chunkedFiles = new ChunkedFiles(this)
    this.prefetcher = new Prefetcher(this)
    this.readAhead = new DirReadAhead(this)
    this.cml = new ClientModifyLog(opts.cacheDir, cell => {
      const by = actingUid()
      return by === undefined ? {} : { by, user: this.tokens.get(by, cell)?.user }
    })
    this.local = new LocalObjects(this)
    this.objects = new ObjectCache(this)
    this.emulator = new Emulator(this)
    this.reintegrator = new Reintegrator(this)
    // A login: changes that waited for that user's token go on.
    this.tokens.onChange(() => { for (const c of this.cells.values()) void this.reintegrator.run(c) })
    this.connectivity = new Connectivity(this)
    this.conflicts = new ConflictKeeper(this)
    this.ancestors = new Ancestors(opts.cacheDir)
    this.repairer = new Repairer(this)
    this.replicas = new ReplicaRepair(this, join(opts.cacheDir, 'repair', 'replicas'))
    this.resolvers = new Resolvers(this, this.repairer)
    this.fileLocks = new Locks({ cells: this.cells, reachable: (cell, volume) => cell.route(volume).connected })
  }

  async ready (): Promise<void> {
    await mkdir(this.opts.cacheDir, { recursive: true })
    this.clientId = await this.loadClientId()
    await this.tokens.load()
    await this.containers.ready()
    const { table, damaged } = await openTable(this.opts.cacheDir)
    this.table = table
    await this.local.finish()
    if (damaged) await this.local.rebuild()
    await this.reconcileContainers()
    await this.ancestors.ready(key => this.cml.referencesKey(key))
    await this.resolvers.load()
    for (const servers of this.opts.cells) {
      const cell = new Cell(servers, this.clientId, this.counters, { trust: this.opts.trust, tokenFor: cell => this.tokens.forCell(cell) }, (c, link) => this.watchLink(c, link), this.opts.probeIntervalMs, c => { void this.saveCell(c) })
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

  async close (): Promise<void> {
    this.connectivity.close()
    this.fileLocks.close()
    this.readFds.closeAll()
    for (const c of this.cells.values()) c.close()
    await this.table.close()
    await this.cml.close()
    await this.tokens.flushed()
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
    for (const key of this.containers.chunks.keys()) if (!this.table.get(key)) await this.containers.chunks.drop(key)
  }

  private watchLink (cell: Cell, link: ServerLink): void {
    link.on('break', (fids: Fid[]) => this.objects.broken(cell, fids))
    link.on('up', () => { void this.reintegrator.run(cell).finally(() => this.onReconnected(cell)) })
  }
}
