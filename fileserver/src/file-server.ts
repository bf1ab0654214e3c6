// The volume server (AFS fileserver / Coda Vice). Responsibilities:
//   1. accept client connections and answer the protocol's requests (onFetchStatus, onStore, …)
//   2. keep callback promises, and break every other holder's before a mutation returns
//   3. host the embedded volume location database of a one-machine cell
import { createServer, type AddressInfo, type Server } from 'node:net'
import { join, resolve as resolvePath } from 'node:path'
import type { TLSSocket } from 'node:tls'
import { readTokenKey, saveServerTls, serverTrust } from '@afs-ts/common/cell-ca'
import { ANONYMOUS, EmbeddedPts, EtcdPts, Protection, RemoteProtection, type Caller, type ProtectionService } from '@afs-ts/protection'
import { mkdir } from 'node:fs/promises'
import { randomUUID } from 'node:crypto'
import {
  AfsError, Download, Peer, RpcConnection, badRequest, exists, fidKey, moved, permission, parseFid, invalid, isOp, makeLog, nameTooLong, notFound, protocolError, requests, MAX_VOLUME_SITES,
  noLock, wouldBlock, tlsAcceptor, parseHostPort, type Trust, isUnreachable, UPDATE_OPS, Metrics, RPC_SECONDS, LockTable, NAME_TOO_LONG_MESSAGE, PROTOCOL_VERSION, PREFETCH_PAGE_BYTES,
  type Args, type CmlRecordBody, type DirReply, type ReplayReply, type Quorum, type Reply, type StatusReply, type VolumeEntry, type XattrMode, type HeldLock, type LockKind, type LockRequest, type Fid, type LockReply, type LookupReply, type Op, type RequestContext, type VnodeStatus,
} from '@afs-ts/common'
import { EtcdLocationDb, ROOT_VOLUME_NAME, RemoteLocationDb, VolumeLocationDb, parseEtcdUrl, type LocationDb } from '@afs-ts/volumes'
import { CallbackTable, type Breaks } from './callback-table.ts'
import { VolumeStore, type Update } from './volume-store.ts'
import { Replayer } from './replay.ts'
import { Resolver } from './resolve.ts'
import { Access, NEW_VOLUME_ACL, asking, ownerNow, type Asker } from './access.ts'
import { VolumeMover } from './volume-move.ts'
import { newObject, toStatus, type Making } from './vnode.ts'
import type { Database } from 'lmdb'
import type { ByteRange } from './blob-store.ts'

const log = makeLog('fileserver')
/** A handler's answer: the reply, or (fetchData) the reply with a body to stream. */
type Answer<O extends Op> = Reply<O> | Download<Reply<O>>
/** A client that does not acknowledge a callback break in this time loses its promises. */
export const CALLBACK_BREAK_TIMEOUT_MS = 5_000
/** Updates awaiting COP2 kept at most (the oldest go first). */
const COP2_PENDING_MAX = 100_000
/** How often a server compares its replicated volumes with their other members. */
const SWEEP_MS = 2_000
/** How often the cell's leader does its chores. */
const CHORES_MS = 10_000
/** How often a server that could not reach the location database at start tries again. */
const REJOIN_MS = 2_000

export interface FileServerOptions {
  dataDir: string
  cell: string
  host?: string
  port?: number
  /** The host:port clients should use for this server (defaults to the listen address). */
  advertise?: string
  callbackTableMax?: number
  /** How long a client's locks outlive its last renewal. */
  lockLeaseMs?: number
  /**
   * The cell's location database: the server that keeps it (HOST:PORT), or etcd
   * (etcd://HOST:PORT[,HOST:PORT…]); none: this server keeps it (the cell's first).
   */
  vldb?: string
  /** With etcd: seconds this server stays listed after its last keep-alive. */
  leaseTtlS?: number
  /** How often replicated volumes are compared with their other members (0: never by themselves). */
  sweepMs?: number
  /**
   * The TLS directory (cell CA, this server's certificate): default DATA/tls, made with a
   * new cell CA by a new cell's first server (one with no `vldb`).
   */
  tlsDir?: string
}

interface ClientRecord { id: string, hostname: string }

/** Requests only the cell's servers make of each other. */
const SERVER_OPS: ReadonlySet<Op> = new Set<Op>(['vlCreate', 'vlUpdate', 'vlRegister', 'volAttach', 'moveTake', 'resolvePull', 'vvSet', 'resolveMerge', 'markConflict', 'ptIdentify'])
/** Volume administration: for system:administrators (and the cell's servers, which pass it on). */
const ADMIN_OPS: ReadonlySet<Op> = new Set<Op>(['volCreate', 'volMove', 'volAddSite', 'volRemoveSite', 'volSetQuota'])

export class FileServer {
  readonly store: VolumeStore
  readonly vldb: LocationDb
  /** The cell's users and groups: kept beside the location database (here, or in etcd), or asked of the server that keeps it. */
  readonly pts: ProtectionService
  /** Whether this server made the cell's admin user as it started (its password is in DATA/admin.password). */
  madeAdmin = false
  private readonly mover: VolumeMover
  private readonly metrics = this.serverMetrics()
  private metricsServer: { close: () => Promise<void> } | null = null
  private breaksSent = 0
  private standing = false
  private chores: NodeJS.Timeout | null = null
  /** Volumes none of whose servers is live, as this server last found as the cell's leader. */
  private orphanVolumes = 0
  /** Per volume: the clients that asked for its location entry (told when it changes). */
  private readonly locationAskers = new Map<number, Set<string>>()
  readonly callbacks: CallbackTable
  readonly replayer: Replayer
  readonly locks: LockTable
  private readonly lockExpiry: NodeJS.Timeout
  private readonly clients = new Map<string, RpcConnection>()
  private server: Server | null = null
  private address = ''
  /** Whether the location database has this server at its address (requests are checked against it from then on). */
  private registered = false
  private rejoin: NodeJS.Timeout | null = null
  /** Updates of replicated volumes awaiting their COP2, by update id (oldest first; a lost COP2 is made up by resolution). */
  private readonly cop2Pending = new Map<string, { volume: number, vnodes: number[] }>()
  private readonly peers = new Map<string, Peer>()
  /** Connections whose peer showed a certificate of this cell's CA: only they may say hello as a server. */
  private readonly verified = new WeakMap<RpcConnection, boolean>()
  private readonly sitesSeen = new Map<number, { at: number, servers: string[] }>()
  /** Volumes an admin command changes now, where the location database keeps no locks. */
  private readonly adminBusy = new Set<string>()
  readonly resolver: Resolver
  private readonly access: Access
  private sweeping: NodeJS.Timeout | null = null
  private sweepRunning = false

