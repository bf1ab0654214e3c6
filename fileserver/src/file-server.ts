// The volume server (AFS fileserver / Coda Vice). Responsibilities:
//   1. accept client connections and answer the protocol's requests (onFetchStatus, onStore, …)
//   2. keep callback promises, and break every other holder's before a mutation returns
//   3. host the embedded volume location database of a one-machine cell
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { open as openFile } from 'node:fs/promises'
import { mkdir } from 'node:fs/promises'
import {
  AfsError, Download, RpcConnection, badRequest, fidKey, parseFid, invalid, isOp, makeLog, nameTooLong, protocolError, requests,
  noLock, wouldBlock, LockTable, NAME_TOO_LONG_MESSAGE, PROTOCOL_VERSION, CHUNK_BYTES,
  type Args, type HeldLock, type LockKind, type LockRequest, type Fid, type LocateReply, type LockReply, type LookupReply, type Op, type RequestContext, type VnodeStatus,
} from '@afs-ts/common'
import { ROOT_VOLUME_NAME, VolumeLocationDb } from '@afs-ts/volumes'
import { CallbackTable, type Breaks } from './callback-table.ts'
import { VolumeStore, type Within } from './volume-store.ts'
import { Replayer } from './replay.ts'
import { newObject, toStatus, type Making } from './vnode.ts'
import type { Database } from 'lmdb'

const log = makeLog('fileserver')
/** A client that does not acknowledge a callback break in this time loses its promises. */
export const CALLBACK_BREAK_TIMEOUT_MS = 5_000

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
}

interface ClientRecord { id: string, hostname: string }

export class FileServer {
  readonly store: VolumeStore
  readonly vldb: VolumeLocationDb
  readonly callbacks: CallbackTable
  readonly replayer: Replayer
  readonly locks: LockTable
  private readonly lockExpiry: NodeJS.Timeout
  readonly counters: Record<string, number> = {}
  private readonly clients = new Map<string, RpcConnection>()
  private server: Server | null = null
  private address = ''

  private constructor (readonly opts: FileServerOptions, store: VolumeStore) {
    this.store = store
    this.vldb = new VolumeLocationDb(store.root)
    this.callbacks = new CallbackTable(opts.callbackTableMax)
    this.replayer = new Replayer(store)
    this.locks = new LockTable(opts.lockLeaseMs)
    this.lockExpiry = setInterval(() => {
      for (const c of this.locks.expire()) log.warn(`client ${c} stopped renewing its lease: its locks are free`)
    }, Math.min(1000, this.locks.leaseMs / 4))
    this.lockExpiry.unref()
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
    return new FileServer(opts, store)
  }

  get cell (): string { return this.opts.cell }
  get listenAddress (): string { return this.address }

