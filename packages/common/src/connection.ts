// An RPC connection over one TCP (or Unix) socket: requests with ids, many in flight,
// in both directions (the server pushes callback breaks as requests of its own), and
// whole-file streams in bounded chunks. Every frame is validated; garbage gets a clear
// PROTOCOL error back and the connection closes, the process never crashes.
import { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'
import { AfsError, badRequest, connectionLost, protocolError, timeout, type WireError } from './errors.ts'
import { encodeFrame, FrameDecoder, CHUNK_BYTES, isRawChunk, rawChunkHeader } from './frame.ts'
import { InboundStream, StreamChecksum } from './stream.ts'

const REQ = 0
const RES = 1
const ERR = 2
const CHUNK = 3
const END = 4
const MAX_ID = 2 ** 32 - 1
export const DEFAULT_RPC_TIMEOUT_MS = 30_000
/** Bytes of a stream allowed to wait in the socket's buffer before the sender pauses. */
const SEND_WINDOW_BYTES = 8 * CHUNK_BYTES

/** A response that carries a whole file after its result. */
export class Download<T = unknown> {
  constructor (readonly result: T, readonly body: AsyncIterable<Buffer>) {}
}

export interface RequestContext {
  /** The uploaded body of a streaming request (store), or null. */
  body: InboundStream | null
  connection: RpcConnection
  /** The token of the user the request is made for, as the request carries it (checked by the server). */
  token: string | null
}

export type Handler = (op: string, args: unknown, ctx: RequestContext) => Promise<unknown>

/** `token`: the user the request is made for (`afs login`); none: system:anyuser. */
export interface RequestOptions { timeoutMs?: number, signal?: AbortSignal, token?: string }

interface Pending {
  resolve: (value: unknown) => void
  reject: (err: AfsError) => void
  timer: NodeJS.Timeout | null
  download: InboundStream | null
  wantsDownload: boolean
}

export class RpcConnection extends EventEmitter {
  readonly socket: Socket
  private readonly decoder = new FrameDecoder()
  private readonly pending = new Map<number, Pending>()
  private readonly uploads = new Map<number, InboundStream>()
  private nextId = 1
  private closed = false
  private pauses = 0
  handler: Handler | null
  /** Free-form slot for the owner (the server keeps its client record here). */
  peer: unknown = null

  constructor (socket: Socket, handler: Handler | null = null) {
    super()
    this.socket = socket
    this.handler = handler
    socket.setNoDelay(true)
    socket.on('data', data => this.onData(data))
    socket.on('error', err => this.shutdown(connectionLost(err.message)))
    socket.on('close', () => this.shutdown(connectionLost('connection closed')))
  }

  get isClosed (): boolean { return this.closed }

  request (op: string, args: unknown, opts: RequestOptions = {}): Promise<unknown> {
    return this.start(op, args, null, false, opts)
  }

  /** Sends args then streams `body`; resolves with the peer's result. */
  upload (op: string, args: unknown, body: AsyncIterable<Buffer>, opts: RequestOptions = {}): Promise<unknown> {
    return this.start(op, args, body, false, opts)
  }

  /** Resolves with the result and the streamed body, which the caller must consume. */
  async download (op: string, args: unknown, opts: RequestOptions = {}): Promise<{ result: unknown, body: InboundStream }> {
    return await this.start(op, args, null, true, opts) as { result: unknown, body: InboundStream }
  }

  close (): void {
    this.socket.end()
    this.shutdown(connectionLost('connection closed locally'))
  }

  destroy (): void {
    this.socket.destroy()
    this.shutdown(connectionLost('connection closed locally'))
  }

  private start (op: string, args: unknown, body: AsyncIterable<Buffer> | null, wantsDownload: boolean, opts: RequestOptions): Promise<unknown> {
    if (this.closed) return Promise.reject(connectionLost('not connected'))
    const id = this.nextId
    this.nextId = this.nextId >= MAX_ID ? 1 : this.nextId + 1
    return new Promise((resolve, reject) => {
      const ms = opts.timeoutMs ?? DEFAULT_RPC_TIMEOUT_MS
      const p: Pending = { resolve, reject, timer: null, download: null, wantsDownload }
      // Streams are bounded by their idle timer instead of a total time.
      if (ms > 0 && !body && !wantsDownload) {
        p.timer = setTimeout(() => this.fail(id, timeout(`${op} got no answer in ${ms} ms`)), ms)
      }
      opts.signal?.addEventListener('abort', () => this.fail(id, timeout(`${op} aborted`)), { once: true })
      this.pending.set(id, p)
      this.send(opts.token === undefined ? [REQ, id, op, args ?? null, body !== null] : [REQ, id, op, args ?? null, body !== null, opts.token])
      if (body) this.sendBody(id, body).catch(err => this.fail(id, AfsError.from(err)))
    })
  }

  private async sendBody (id: number, body: AsyncIterable<Buffer>): Promise<void> {
    const hash = new StreamChecksum()
    for await (const data of body) {
      for (let off = 0; off < data.length; off += CHUNK_BYTES) {
        if (this.closed) throw connectionLost('connection closed while sending')
        const piece = data.subarray(off, off + CHUNK_BYTES)
        hash.update(piece)
        this.socket.cork()
        this.socket.write(rawChunkHeader(id, piece.length))
        this.socket.write(piece)
        this.socket.uncork()
        // Keep a few chunks queued so disk reads overlap the network; wait beyond that.
        if (this.socket.writableLength > SEND_WINDOW_BYTES) await this.drained()
      }
    }
    this.send([END, id, hash.digest()])
  }

  private drained (): Promise<void> {
    return new Promise(resolve => {
      const done = (): void => { this.socket.off('drain', done); this.socket.off('close', done); resolve() }
      this.socket.once('drain', done)
      this.socket.once('close', done)
    })
  }

  private fail (id: number, err: AfsError): void {
    const p = this.pending.get(id)
    if (!p) return
    this.pending.delete(id)
    if (p.timer) clearTimeout(p.timer)
    if (p.download) p.download.fail(err)
    else p.reject(err)
  }

  private send (msg: unknown[]): void {
    if (this.closed) return
    this.socket.write(encodeFrame(msg))
  }

  private readonly flow = {
    pause: () => { if (this.pauses++ === 0) this.socket.pause() },
    resume: () => { if (--this.pauses === 0 && !this.closed) this.socket.resume() },
  }

  private onData (data: Buffer): void {
    let frames: unknown[]
    try {
      frames = this.decoder.push(data)
    } catch (err) {
      const e = AfsError.from(err)
      this.socket.end(encodeFrame([ERR, 0, e.toWire()]))
      this.shutdown(e)
      return
    }
    for (const f of frames) this.onFrame(f)
  }

  private onFrame (f: unknown): void {
    if (isRawChunk(f)) return this.onChunk(f.id, f.data)
    if (!Array.isArray(f) || f.length < 2 || !Number.isInteger(f[0]) || !Number.isInteger(f[1]) || f[1] < 0 || f[1] > MAX_ID) {
      this.send([ERR, 0, protocolError('frame is not [kind, id, ...]').toWire()])
      return
    }
    const [kind, id] = f as [number, number]
    switch (kind) {
      case REQ: return this.onRequest(id, f[2], f[3], f[4] === true, f[5])
      case RES: return this.onResult(id, f[2])
      case ERR: return this.onError(id, f[2])
      case CHUNK: return this.onChunk(id, f[2])
      case END: return this.onEnd(id, f[2])
      default: this.send([ERR, id, protocolError(`unknown frame kind ${kind}`).toWire()])
    }
  }

  private onRequest (id: number, op: unknown, args: unknown, streaming: boolean, token: unknown): void {
    if (typeof op !== 'string' || op.length > 64) {
      this.send([ERR, id, badRequest('request op must be a short string').toWire()])
      return
    }
    if (token !== undefined && token !== null && (typeof token !== 'string' || token.length > 4096)) {
      this.send([ERR, id, badRequest('a request\'s token must be a short string').toWire()])
      return
    }
    const body = streaming ? new InboundStream(this.flow, () => this.uploads.delete(id)) : null
    if (body) this.uploads.set(id, body)
    const handler = this.handler
    const run = handler ? handler(op, args, { body, connection: this, token: typeof token === 'string' ? token : null }) : Promise.reject(badRequest(`no handler for ${op}`))
    run.then(async result => {
      if (result instanceof Download) {
        this.send([RES, id, result.result ?? null])
        await this.sendBody(id, result.body)
      } else {
        this.send([RES, id, result ?? null])
      }
    }).catch(err => {
      const e = AfsError.from(err)
      if (e.code === 'IO') this.emit('handler-error', err)
      this.send([ERR, id, e.toWire()])
    }).finally(() => {
      if (body && !body.finished) {
        body.discard().catch(() => {})
        this.uploads.delete(id)
      } else if (body) this.uploads.delete(id)
    })
  }

  private onResult (id: number, result: unknown): void {
    const p = this.pending.get(id)
    if (!p) return
    if (p.timer) clearTimeout(p.timer)
    if (p.wantsDownload) {
      p.download = new InboundStream(this.flow, () => this.pending.delete(id))
      p.resolve({ result, body: p.download })
      return
    }
    this.pending.delete(id)
    p.resolve(result)
  }

  private onError (id: number, e: unknown): void {
    const w = (e && typeof e === 'object') ? e as WireError : { code: 'PROTOCOL', message: 'malformed error frame' }
    const err = AfsError.fromWire({ code: String(w.code), message: String(w.message), data: w.data })
    if (id === 0) { this.emit('peer-error', err); return }
    const up = this.uploads.get(id)
    if (up) { up.fail(err); this.uploads.delete(id); return }
    this.fail(id, err)
  }

  private onChunk (id: number, data: unknown): void {
    const stream = this.uploads.get(id) ?? this.pending.get(id)?.download
    if (!stream) return // a late chunk of a failed or cancelled stream
    if (!(data instanceof Uint8Array)) {
      stream.fail(protocolError('chunk data is not binary'))
      return
    }
    stream.pushChunk(Buffer.from(data.buffer, data.byteOffset, data.byteLength))
  }

  private onEnd (id: number, checksum: unknown): void {
    const up = this.uploads.get(id)
    if (up) { up.end(String(checksum)); return }
    const p = this.pending.get(id)
    if (!p?.download) return
    this.pending.delete(id)
    p.download.end(String(checksum))
  }

  private shutdown (err: AfsError): void {
    if (this.closed) return
    this.closed = true
    for (const id of [...this.pending.keys()]) this.fail(id, err)
    for (const up of this.uploads.values()) up.fail(err)
    this.uploads.clear()
    this.emit('close', err)
  }
}
