// One connection from this cache manager to one volume server: says hello with our
// stable client id, counts RPCs, receives callback breaks (the server's requests to
// us), and knows whether the server is reachable. A link is in exactly one of these
// states: up, down. It goes down on the first failed RPC or keep-alive probe, and
// comes back up only after PROBES_TO_RECONNECT probes in a row succeed (hysteresis),
// so a flapping network does not flap the volumes. Each change is logged with its
// cause; callbacks granted before the link last went down are void (its epoch grew).
import { EventEmitter } from 'node:events'
import { hostname } from 'node:os'
import {
  RpcConnection, callbackBreakSchema, checkHello, isUnreachable, locationChangeSchema, type VolumeEntry, connectTo, badRequest, makeLog, volumeOffline,
  PROTOCOL_VERSION, fidKey, type Fid, type HelloReply, type InboundStream, type Op, type Args, type Reply, type StatusReply, type Trust,
} from '@afs-ts/common'
import { RPC_TIMEOUT_MS, PROBE_INTERVAL_MS, PROBE_TIMEOUT_MS, PROBES_TO_RECONNECT } from './constants.ts'
import type { Counters } from './counters.ts'

/** What a link needs to be trusted and to speak for local users: the cells' CAs, and each acting user's token for a cell. */
export interface Credentials { trust: Trust, tokenFor (cell: string): string | undefined }

const log = makeLog('cache-manager')

export type LinkState = 'up' | 'down'

/** An upload's bytes: a stream, or a function that opens one (when they may go to several servers). */
export type Body = AsyncIterable<Buffer> | (() => AsyncIterable<Buffer>)


export class ServerLink extends EventEmitter {
  private conn: RpcConnection | null = null
  private connecting: Promise<RpcConnection> | null = null
  private probeTimer: NodeJS.Timeout | null = null
  private goodProbes = 0
  private probing = false
  private lastHeard = 0
  state: LinkState = 'down'
  /** `afs disconnect`: stay down whatever the probes say. */
  forcedDown = false
  /** Grows whenever the link goes down; callbacks from an older epoch are void. */
  epoch = 0
  hello: HelloReply | null = null
  downSince = Date.now()
  downCause = 'not contacted yet'
  /** Orders requests sent and breaks received: when each object's promise was last broken. */
  private clock = 0
  private readonly brokenAt = new Map<string, number>()
  private readonly inflight = new Set<number>()

  /** `creds`: the CAs whose certificates make a server good, and the tokens requests carry. */
  constructor (readonly address: string, private readonly clientId: string, private readonly counters: Counters,
    private readonly creds: Credentials, private readonly probeIntervalMs = PROBE_INTERVAL_MS) {
    super()
  }

  get connected (): boolean { return this.state === 'up' }

  /** The token of the local user this request is made for, in this server's cell (none before hello: system:anyuser). */
  private token (): string | undefined {
    return this.hello ? this.creds.tokenFor(this.hello.cell) : undefined
  }

  /** First contact: up if the server answers now, else down (and probing). */
  async start (): Promise<boolean> {
    this.probeTimer ??= setInterval(() => { void this.probe() }, this.probeIntervalMs)
    this.probeTimer.unref()
    try {
      await this.ping()
      this.markUp('first contact')
      return true
    } catch (err) {
      this.downCause = (err as Error).message
      return false
    }
  }

  async call<O extends Op> (op: O, args: Args<O>, timeoutMs = RPC_TIMEOUT_MS): Promise<Reply<O>> {
    return await this.guard(async conn => await conn.request(op, args, { timeoutMs, token: this.token() }) as Reply<O>)
  }

  async download<O extends Op> (op: O, args: Args<O>): Promise<{ result: Reply<O>, body: InboundStream }> {
    return await this.guard(async conn => await conn.download(op, args, { token: this.token() }) as { result: Reply<O>, body: InboundStream })
  }

  async upload<O extends Op> (op: O, args: Args<O>, body: Body): Promise<Reply<O>> {
    return await this.guard(async conn => await conn.upload(op, args, typeof body === 'function' ? body() : body, { token: this.token() }) as Reply<O>)
  }

  private async guard<T> (fn: (conn: RpcConnection) => Promise<T>): Promise<T> {
    if (this.state === 'down') throw volumeOffline(`server ${this.address} is unreachable (${this.downCause})`)
    const sent = ++this.clock
    this.inflight.add(sent)
    try {
      const conn = await this.connection()
      this.counters.rpcs++
      const out = await fn(conn)
      this.lastHeard = Date.now()
      this.voidBrokenPromise(out, sent)
      return out
    } catch (err) {
      if (isUnreachable(err)) this.markDown((err as Error).message)
      throw err
    } finally {
      this.inflight.delete(sent)
    }
  }