  private constructor (readonly opts: FileServerOptions, store: VolumeStore, readonly serverId: string, private readonly trust: Required<Trust>, tokenKey: Uint8Array) {
    this.store = store
    this.vldb = !opts.vldb ? new VolumeLocationDb(store.root)
      : opts.vldb.startsWith('etcd://') ? new EtcdLocationDb({ endpoints: parseEtcdUrl(opts.vldb), cell: opts.cell, leaseTtlS: opts.leaseTtlS })
        : new RemoteLocationDb(opts.vldb, opts.cell, serverId, trust)
    this.pts = this.vldb instanceof VolumeLocationDb ? new Protection(new EmbeddedPts(store.root), tokenKey, opts.cell)
      : this.vldb instanceof EtcdLocationDb ? new Protection(new EtcdPts(this.vldb.client, opts.cell, async call => await (this.vldb as EtcdLocationDb).ask(call)), tokenKey, opts.cell)
        : new RemoteProtection(new Peer(opts.vldb!, `server:${serverId}:pts`, { cell: opts.cell, trust }), tokenKey, opts.cell)
    this.callbacks = new CallbackTable(opts.callbackTableMax)
    this.replayer = new Replayer(store)
    this.locks = new LockTable(opts.lockLeaseMs)
    this.lockExpiry = setInterval(() => {
      for (const c of this.locks.expire()) log.warn(`client ${c} stopped renewing its lease: its locks are free`)
    }, Math.min(1000, this.locks.leaseMs / 4))
    this.lockExpiry.unref()
    this.vldb.onChange?.(entry => { this.locationChanged(entry) })
    this.access = new Access(store)
    this.mover = new VolumeMover({
      store, vldb: this.vldb, self: () => this.address, peer: a => this.peer(a),
      breakAll: async volume => { await this.sendBreaks(this.callbacks.breakVolume(volume)) },
    })
    this.resolver = new Resolver({
      store, self: () => this.address, peer: a => this.peer(a), changed: async fid => { await this.mutated(null, [fid], null) },
      sites: async volume => await this.sites(volume),
    })
  }

  static async open (opts: FileServerOptions): Promise<FileServer> {
    await mkdir(opts.dataDir, { recursive: true })
    const store = await VolumeStore.open(opts.dataDir)
    const meta: Database<string, string> = store.root.openDB({ name: 'cell' })
    const cell = meta.get('name')
    if (cell && cell !== opts.cell) {
      await store.close()
      throw invalid(`${opts.dataDir} belongs to cell ${cell}, not ${opts.cell}`)
    }
    if (!cell) await meta.put('name', opts.cell)
    let serverId = meta.get('serverId')
    if (!serverId) {
      serverId = randomUUID()
      await meta.put('serverId', serverId)
    }
    let trust: Required<Trust>
    let tokenKey: Uint8Array
    try {
      const host = opts.advertise ? parseHostPort(opts.advertise).host : opts.host ?? '127.0.0.1'
      const own = join(opts.dataDir, 'tls')
      trust = opts.tlsDir ? await serverTrust(opts.tlsDir, host) : await serverTrust(own, host, { newCell: opts.vldb ? undefined : opts.cell, keep: true })
      tokenKey = await readTokenKey(opts.tlsDir ?? own)
      // Kept with the data (the CA's key never): a restart without --tls finds it.
      if (opts.tlsDir && resolvePath(opts.tlsDir) !== resolvePath(own)) await saveServerTls(own, trust, tokenKey)
    } catch (err) {
      await store.close()
      throw err
    }
    return new FileServer(opts, store, serverId, trust, tokenKey)
  }

  get cell (): string { return this.opts.cell }
  get listenAddress (): string { return this.address }

