// A connection from one afs-ts process to a server, for processes that are not cache
// managers: a server reaching the cell's location database or another member of a
// volume's group, a tool talking to a server. Connects on first use, says hello, and
// connects again on the next call after the connection was lost; calls are typed by
// the protocol's reply map.
import { hostname } from 'node:os'
import { RpcConnection, type Handler } from './connection.ts'
import { AfsError, invalid, protocolError } from './errors.ts'
import { PROTOCOL_VERSION, type Args, type HelloReply, type Op, type Reply } from './protocol.ts'
import type { InboundStream } from './stream.ts'
import { connectTo, type Trust } from './tls.ts'

export const PEER_CONNECT_TIMEOUT_MS = 5_000

export class Peer {
  private conn: RpcConnection | null = null
  private connecting: Promise<RpcConnection> | null = null
  /** What the server said on the last hello. */
  hello: HelloReply | null = null

  /**
   * `clientId`: who we are to the server (stable per process role); `cell`: the cell the
   * server must belong to (a server of another cell is refused before any request);
   * `handler`: requests the server sends us; `trust`: the cell's CA (and, for a server,
   * its own certificate, shown to the other servers).
   */
  constructor (readonly address: string, private readonly clientId: string, private readonly opts: { cell?: string, handler?: Handler, trust: Trust }) {}

  /** `token`: the user it is asked for (none: the caller's own role, or system:anyuser). */
  async call<O extends Op> (op: O, args: Args<O>, timeoutMs?: number, token?: string): Promise<Reply<O>> {
    const conn = await this.connection()
    return await conn.request(op, args, { timeoutMs, token }) as Reply<O>
  }

  async download<O extends Op> (op: O, args: Args<O>): Promise<{ result: Reply<O>, body: InboundStream }> {
    const conn = await this.connection()
    return await conn.download(op, args) as { result: Reply<O>, body: InboundStream }
  }

  async upload<O extends Op> (op: O, args: Args<O>, body: AsyncIterable<Buffer>): Promise<Reply<O>> {
    const conn = await this.connection()
    return await conn.upload(op, args, body) as Reply<O>
  }

  close (): void {
    this.conn?.close()
    this.conn = null
  }

  private connection (): Promise<RpcConnection> {
    if (this.conn && !this.conn.isClosed) return Promise.resolve(this.conn)
    this.connecting ??= this.open().finally(() => { this.connecting = null })
    return this.connecting
  }

  private async open (): Promise<RpcConnection> {
    const conn = new RpcConnection(await connectTo(this.address, PEER_CONNECT_TIMEOUT_MS, this.opts.trust), this.opts.handler ?? null)
    try {
      this.hello = checkHello(this.address, await conn.request('hello', { protocol: PROTOCOL_VERSION, clientId: this.clientId, hostname: hostname() }, { timeoutMs: PEER_CONNECT_TIMEOUT_MS }))
    } catch (err) {
      conn.destroy()
      throw AfsError.from(err)
    }
    if (this.opts.cell !== undefined && this.hello.cell !== this.opts.cell) {
      conn.destroy()
      throw invalid(`the server at ${this.address} belongs to cell ${this.hello.cell}, not ${this.opts.cell}`)
    }
    this.conn = conn
    return conn
  }
}

/** A TCP connection to a server's HOST:PORT, or CONNECTION after `timeoutMs` or on a refusal. */
/** A server's answer to hello, checked: the same protocol version as ours, and the shape it must have. */
export function checkHello (address: string, reply: unknown): HelloReply {
  const r = reply as Partial<HelloReply> | null
  if (typeof r !== 'object' || r === null || typeof r.cell !== 'string' || typeof r.serverId !== 'string' || typeof r.protocol !== 'number') {
    throw protocolError(`the server at ${address} answered hello with something that is no hello`)
  }
  if (r.protocol !== PROTOCOL_VERSION) throw protocolError(`the server at ${address} speaks protocol ${r.protocol}, this program ${PROTOCOL_VERSION}: run the same version of afs-ts on both`)
  return r as HelloReply
}
