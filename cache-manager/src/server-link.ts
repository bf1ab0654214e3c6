// One connection from this cache manager to one volume server: connects on demand,
// says hello with our stable client id, counts RPCs, and receives callback breaks
// (the server's requests to us). Each time it loses the connection its epoch grows:
// callbacks granted in an older epoch are no longer trusted (the server forgot them).
import { connect } from 'node:net'
import { EventEmitter } from 'node:events'
import { hostname } from 'node:os'
import {
  RpcConnection, callbackBreakSchema, connectionLost, parseHostPort, badRequest, makeLog,
  PROTOCOL_VERSION, type Fid, type HelloReply, type InboundStream, type Op, type Args,
} from '@afs-ts/common'
import { CONNECT_TIMEOUT_MS, RPC_TIMEOUT_MS } from './constants.ts'
import type { Counters } from './counters.ts'

const log = makeLog('cache-manager')

export class ServerLink extends EventEmitter {
  private conn: RpcConnection | null = null
  private connecting: Promise<RpcConnection> | null = null
  /** Grows on every lost connection; callbacks from an older epoch are void. */
  epoch = 0
  hello: HelloReply | null = null

  constructor (readonly address: string, private readonly clientId: string, private readonly counters: Counters) {
    super()
  }

  get connected (): boolean { return this.conn !== null && !this.conn.isClosed }

  async call<O extends Op> (op: O, args: Args<O>, timeoutMs = RPC_TIMEOUT_MS): Promise<unknown> {
    const conn = await this.connection()
    this.counters.rpcs++
    return await conn.request(op, args, { timeoutMs })
  }

  async download<O extends Op> (op: O, args: Args<O>): Promise<{ result: unknown, body: InboundStream }> {
    const conn = await this.connection()
    this.counters.rpcs++
    return await conn.download(op, args)
  }

  async upload<O extends Op> (op: O, args: Args<O>, body: AsyncIterable<Buffer>): Promise<unknown> {
    const conn = await this.connection()
    this.counters.rpcs++
    return await conn.upload(op, args, body)
  }

  close (): void {
    this.conn?.destroy()
    this.conn = null
  }

  private connection (): Promise<RpcConnection> {
    if (this.conn && !this.conn.isClosed) return Promise.resolve(this.conn)
    this.connecting ??= this.open().finally(() => { this.connecting = null })
    return this.connecting
  }

  private async open (): Promise<RpcConnection> {
    const { host, port } = parseHostPort(this.address)
    const socket = connect({ host, port })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { socket.destroy(); reject(connectionLost(`${this.address}: no answer in ${CONNECT_TIMEOUT_MS} ms`)) }, CONNECT_TIMEOUT_MS)
      socket.once('connect', () => { clearTimeout(timer); resolve() })
      socket.once('error', err => { clearTimeout(timer); reject(connectionLost(`${this.address}: ${err.message}`)) })
    })
    const conn = new RpcConnection(socket, async (op, args) => this.onServerRequest(op, args))
    conn.on('close', () => {
      if (this.conn !== conn) return
      this.conn = null
      this.epoch++
      log.info(`lost connection to ${this.address}`)
      this.emit('down')
    })
    this.counters.rpcs++
    this.hello = await conn.request('hello', { protocol: PROTOCOL_VERSION, clientId: this.clientId, hostname: hostname() }, { timeoutMs: RPC_TIMEOUT_MS }) as HelloReply
    this.conn = conn
    this.epoch++
    return conn
  }

  private async onServerRequest (op: string, args: unknown): Promise<unknown> {
    if (op !== 'callbackBreak') throw badRequest(`a server may not ask ${op}`)
    const parsed = callbackBreakSchema.safeParse(args)
    if (!parsed.success) throw badRequest('bad callbackBreak')
    this.emit('break', parsed.data.fids as Fid[])
    return {}
  }
}