  /** Listens, then makes sure the cell's root volume exists and the VLDB points here. */
  async listen (): Promise<string> {
    const server = createServer(socket => this.accept(socket))
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.opts.port ?? 0, this.opts.host ?? '127.0.0.1', () => { server.off('error', reject); resolve() })
    })
    const a = server.address() as AddressInfo
    const host = this.opts.host && this.opts.host !== '0.0.0.0' && this.opts.host !== '::' ? this.opts.host : '127.0.0.1'
    this.address = this.opts.advertise ?? `${host}:${a.port}`
    for (const v of this.vldb.list()) {
      if (this.store.hasVolume(v.id) && v.servers.join() !== this.address) await this.vldb.update(v.id, { servers: [this.address] })
    }
    if (!this.vldb.has(ROOT_VOLUME_NAME)) await this.createVolume(ROOT_VOLUME_NAME, 0)
    log.info(`cell ${this.cell} serving on ${this.address}`)
    return this.address
  }

  async close (): Promise<void> {
    clearInterval(this.lockExpiry)
    for (const c of this.clients.values()) c.destroy()
    this.clients.clear()
    await new Promise<void>(resolve => this.server ? this.server.close(() => resolve()) : resolve())
    await this.store.close()
  }

  async createVolume (name: string, quota: number) {
    const entry = await this.vldb.create(name, [this.address], quota)
    await this.store.createVolume(entry.id, name, quota)
    await this.store.root.flushed
    log.info(`created volume ${name} (${entry.id})`)
    return entry
  }

  private accept (socket: Socket): void {
    const conn = new RpcConnection(socket)
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
    this.counters[op] = (this.counters[op] ?? 0) + 1
    const client = ctx.connection.peer as ClientRecord | null
    if (op !== 'hello' && !client) throw protocolError('say hello first')
    return await this.handle(op, parsed.data as never, ctx, client)
  }

  private async handle<O extends Op> (op: O, a: Args<O>, ctx: RequestContext, client: ClientRecord | null): Promise<unknown> {
    const me = client?.id ?? null
    const s = this.store
    switch (op) {
      case 'hello': return this.onHello(a as Args<'hello'>, ctx.connection)
      case 'ping': return {}
      case 'vlGet': { const x = a as Args<'vlGet'>; return this.vldb.get(x.name ?? x.id ?? -1) }
      case 'vlList': return this.vldb.list()
      case 'volCreate': { const x = a as Args<'volCreate'>; return await this.createVolume(x.name, x.quota ?? 0) }
      case 'volSetQuota': { const x = a as Args<'volSetQuota'>; return await this.onSetQuota(x.name, x.quota) }
      case 'statfs': return await s.statfs((a as Args<'statfs'>).volume)
      case 'fetchStatus': { const f = (a as Args<'fetchStatus'>).fid; return this.reply(me, s.status(f)) }
      case 'fetchDir': return this.onFetchDir(a as Args<'fetchDir'>, me)
      case 'fetchData': return await this.onFetchData((a as Args<'fetchData'>).fid, me)
      case 'locate': return { places: s.locate((a as Args<'locate'>).fid) } satisfies LocateReply
      case 'lookup': return this.onLookup(a as Args<'lookup'>, me)
      case 'readlink': return { target: s.get((a as Args<'readlink'>).fid).target ?? '' }
      case 'store': return await this.onStore(a as Args<'store'>, ctx, me)
      case 'setattr': {
        const { fid, seq, ...change } = a as Args<'setattr'>
        return await this.mutated(me, [fid], this.reply(me, await this.once(me, { seq }, fid, mark => s.setattr(fid, change, mark))))
      }
      case 'setxattr': case 'removexattr': {
        const x = a as Args<'setxattr'>
        const status = await this.once(me, x, x.fid, mark => s.setxattr(x.fid, x.name, op === 'setxattr' ? x.value : null, op === 'setxattr' ? x.mode : 'replace', mark))
        return await this.mutated(me, [x.fid], this.reply(me, status))
      }
      case 'lock': return await this.onLock(a as Args<'lock'>, me!)
      case 'unlock': { const x = a as Args<'unlock'>; this.locks.release(lockRequest(x, me!, 'write')); return {} }
      case 'testLock': { const x = a as Args<'testLock'>; const l = this.locks.test(lockRequest(x, me!, x.kind)); return { blocker: l && this.lockReply(l) } }
      case 'renewLocks': return { expiresAt: this.locks.renew(me!), locks: this.locks.heldBy(me!).map(l => ({ fid: l.fid, generation: l.generation })) }
      case 'create': case 'mkdir': case 'symlink': case 'mknod': case 'mkmount': return await this.onCreate({ ...a as Args<'create'>, op } as never, me)
      case 'link': {
        const x = a as Args<'link'>
        const r = await this.once(me, x, x.dir, mark => s.link(x.dir, x.name, x.fid, mark))
        return await this.mutated(me, [x.dir, x.fid], { ...this.reply(me, r.status), dir: r.dir })
      }
      case 'remove': case 'rmdir': return await this.onRemove(a as Args<'remove'>, op === 'rmdir', me)
      case 'rename': return await this.onRename(a as Args<'rename'>, me)
      case 'replay': return await this.onReplay(a as Args<'replay'>, ctx, me)
      default: { const never: never = op as never; throw badRequest(`unhandled ${String(never)}`) }
    }
  }

  private onHello (a: Args<'hello'>, conn: RpcConnection) {
    if (a.protocol !== PROTOCOL_VERSION) throw protocolError(`protocol ${a.protocol} is not ${PROTOCOL_VERSION}`)
    const old = this.clients.get(a.clientId)
    if (old && old !== conn) { this.callbacks.dropClient(a.clientId); old.destroy() }
    conn.peer = { id: a.clientId, hostname: a.hostname } satisfies ClientRecord
    this.clients.set(a.clientId, conn)
    return { cell: this.cell, protocol: PROTOCOL_VERSION, serverId: this.address, rootVolume: ROOT_VOLUME_NAME }
  }

  private async onSetQuota (name: string, quota: number) {
    const entry = this.vldb.get(name)
    await this.store.setQuota(entry.id, quota)
    const out = await this.vldb.update(entry.id, { quota })
    await this.store.root.flushed
    return out
  }

  /** A status reply with a fresh callback promise for `client`. */
  private reply (client: string | null, status: VnodeStatus) {
    const { expiresAt, evicted } = this.callbacks.grant(fidKey(status.fid), client ?? '')
    if (evicted.size) void this.sendBreaks(evicted)
    return { status, callback: { expiresAt } }
  }

  private onFetchDir (a: Args<'fetchDir'>, me: string | null) {
    const page = this.store.listDir(a.fid, a.after)
    return { ...this.reply(me, this.store.status(a.fid)), ...page }
  }

  private async onFetchData (fid: Fid, me: string | null): Promise<Download> {
    for (let attempt = 0; ; attempt++) {
      const { status, path } = this.store.blobPath(fid)
      // Promise before any await: a store committing meanwhile must find this promise to break.
      const reply = this.reply(me, status)
      if (!path) return new Download(reply, emptyBody())
      try {
        // Each version has its own blob: this one holds exactly `status`'s data, or is gone.
        const fh = await openFile(path, 'r')
        return new Download(reply, fh.createReadStream({ highWaterMark: CHUNK_BYTES }))
      } catch (err) {
        // A store replaced the blob between reading the record and opening it: look again.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 5) throw AfsError.from(err)
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
    const status = await this.once(me, a, a.fid, mark => this.store.store(a.fid, body, a.size, { mtimeMs: a.mtimeMs, mtimeNs: a.mtimeNs, ctimeMs: a.ctimeMs }, mark, { ifVersion: a.ifVersion }))
    return await this.mutated(me, [a.fid], this.reply(me, status))
  }

  /** A name's object. */
  private onLookup (a: Args<'lookup'>, me: string | null): LookupReply {
    this.store.get(a.dir)
    const fid = this.store.lookup(a.dir, a.name)
    if (!fid) return { fid, status: null }
    const v = this.store.get(fid)
    return { fid, status: toStatus(fid.volume, v) }
  }

  private async onCreate (a: Making & { dir: Fid, name: string, seq?: number }, me: string | null) {
    if (a.op === 'mkmount') this.vldb.get(a.volume)
    const r = await this.once(me, a, a.dir, mark => this.store.create(a.dir, a.name, newObject(a), mark))
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
    const r = await this.once(me, a, a.dir, mark => this.store.remove(a.dir, a.name, directory, mark, { ifFid: a.ifFid, ifVersion: a.ifVersion }))
    return await this.mutated(me, [a.dir, r.fid], { dir: r.dir, status: r.status })
  }

  private async onRename (a: Args<'rename'>, me: string | null) {
    const r = await this.once(me, a, a.fromDir, mark => this.store.rename(a.fromDir, a.fromName, a.toDir, a.toName, mark))
    const changed = [a.fromDir, a.toDir, r.moved.fid, ...(r.replaced ? [r.replaced.fid] : [])]
    return await this.mutated(me, changed, r)
  }

  private async onReplay (a: Args<'replay'>, ctx: RequestContext, me: string | null) {
    const { reply, changed } = await this.replayer.apply(me ?? '', a.seq, a.record, ctx.body)
    if (reply.status) this.callbacks.grant(fidKey(reply.status.fid), me ?? '')
    return await this.mutated(me, changed, reply)
  }

  /**
   * Runs a mutation; one the client numbered (`seq`) is applied at most once, whether it
   * comes as this request or as the log record the client made of it when it gave up.
   */
  private async once<T> (me: string | null, n: { seq?: number, removeSeq?: number }, on: Fid, change: (mark?: Within) => Promise<T>): Promise<T> {
    if (n.seq === undefined || me === null) return await change()
    return await this.replayer.connected({ client: me, seq: n.seq, removeSeq: n.removeSeq }, on.volume, change)
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