  /**
   * Listens, then tells the location database where this server is: the volumes it
   * keeps follow it to a new address. The cell's first server makes the root volume.
   */
  async listen (): Promise<string> {
    const server = createServer(tlsAcceptor(this.trust, (tls, verified) => this.accept(tls, verified), why => log.warn(why)))
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.opts.port ?? 0, this.opts.host ?? '127.0.0.1', () => { server.off('error', reject); resolve() })
    })
    const a = server.address() as AddressInfo
    const host = this.opts.host && this.opts.host !== '0.0.0.0' && this.opts.host !== '::' ? this.opts.host : '127.0.0.1'
    this.address = this.opts.advertise ?? `${host}:${a.port}`
    await this.joinCell()
    if (this.opts.sweepMs !== 0) {
      this.sweeping = setInterval(() => { void this.sweep() }, this.opts.sweepMs ?? SWEEP_MS)
      this.sweeping.unref()
    }
    await this.rootVolume()
    await this.firstAdmin()
    log.info(`cell ${this.cell} serving on ${this.address}${this.opts.vldb ? ` (location database at ${this.opts.vldb})` : ''}`)
    return this.address
  }

  /**
   * Registers with the location database. One that does not answer does not keep this
   * server from serving the volumes it keeps: it registers when the database is back.
   * One of another cell is refused at once.
   */
  private async joinCell (): Promise<void> {
    try {
      await this.register()
    } catch (err) {
      const e = AfsError.from(err)
      if (e.code !== 'CONNECTION') throw e
      log.warn(`${e.message}: serving the volumes kept here, and registering once it answers`)
      this.rejoin = setInterval(() => {
        void this.register().then(() => {
          if (this.rejoin) clearInterval(this.rejoin)
          this.rejoin = null
          log.info(`registered at ${this.address} with the location database`)
        }, () => {})
      }, REJOIN_MS)
      this.rejoin.unref()
    }
  }

  /**
   * Elected the cell's leader: its chores start — every so often, volumes none of whose
   * servers is live are named (they are unreachable until one comes back).
   */
  private lead (): void {
    if (this.chores) return
    this.chores = setInterval(() => {
      void (async () => {
        if (!(this.vldb instanceof EtcdLocationDb) || this.vldb.leaderEpoch === null) return
        const live = new Set((await this.vldb.servers()).map(s => s.address))
        const orphans = (await this.vldb.list()).filter(v => !v.servers.some(s => live.has(s)))
        this.orphanVolumes = orphans.length
        for (const v of orphans) log.warn(`volume ${v.name} (${v.id}): none of its servers is live (${v.servers.join(', ')})`)
      })().catch(() => {})
    }, CHORES_MS)
    this.chores.unref()
  }

  /**
   * The cell's root volume, made by the first server of a new cell: the one keeping the
   * embedded location database, or with etcd, whichever server finds it missing first.
   */
  /** A new cell's protection database gets its admin user (password in DATA/admin.password), made by whichever server keeps it first. */
  private async firstAdmin (): Promise<void> {
    if (!(this.pts instanceof Protection)) return
    try {
      this.madeAdmin = await this.pts.bootstrap(this.opts.dataDir)
    } catch (err) {
      const e = AfsError.from(err)
      if (e.code !== 'CONNECTION') throw e
      log.warn(`${e.message}: the cell's admin user is made once the protection database answers`)
    }
  }

  private async rootVolume (): Promise<void> {
    if (this.vldb instanceof RemoteLocationDb) return
    try {
      if (!(await this.vldb.has(ROOT_VOLUME_NAME))) await this.createVolume(ROOT_VOLUME_NAME, 0)
    } catch (err) {
      const e = AfsError.from(err)
      if (e.code === 'EXISTS') return // another server of the cell made it meanwhile
      if (e.code !== 'CONNECTION') throw e
      log.warn(`${e.message}: the cell's root volume is made once the location database answers`)
    }
  }

  private async register (): Promise<void> {
    await this.vldb.start?.()
    const before = await this.vldb.registerServer(this.serverId, this.address)
    if (this.vldb instanceof EtcdLocationDb && !this.standing) {
      this.standing = true
      this.vldb.stand(this.serverId, () => { this.lead() })
    }
    for (const v of await this.vldb.list()) {
      if (this.store.movingTo(v.id) !== undefined) await this.mover.settle(v.id, before?.address)
      if (!this.store.hasVolume(v.id) || v.servers.includes(this.address)) continue
      if (before !== undefined && v.servers.includes(before.address)) {
        // Back at another address: the volumes kept here follow it.
        await this.vldb.update(v.id, { servers: v.servers.map(s => s === before.address ? this.address : s) })
      } else if (!this.store.replicaOf(v.id)) {
        // Kept here, but the location database names another server: it moved while this one was away (its move's switch done, not its end here).
        log.warn(`volume ${v.name} (${v.id}) is on ${v.servers.join(', ')} now: the copy here is refused from now on`)
        await this.store.markMoved(v.id, v.servers[0])
      }
    }
    this.registered = true
  }

  /**
   * A volume's sites, from the location database at most once a (default) sweep interval:
   * resolution asks for them for every object it resolves.
   */
  private async sites (volume: number): Promise<string[]> {
    const seen = this.sitesSeen.get(volume)
    if (seen && Date.now() - seen.at < SWEEP_MS) return seen.servers
    const servers = (await this.vldb.get(volume)).servers
    this.sitesSeen.set(volume, { at: Date.now(), servers })
    return servers
  }

  /**
   * Compares each replicated volume kept here with its other members and resolves what
   * differs: a member that was away catches up by itself. One sweep at a time.
   */
  private async sweep (): Promise<void> {
    if (this.sweepRunning) return
    this.sweepRunning = true
    try {
      for (const volume of this.store.replicatedVolumes()) {
        let sites: string[]
        try { sites = await this.sites(volume) } catch { continue }
        for (const other of sites.filter(a => a !== this.address)) {
          try {
            const r = await this.resolver.sweep(volume, other)
            if (r.resolved + r.conflicts > 0) log.info(`volume ${volume}: resolved ${r.resolved} objects with ${other}${r.conflicts ? `, ${r.conflicts} in server/server conflict` : ''}`)
          } catch (err) {
            const e = AfsError.from(err)
            if (!isUnreachable(e)) log.warn(`volume ${volume}: comparing with ${other}: ${e.message}`)
          }
        }
      }
    } finally { this.sweepRunning = false }
  }

  async close (): Promise<void> {
    await this.metricsServer?.close()
    clearInterval(this.lockExpiry)
    if (this.sweeping) clearInterval(this.sweeping)
    if (this.rejoin) clearInterval(this.rejoin)
    if (this.chores) clearInterval(this.chores)
    for (const c of this.clients.values()) c.destroy()
    this.clients.clear()
    await new Promise<void>(resolve => this.server ? this.server.close(() => resolve()) : resolve())
    for (const p of this.peers.values()) p.close()
    await this.vldb.close()
    await this.store.close()
  }

  /**
   * A new volume on `servers` (this one among them): registered, then made on each.
   * Two or more servers make a replicated volume, each member in its own slot.
   */
  async createVolume (name: string, quota: number, servers = [this.address], quorum?: Quorum) {
    if (!servers.includes(this.address)) throw invalid(`ask one of the volume's own servers (${servers.join(', ')}) to create it`)
    if (new Set(servers).size !== servers.length) throw invalid('a server is named twice')
    if (quorum === 'majority' && servers.length < 3) throw invalid('a majority quorum needs three sites or more (of two, one alone is no majority and the volume could not be written)')
    const entry = await this.vldb.create(name, servers, quota, quorum)
    const createdMs = Date.now()
    const failed: string[] = []
    await Promise.all(servers.map(async (address, slot) => {
      try {
        if (address === this.address) await this.attach(entry.id, name, quota, servers.length > 1 ? slot : null, createdMs)
        else await this.peer(address).call('volAttach', { id: entry.id, name, quota, slot, createdMs })
      } catch (err) { failed.push(`${address}: ${(err as Error).message}`) }
    }))
    if (failed.length) throw new AfsError('IO', `volume ${name} (${entry.id}) is registered on ${servers.join(', ')} but was not made on ${failed.join('; ')}`)
    log.info(`created volume ${name} (${entry.id}) on ${servers.join(', ')}`)
    return entry
  }

  /**
   * A replicated volume gains a member: an empty replica in a slot no member has, then
   * the location entry. The members' sweeps fill it while the volume stays in use (its
   * empty root is dominated by theirs, and so on down).
   */
  async addSite (name: string, server: string) {
    const entry = await this.vldb.get(name)
    if (entry.servers.includes(server)) throw exists(`${server} is a member of ${name} already`)
    if (entry.servers.length >= MAX_VOLUME_SITES) throw invalid(`a volume has at most ${MAX_VOLUME_SITES} members`)
    const slots = await Promise.all(entry.servers.map(async s => s === this.address ? this.store.replicaOf(entry.id)?.slot ?? null : (await this.peer(s).call('vectors', { volume: entry.id, after: 0, limit: 0 })).slot))
    if (slots.some(s => s === null)) throw invalid(`${name} is kept on one server without replication: only a replicated volume (made with two or more --server) takes more members`)
    const slot = [...Array(MAX_VOLUME_SITES).keys()].find(i => !slots.includes(i))!
    await this.peer(server).call('volAttach', { id: entry.id, name, quota: entry.quota, slot, createdMs: Date.now() })
    const out = await this.vldb.update(entry.id, { servers: [...entry.servers, server], epoch: (entry.epoch ?? 0) + 1 })
    this.sitesSeen.delete(entry.id)
    log.info(`volume ${name}: ${server} joined as member ${slot}; the others fill it`)
    return out
  }

  /** A replicated volume loses a member: out of the location entry (its copy stays on its disk, unused). */
  async removeSite (name: string, server: string) {
    const entry = await this.vldb.get(name)
    if (!entry.servers.includes(server)) throw notFound(`${server} is not a member of ${name}`)
    if (entry.servers.length === 1) throw invalid(`${server} is the last member of ${name}`)
    const out = await this.vldb.update(entry.id, { servers: entry.servers.filter(s => s !== server), epoch: (entry.epoch ?? 0) + 1 })
    this.sitesSeen.delete(entry.id)
    log.info(`volume ${name}: ${server} is no member any more`)
    return out
  }

  /** Makes a volume here: alone, or as replica `slot` of a replicated one. */
  private async attach (id: number, name: string, quota: number, slot: number | null, createdMs: number): Promise<void> {
    // A volume moving here that an earlier move left half copied, or that moved away from here before: it starts again from nothing.
    const stale = this.store.movedTo(id) !== undefined || (this.store.hasVolume(id) && !(await this.vldb.get(id)).servers.includes(this.address))
    if (slot === null && stale) {
      log.warn(`volume ${name} (${id}): dropping the old copy kept here before it moves here`)
      await this.store.dropVolume(id)
    }
    await this.store.createVolume(id, name, quota, slot === null ? undefined : { self: this.serverId, slot }, createdMs, NEW_VOLUME_ACL)
    await this.store.root.flushed
  }

  /** A connection to another server of the cell (for replicas), made once. */
  private peer (address: string): Peer {
    let p = this.peers.get(address)
    if (!p) {
      // Another server may hold callback promises for us only by accident (we never cache): its breaks are taken and dropped.
      p = new Peer(address, `server:${this.serverId}`, { cell: this.cell, handler: async () => ({}), trust: this.trust })
      this.peers.set(address, p)
    }
    return p
  }

  /** `verified`: the peer showed a certificate of this cell's CA (a server of the cell). */
  private accept (socket: TLSSocket, verified: boolean): void {
    const conn = new RpcConnection(socket)
    this.verified.set(conn, verified)
    conn.handler = (op, args, ctx) => this.dispatch(op, args, ctx)
    conn.on('close', () => {
      const c = conn.peer as ClientRecord | null
      if (c && this.clients.get(c.id) === conn) {
        this.clients.delete(c.id)
        this.callbacks.dropClient(c.id)
        // Its locks stay until its lease runs out (it may be back); what it waits for, it no longer does.
        this.locks.cancelWaits(c.id)
      }
    })
    conn.on('handler-error', err => log.error(`handler failed: ${(err as Error).stack ?? err}`))
  }

  private async dispatch (op: string, raw: unknown, ctx: RequestContext): Promise<unknown> {
    if (!isOp(op)) throw badRequest(`unknown request ${op}`)
    const parsed = requests[op].safeParse(raw ?? {})
    if (!parsed.success) {
      const why = `bad ${op} arguments: ${parsed.error.issues.map(i => `${i.path.join('.')} ${i.message}`).join('; ')}`
      // Refused arguments a user chose (names, sizes, times): the errno POSIX names for them, never EIO.
      throw parsed.error.issues.some(i => i.message === NAME_TOO_LONG_MESSAGE) ? nameTooLong(why) : invalid(why)
    }
    const client = ctx.connection.peer as ClientRecord | null
    if (op !== 'hello' && !client) throw protocolError('say hello first')
    const took = this.metrics.seconds.startTimer({ op })
    try {
      const out = await this.handle(op, parsed.data as never, ctx, client)
      this.metrics.requests.inc({ op, result: 'ok' })
      return out
    } catch (err) {
      // This server answers: that another one it asked did not is no reason for its client to think it unreachable.
      const e = AfsError.from(err)
      const answer = isUnreachable(e) ? new AfsError('UNAVAILABLE', e.message) : e
      this.metrics.requests.inc({ op, result: answer.code })
      throw answer
    } finally {
      took()
    }
  }

  /** Prometheus metrics of this server: requests by operation and result, their latency, callbacks, volumes, the location database. */
  private serverMetrics () {
    const m = new Metrics('afs_server_')
    m.gauge('callback_promises', 'Callback promises held for clients', () => this.callbacks.size)
    m.counted('callback_breaks_total', 'Callback promises broken (one per object and client)', () => this.breaksSent)
    m.gauge('clients', 'Clients connected', () => this.clients.size)
    m.gauge('volumes', 'Volumes kept here', () => this.store.volumeCount())
    m.gauge('leader', 'Whether this server is the cell\'s leader now (etcd cells)', () => this.vldb instanceof EtcdLocationDb && this.vldb.leaderEpoch !== null ? 1 : 0)
    m.gauge('volumes_without_live_server', 'Volumes none of whose servers is live (counted by the cell\'s leader)', () => this.orphanVolumes)
    m.gauges('location_db_up', 'The location database as this server sees it (1: reachable or kept here)', ['kind'], () => [[{ kind: this.vldbKind() }, this.vldbUp() ? 1 : 0]])
    return {
      registry: m,
      requests: m.counter('requests_total', 'Requests answered, by operation and result (ok, or the error code)', ['op', 'result']),
      seconds: m.histogram('request_seconds', 'Time to answer a request, by operation', ['op'], RPC_SECONDS),
    }
  }

  private vldbKind (): string {
    return this.vldb instanceof EtcdLocationDb ? 'etcd' : this.vldb instanceof RemoteLocationDb ? 'remote' : 'embedded'
  }

  private vldbUp (): boolean {
    return this.vldb instanceof EtcdLocationDb ? this.vldb.watching : this.rejoin === null
  }

  /** Serves /metrics at `address` (`afs server --metrics`); resolves with where. */
  async serveMetrics (address: string): Promise<string> {
    const served = await this.metrics.registry.serve(address)
    this.metricsServer = served
    return served.address
  }

  /** One handler a request, each checked against the reply the protocol promises for it. */
  private readonly handlers: { [O in Op]: (a: Args<O>, ctx: RequestContext, me: string | null) => Answer<O> | Promise<Answer<O>> } = {
    hello: (a, ctx) => this.onHello(a, ctx.connection),
    ping: () => ({}),
    vlGet: async (a, _, me) => this.locationAsked(me, await this.vldb.get(a.name ?? a.id ?? -1)),
    vlList: async () => await this.vldb.list(),
    vlCreate: async a => await this.vldb.create(a.name, a.servers, a.quota, a.quorum),
    vlUpdate: async ({ id, servers, quota, epoch }) => await this.vldb.update(id, { ...(servers ? { servers } : {}), ...(quota !== undefined ? { quota } : {}), ...(epoch !== undefined ? { epoch } : {}) }),
    vlRegister: async a => ({ before: (await this.vldb.registerServer(a.serverId, a.address)) ?? null }),
    vlServers: async () => {
      const [list, leader] = await Promise.all([this.vldb.servers(), this.vldb.leader?.()])
      return list.map(e => e.id === leader ? { ...e, leader: true } : e)
    },
    volCreate: async a => await this.createVolume(a.name, a.quota ?? 0, a.servers, a.quorum),
    volAttach: async a => { await this.attach(a.id, a.name, a.quota, a.slot, a.createdMs); return {} },
    volSetQuota: async a => await this.onSetQuota(a.name, a.quota),
    ptCreateUser: async (a, ctx) => await this.pts.createUser(await this.caller(ctx), a.name, a.password),
    ptCreateGroup: async (a, ctx) => await this.pts.createGroup(await this.caller(ctx), a.name),
    ptAddUser: async (a, ctx) => await this.pts.addUser(await this.caller(ctx), a.user, a.group),
    ptRemoveUser: async (a, ctx) => await this.pts.removeUser(await this.caller(ctx), a.user, a.group),
    ptDelete: async (a, ctx) => { await this.pts.delete(await this.caller(ctx), a.name); return {} },
    ptSetPassword: async (a, ctx) => { await this.pts.setPassword(await this.caller(ctx), a.name, a.password); return {} },
    ptExamine: async a => await this.pts.examine(a.name),
    ptMembership: async a => await this.pts.membership(a.name),
    ptList: async () => await this.pts.list(),
    ptNames: async a => ({ names: await this.pts.names(a.ids) }),
    ptLogin: async a => await this.pts.login(a.name, a.password),
    ptIdentify: async a => await this.pts.identify(a.token),
    whoami: async (_, ctx) => (await this.caller(ctx)).identity,
    statfs: async a => await this.store.statfs(a.volume),
    fetchStatus: (a, _, me) => this.reply(me, this.store.status(a.fid)),
    fetchStatuses: (a, _, me) => {
      if (a.fids.some(f => f.volume !== a.volume)) throw invalid(`fetchStatuses asks for objects of volume ${a.volume} only`)
      return { statuses: this.statusesOf(a.fids, me) }
    },
    fetchDir: (a, _, me) => this.onFetchDir(a, me),
    fetchData: async (a, _, me) => await this.onFetchData(a.fid, me, a.offset === undefined && a.length === undefined ? undefined : { offset: a.offset ?? 0, length: a.length ?? Number.MAX_SAFE_INTEGER }),
    locate: a => ({ places: this.store.locate(a.fid) }),
    lookup: a => this.onLookup(a),
    readlink: a => ({ target: this.store.get(a.fid).target ?? '' }),
    store: async (a, ctx, me) => await this.onStore(a, ctx, me),
    setattr: async ({ fid, seq, ...change }, _, me) =>
      await this.mutated(me, [fid], this.reply(me, await this.once(me, { seq }, fid, u => this.store.setattr(fid, change, u)))),
    setxattr: async (a, _, me) => await this.onXattr(a, a.value, a.mode, me),
    storeAcl: async (a, _, me) => await this.mutated(me, [a.fid], this.reply(me, await this.once(me, a, a.fid, u => this.store.setAcl(a.fid, a.acl, u)))),
    removexattr: async (a, _, me) => await this.onXattr(a, null, 'replace', me),
    lock: async (a, _, me) => await this.onLock(a, me!),
    unlock: (a, _, me) => { this.locks.release(lockRequest(a, me!, 'write')); return {} },
    testLock: (a, _, me) => { const l = this.locks.test(lockRequest(a, me!, a.kind)); return { blocker: l && this.lockReply(l) } },
    renewLocks: (_a, _, me) => ({ expiresAt: this.locks.renew(me!), locks: this.locks.heldBy(me!).map(l => ({ fid: l.fid, generation: l.generation })) }),
    create: async (a, _, me) => await this.onCreate({ ...a, op: 'create' }, me),
    mkdir: async (a, _, me) => await this.onCreate({ ...a, op: 'mkdir' }, me),
    symlink: async (a, _, me) => await this.onCreate({ ...a, op: 'symlink' }, me),
    mknod: async (a, _, me) => await this.onCreate({ ...a, op: 'mknod' }, me),
    mkmount: async (a, _, me) => await this.onCreate({ ...a, op: 'mkmount' }, me),
    link: async (a, _, me) => {
      const r = await this.once(me, a, a.dir, u => this.store.link(a.dir, a.name, a.fid, u))
      return await this.mutated(me, [a.dir, a.fid], { ...this.reply(me, r.status), dir: r.dir })
    },
    remove: async (a, _, me) => await this.onRemove(a, false, me),
    rmdir: async (a, _, me) => await this.onRemove(a, true, me),
    rename: async (a, _, me) => await this.onRename(a, me),
    replay: async (a, ctx, me) => await this.onReplay(a, ctx, me),
    replayBatch: async (a, _, me) => await this.onReplayBatch(a, me),
    resolve: async a => ({ outcome: await this.resolver.resolve(a.fid) }),
    volExamine: async a => await this.resolver.examine(await this.vldb.get(a.name)),
    volPending: async a => await this.resolver.pending(await this.vldb.get(a.name)),
    volMove: async a => await this.exclusive(a.name, async () => await this.mover.move(a.name, a.to)),
    moveTake: async a => { await this.mover.take(a.fid, a.from); return {} },
    volMoveProgress: a => ({ progress: this.mover.progressOf(a.name) }),
    resolvePull: async a => { await this.resolver.step({ op: 'resolvePull', ...a }); return {} },
    vvSet: async a => { await this.resolver.step({ op: 'vvSet', ...a }); return {} },
    resolveMerge: async a => { await this.resolver.installMerged(a.status, a.entries, a.expect); return {} },
    markConflict: async a => { await this.resolver.step({ op: 'markConflict', ...a }); return {} },
    repairReplica: async (a, ctx) => {
      if ('keep' in a) await this.resolver.repair(a.fid, a.keep)
      else if (!ctx.body) throw badRequest('a merged repair needs a body')
      else await this.resolver.repairWith(a.fid, ctx.body, a.merged)
      return {}
    },
    tombstone: a => ({ vv: this.store.tombstone(a.fid) }),
    vectors: a => ({ volumeVv: this.store.volumeVector(a.volume), slot: this.store.replicaOf(a.volume)?.slot ?? null, vectors: a.limit ? this.store.vectors(a.volume, a.after, a.limit) : [] }),
    volAddSite: async a => await this.exclusive(a.name, async () => await this.addSite(a.name, a.server)),
    volRemoveSite: async a => await this.exclusive(a.name, async () => await this.removeSite(a.name, a.server)),
    cop2: async a => {
      const pending = this.cop2Pending.get(a.sid)
      if (!pending || pending.volume !== a.volume) return {}
      this.cop2Pending.delete(a.sid)
      await this.store.cop2(a.volume, pending.vnodes, a.updateSet)
      return {}
    },
  }

  /**
   * Requests for a volume moved away are refused (the client looks it up again); updates
   * of a volume in its move's final switch wait for it.
   */
  private async handle<O extends Op> (op: O, a: Args<O>, ctx: RequestContext, client: ClientRecord | null): Promise<unknown> {
    // (A server of the cell said hello as one only with the cell's certificate.)
    const byServer = client?.id.startsWith('server:') === true
    if (SERVER_OPS.has(op) && !byServer) throw permission(`${op} is asked by the cell's servers only`)
    if (ADMIN_OPS.has(op) && !byServer) {
      const { identity } = await this.caller(ctx)
      if (!identity.admin) throw permission(`${op}: volume administration is for members of system:administrators (you are ${identity.name}: afs login, or --localauth on a server)`)
    }
    const volume = volumeOf(op, a)
    if (volume !== undefined && client && !byServer) await this.fence(volume)
    const asker: Asker = byServer ? 'server' : (await this.caller(ctx)).identity
    if (volume !== undefined) this.access.check(op, a, asker)
    return await asking.run(asker, async () => await this.dispatchChecked(op, a, ctx, client, volume))
  }

  /** A request that passed its checks: requests for a volume in its move's switch wait for it. */
  private async dispatchChecked<O extends Op> (op: O, a: Args<O>, ctx: RequestContext, client: ClientRecord | null, volume: number | undefined): Promise<unknown> {
    if (!UPDATE_OPS.has(op)) {
      this.mover.check(volume)
      return await this.handlers[op](a, ctx, client?.id ?? null)
    }
    return await this.mover.update(volume, async () => await this.handlers[op](a, ctx, client?.id ?? null))
  }

  /**
   * A client's request for a volume kept here, checked against its location entry at its
   * latest epoch (`recent`): a server taken out of a volume (vos remsite, or a move
   * finished while it was away), even one that was frozen through it and woke up, serves
   * it no more: MOVED sends the client to look it up again. Its copy stays on its disk,
   * unmarked (a move marks its source itself).
   * (Other servers are not checked: a move's target and resolving members ask before the
   * entry names them.) With the location database unreachable, what is kept here is
   * served, as the cell promises for volumes already located.
   */
  private async fence (volume: number): Promise<void> {
    // (Before it registered, its address in the entries may still be an old one.)
    if (!this.registered || !this.store.hasVolume(volume) || this.store.movedTo(volume) !== undefined || this.store.movingTo(volume) !== undefined) return
    let entry: VolumeEntry
    try {
      entry = await (this.vldb.recent?.(volume) ?? this.vldb.get(volume))
    } catch {
      return
    }
    if (entry.servers.includes(this.address)) return
    throw moved(`volume ${entry.name} (${volume}) is on ${entry.servers.join(', ')} at epoch ${entry.epoch ?? 0}: this server is no member of it any more`, { to: entry.servers[0] })
  }

  /** Who a request is made for: the user of the token it carries (a bad token is refused with why), or system:anyuser. */
  private async caller (ctx: RequestContext): Promise<Caller> {
    return { token: ctx.token, identity: ctx.token ? await this.pts.identify(ctx.token) : ANONYMOUS }
  }

  /** Runs an admin command on volume `name` as the only one on it in the cell (etcd), or on this server. */
  private async exclusive<T> (name: string, run: () => Promise<T>): Promise<T> {
    if (this.vldb.exclusive) return await this.vldb.exclusive(`volume/${name}`, run)
    if (this.adminBusy.has(name)) throw new AfsError('BUSY', `volume ${name} is being changed by another admin command; try again when it is done`)
    this.adminBusy.add(name)
    try {
      return await run()
    } finally {
      this.adminBusy.delete(name)
    }
  }

  private onHello (a: Args<'hello'>, conn: RpcConnection) {
    if (a.protocol !== PROTOCOL_VERSION) throw protocolError(`protocol ${a.protocol} is not ${PROTOCOL_VERSION}`)
    if (a.clientId.startsWith('server:') && this.verified.get(conn) !== true) throw protocolError('a server of the cell proves itself with a certificate of the cell\'s CA; this connection showed none')
    const old = this.clients.get(a.clientId)
    if (old && old !== conn) {
      // (Each of a peer's connections says hello as its own: a second with the same id means the first is dead.)
      log.info(`${a.clientId} said hello again on a new connection: its old one is closed`)
      this.callbacks.dropClient(a.clientId)
      old.destroy()
    }
    conn.peer = { id: a.clientId, hostname: a.hostname } satisfies ClientRecord
    this.clients.set(a.clientId, conn)
    return { cell: this.cell, protocol: PROTOCOL_VERSION, serverId: this.serverId, rootVolume: ROOT_VOLUME_NAME }
  }

  private async onSetQuota (name: string, quota: number) {
    const entry = await this.vldb.get(name)
    if (!this.store.hasVolume(entry.id)) throw invalid(`volume ${name} is not on this server: ask ${entry.servers.join(' or ')}`)
    await this.store.setQuota(entry.id, quota)
    const out = await this.vldb.update(entry.id, { quota })
    await this.store.root.flushed
    return out
  }

  /** A location entry a client asked for: it is told when the entry changes (while it stays connected). */
  private locationAsked (client: string | null, entry: VolumeEntry): VolumeEntry {
    if (client) {
      let askers = this.locationAskers.get(entry.id)
      if (!askers) this.locationAskers.set(entry.id, askers = new Set())
      askers.add(client)
    }
    return entry
  }

  /** A location entry changed: the clients that asked for it are told, like a callback break on it. */
  private locationChanged (entry: VolumeEntry): void {
    for (const client of this.locationAskers.get(entry.id) ?? []) {
      const conn = this.clients.get(client)
      if (!conn) { this.locationAskers.get(entry.id)!.delete(client); continue }
      void conn.request('locationChange', { volumes: [entry] }, { timeoutMs: CALLBACK_BREAK_TIMEOUT_MS }).catch(() => {})
    }
  }

  /** A status reply with a fresh callback promise for `client`. */
  private reply (client: string | null, status: VnodeStatus): StatusReply {
    const { expiresAt, evicted } = this.callbacks.grant(fidKey(status.fid), client ?? '')
    if (evicted.size) void this.sendBreaks(evicted)
    // The caller's rights come with it, as AFS's CallerAccess: its cache manager checks them for its other users itself.
    const who = asking.getStore()
    return who === undefined ? { status, callback: { expiresAt } } : { status, callback: { expiresAt }, access: this.access.rights(status.fid, who) }
  }

  private onFetchDir (a: Args<'fetchDir'>, me: string | null): DirReply {
    const page = this.store.listDir(a.fid, a.after)
    const reply = { ...this.reply(me, this.store.status(a.fid)), ...page }
    if (!a.statuses) return reply
    return { ...reply, statuses: this.statusesOf(page.entries.map(([, fid]) => fid), me, a.data ?? 0) }
  }

  /**
   * Bulk status: each object's status with a callback, null where the caller may not look
   * it up or it is gone; with the bytes of each file of at most `dataUpTo` bytes kept inline
   * that the caller may read, while the page's budget lasts.
   */
  private statusesOf (fids: Fid[], me: string | null, dataUpTo = 0): Array<(StatusReply & { data?: Uint8Array }) | null> {
    const who = asking.getStore() ?? ANONYMOUS
    let budget = PREFETCH_PAGE_BYTES
    return fids.map(fid => {
      try {
        this.access.check('fetchStatus', { fid }, who)
        const status = this.store.status(fid)
        if (status.type !== 'file' || status.size > Math.min(dataUpTo, budget)) return this.reply(me, status)
        const data = this.smallData(fid, who)
        if (!data) return this.reply(me, status)
        budget -= data.bytes.length
        return { ...this.reply(me, data.status), data: data.bytes }
      } catch {
        return null // (not to be looked up by this caller, or gone: it asks for it alone if it needs it)
      }
    })
  }

  /** A small file's bytes kept inline and the status they are of, if the caller may read them. */
  private smallData (fid: Fid, who: Asker): { status: VnodeStatus, bytes: Uint8Array } | null {
    try { this.access.check('fetchData', { fid }, who) } catch { return null }
    const { status, blob } = this.store.blobOf(fid)
    const bytes = blob === null ? new Uint8Array(0) : this.store.blobs.inlineBytes(fid.volume, blob)
    return bytes && bytes.length === status.size ? { status, bytes } : null
  }

  /** A file's bytes, or (`range`) those of a part of it. */
  private async onFetchData (fid: Fid, me: string | null, range?: ByteRange): Promise<Download<StatusReply>> {
    for (let attempt = 0; ; attempt++) {
      const { status, blob } = this.store.blobOf(fid)
      // Promise before any await: a store committing meanwhile must find this promise to break.
      const reply = this.reply(me, status)
      if (!blob || (range && range.offset >= status.size)) return new Download(reply, emptyBody())
      try {
        // Each version has its own blob: this one holds exactly `status`'s data, or is gone.
        return new Download(reply, await this.store.blobs.open(fid.volume, blob, range))
      } catch (err) {
        // A store replaced the blob between reading the record and opening it: look again.
        const e = AfsError.from(err)
        if (e.code !== 'NOT_FOUND' || attempt >= 5) throw e
      }
    }
  }

  private async onStore (a: Args<'store'>, ctx: RequestContext, me: string | null) {
    if (!ctx.body) throw badRequest('store needs a body')
    // Fencing: a write under a lock that expired (and may be someone else's now) is refused.
    if (a.lock !== undefined && !this.locks.holds(fidKey(a.fid), me ?? '', a.lock)) {
      throw noLock(`the write lock (generation ${a.lock}) this store was made under is no longer held`)
    }
    const body = ctx.body
    const attrs = { mode: a.mode, uid: a.uid, gid: a.gid, atimeMs: a.atimeMs, atimeNs: a.atimeNs }
    const status = await this.once(me, a, a.fid, u => this.store.store(a.fid, body, a.size, { mtimeMs: a.mtimeMs, mtimeNs: a.mtimeNs, ctimeMs: a.ctimeMs }, u, { ifVersion: a.ifVersion }, attrs))
    return await this.mutated(me, [a.fid], this.reply(me, status))
  }

  private async onXattr (a: { fid: Fid, name: string, seq?: number }, value: Uint8Array | null, mode: XattrMode, me: string | null) {
    const status = await this.once(me, a, a.fid, u => this.store.setxattr(a.fid, a.name, value, mode, u))
    return await this.mutated(me, [a.fid], this.reply(me, status))
  }

  /** A name's object. */
  private onLookup (a: Args<'lookup'>): LookupReply {
    this.store.get(a.dir)
    const fid = this.store.lookup(a.dir, a.name)
    if (!fid) return { fid, status: null }
    const v = this.store.get(fid)
    return { fid, status: toStatus(fid.volume, v) }
  }

  private async onCreate (a: Making & { dir: Fid, name: string, seq?: number }, me: string | null) {
    if (a.op === 'mkmount') await this.vldb.get(a.volume)
    const r = await this.once(me, a, a.dir, u => this.store.create(a.dir, a.name, newObject(a, ownerNow()), u))
    return await this.mutated(me, [a.dir], { ...this.reply(me, r.status), dir: r.dir })
  }

  private async onLock (a: Args<'lock'>, me: string): Promise<LockReply> {
    this.store.get(a.fid)
    const req = lockRequest(a, me, a.kind)
    if (a.wait) return this.lockReply(await this.locks.wait(req))
    const r = this.locks.acquire(req)
    if ('blocked' in r) throw wouldBlock(`${a.kind} lock on ${fidKey(a.fid)} is held by another`, { blocker: this.lockReply(r.blocked) })
    return this.lockReply(r.granted)
  }

  private lockReply (l: HeldLock): LockReply {
    const peer = this.clients.get(l.client)?.peer as ClientRecord | null | undefined
    return { kind: l.kind, start: l.start, end: l.end === Infinity ? null : l.end, generation: l.generation, expiresAt: this.locks.leaseOf(l.client), holder: peer?.hostname ?? l.client }
  }

  private async onRemove (a: Args<'remove'>, directory: boolean, me: string | null) {
    const r = await this.once(me, a, a.dir, u => this.store.remove(a.dir, a.name, directory, u, { ifFid: a.ifFid, ifVersion: a.ifVersion }))
    return await this.mutated(me, [a.dir, r.fid], { dir: r.dir, status: r.status })
  }

  private async onRename (a: Args<'rename'>, me: string | null) {
    const r = await this.once(me, a, a.fromDir, u => this.store.rename(a.fromDir, a.fromName, a.toDir, a.toName, u))
    const changed = [a.fromDir, a.toDir, r.moved.fid, ...(r.replaced ? [r.replaced.fid] : [])]
    return await this.mutated(me, changed, r)
  }

  private async onReplay (a: Args<'replay'>, ctx: RequestContext, me: string | null) {
    const u = this.update(me, a.seq, a.newFid)
    const { reply, changed } = await this.replayer.apply(me ?? '', a.seq, a.record, ctx.body, u)
    this.replayed(a.record, reply, u, me)
    return await this.mutated(me, changed, reply)
  }

  /** Records in one request, one sync and one reply: each checked against the ACLs as it comes (it may name what an earlier one made). */
  private async onReplayBatch (a: Args<'replayBatch'>, me: string | null) {
    const asker = asking.getStore() ?? ANONYMOUS
    const { changed, ...reply } = await this.replayer.applyBatch(me ?? '', a.volume, a.records, {
      check: record => this.access.check('replay', { seq: 0, record }, asker),
      update: seq => this.update(me, seq, undefined),
      applied: (record, r, u) => this.replayed(record, r, u, me),
    })
    return await this.mutated(me, changed, reply)
  }

  /** After a replayed record: a replicated volume's update waits for its COP2; the client has a callback on what it made or changed. */
  private replayed (record: CmlRecordBody, reply: ReplayReply, u: Update, me: string | null): void {
    this.touched(record.fid.volume, u)
    if (reply.status) this.callbacks.grant(fidKey(reply.status.fid), me ?? '')
  }

  /**
   * Runs a mutation; one the client numbered (`seq`) is applied at most once, whether it
   * comes as this request or as the log record the client made of it when it gave up.
   */
  private async once<T> (me: string | null, n: { seq?: number, removeSeq?: number, newFid?: Fid }, on: Fid, change: (u: Update) => Promise<T>): Promise<T> {
    const u = this.update(me, n.seq, n.newFid)
    const out = n.seq === undefined || me === null
      ? await change(u)
      : await this.replayer.connected({ client: me, seq: n.seq, removeSeq: n.removeSeq }, on.volume, u, change)
    this.touched(on.volume, u)
    return out
  }

  /** An update's context: its id (the client's number for it, when numbered), the fid a create is to take. */
  private update (me: string | null, seq: number | undefined, newFid: Fid | undefined): Update {
    return { sid: me !== null && seq !== undefined ? `${me}:${seq}` : undefined, fid: newFid, touched: [] }
  }

  /** An update a replicated volume stamped: kept until the client's COP2 says which members took it too. */
  private touched (volume: number, u: Update): void {
    if (!u.sid || !u.touched?.length) return
    this.cop2Pending.set(u.sid, { volume, vnodes: u.touched })
    if (this.cop2Pending.size > COP2_PENDING_MAX) this.cop2Pending.delete(this.cop2Pending.keys().next().value!)
  }

  /** After a committed mutation: wait until it is on disk, break every other client's promises on `fids`, then reply. */
  private async mutated<T> (me: string | null, fids: Fid[], result: T): Promise<T> {
    // LMDB (overlappingSync) resolves a commit before its fsync: a reply promises durability.
    await this.store.root.flushed
    await this.sendBreaks(this.callbacks.breakFor(fids.map(fidKey), me))
    return result
  }

  private async sendBreaks (breaks: Breaks): Promise<void> {
    await Promise.all([...breaks].map(async ([client, keys]) => {
      this.breaksSent += keys.length
      const conn = this.clients.get(client)
      if (!conn) return
      try {
        await conn.request('callbackBreak', { fids: keys.map(parseFid) }, { timeoutMs: CALLBACK_BREAK_TIMEOUT_MS })
      } catch (err) {
        log.warn(`client ${client} did not take a callback break (${(err as Error).message}); dropping its promises`)
        this.callbacks.dropClient(client)
        this.clients.delete(client)
        conn.destroy()
      }
    }))
  }
}

async function * emptyBody (): AsyncIterable<Buffer> { /* no bytes */ }

function lockRequest (a: { fid: Fid, owner: string, family: 'posix' | 'flock', start: number, end: number | null }, client: string, kind: LockKind): LockRequest {
  return { fid: fidKey(a.fid), client, owner: a.owner, family: a.family, kind, start: a.start, end: a.end ?? Infinity }
}

/** The volume a request is about, if it is about one of the volumes kept here (not the location database's, not a server's own). */
function volumeOf (op: Op, a: unknown): number | undefined {
  if (op.startsWith('vl') || op === 'volAttach' || op === 'volCreate' || op === 'volMove' || op === 'volMoveProgress' || op === 'moveTake' || op === 'hello') return undefined
  type Some = { fid?: Fid, dir?: Fid, fromDir?: Fid, volume?: unknown, record?: Some }
  const x = a as Some
  const r = x.record
  const v = x.fid?.volume ?? x.dir?.volume ?? x.fromDir?.volume ?? r?.fid?.volume ?? r?.dir?.volume ?? r?.fromDir?.volume ?? x.volume
  return typeof v === 'number' ? v : undefined
}