  /**
   * A break can overtake the reply whose promise it breaks (the server breaks it while
   * the reply is on its way): a reply whose object was broken after the request went out
   * comes with no promise, so a stale version is never trusted — each status of a bulk
   * reply alike.
   */
  private voidBrokenPromise (out: unknown, sent: number): void {
    const reply = ((out as { result?: unknown })?.result ?? out) as (Partial<StatusReply> & { statuses?: unknown }) | null
    const voidIfBroken = (r: Partial<StatusReply> | null) => {
      if (r?.status && r.callback && (this.brokenAt.get(fidKey(r.status.fid)) ?? 0) > sent) r.callback = { expiresAt: 0 }
    }
    voidIfBroken(reply)
    // (Bulk statuses, of a listing's entries or of many objects, each came with a promise too.)
    if (Array.isArray(reply?.statuses)) for (const s of reply.statuses as Array<StatusReply | null>) voidIfBroken(s)
  }

  /** `afs disconnect` / `afs reconnect`. */
  force (down: boolean): void {
    this.forcedDown = down
    if (down) this.markDown('disconnected by the user')
    else void this.probe(1) // the user says the network is back: one answer is enough
  }

  markDown (cause: string): void {
    this.goodProbes = 0
    if (this.state === 'down') return
    this.state = 'down'
    this.downSince = Date.now()
    this.downCause = cause
    this.epoch++
    const c = this.conn
    this.conn = null
    c?.destroy()
    log.warn(`server ${this.address} is unreachable: ${cause}`)
    this.emit('down', cause)
  }

  private markUp (cause: string): void {
    if (this.state === 'up') return
    this.state = 'up'
    this.epoch++
    log.info(`server ${this.address} is reachable again (${cause})`)
    this.emit('up')
  }

  private async probe (needed = PROBES_TO_RECONNECT): Promise<void> {
    if (this.forcedDown || this.probing) return
    this.probing = true
    try { await this.probeOnce(needed) } finally { this.probing = false }
  }

  private async probeOnce (needed: number): Promise<void> {
    if (this.state === 'up') {
      if (Date.now() - this.lastHeard < this.probeIntervalMs) return
      try { await this.ping() } catch (err) { this.markDown(`keep-alive failed: ${(err as Error).message}`) }
      return
    }
    try {
      await this.ping()
      if (++this.goodProbes >= needed) this.markUp(`${this.goodProbes} probe${this.goodProbes > 1 ? 's' : ''} answered`)
    } catch (err) {
      this.goodProbes = 0
      this.downCause = (err as Error).message
    }
  }

  private async ping (): Promise<void> {
    const conn = await this.connection()
    this.counters.probes++
    await conn.request('ping', {}, { timeoutMs: PROBE_TIMEOUT_MS })
    this.lastHeard = Date.now()
  }

  close (): void {
    if (this.probeTimer) clearInterval(this.probeTimer)
    this.probeTimer = null
    this.conn?.destroy()
    this.conn = null
  }

  private connection (): Promise<RpcConnection> {
    if (this.conn && !this.conn.isClosed) return Promise.resolve(this.conn)
    this.connecting ??= this.open().finally(() => { this.connecting = null })
    return this.connecting
  }

  private async open (): Promise<RpcConnection> {
    const conn = new RpcConnection(await connectTo(this.address, PROBE_TIMEOUT_MS, this.creds.trust), async (op, args) => this.onServerRequest(op, args))
    conn.on('close', () => {
      if (this.conn !== conn) return
      this.conn = null
      this.markDown('connection closed')
    })
    this.counters.rpcs++
    try {
      this.hello = checkHello(this.address, await conn.request('hello', { protocol: PROTOCOL_VERSION, clientId: this.clientId, hostname: hostname() }, { timeoutMs: PROBE_TIMEOUT_MS }))
    } catch (err) {
      conn.destroy()
      throw err
    }
    this.conn = conn
    return conn
  }

  /** Breaks older than every request still out can overtake nothing any more. */
  private forgetOldBreaks (): void {
    if (this.brokenAt.size < 1024) return
    const oldest = Math.min(this.clock, ...this.inflight)
    for (const [k, at] of this.brokenAt) if (at < oldest) this.brokenAt.delete(k)
  }

  private async onServerRequest (op: string, args: unknown): Promise<unknown> {
    if (op === 'locationChange') {
      const parsed = locationChangeSchema.safeParse(args)
      if (!parsed.success) throw badRequest('bad locationChange')
      this.emit('locations', parsed.data.volumes as VolumeEntry[])
      return {}
    }
    if (op !== 'callbackBreak') throw badRequest(`a server may not ask ${op}`)
    const parsed = callbackBreakSchema.safeParse(args)
    if (!parsed.success) throw badRequest('bad callbackBreak')
    const at = ++this.clock
    for (const f of parsed.data.fids) this.brokenAt.set(fidKey(f), at)
    this.forgetOldBreaks()
    this.emit('break', parsed.data.fids as Fid[])
    return {}
  }
}
