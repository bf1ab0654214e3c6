// Whole-file streams over a connection: an inbound stream queues chunks and exerts
// backpressure (the connection pauses its socket while too many chunks wait), and
// verifies the checksum the sender puts in the end frame.
import { crc32 } from 'node:zlib'
import { AfsError, hashMismatch, timeout } from './errors.ts'

const HIGH_WATER_CHUNKS = 8
const LOW_WATER_CHUNKS = 2
/** An inbound stream that sees no chunk for this long fails. */
export const STREAM_IDLE_MS = 60_000

/**
 * A whole stream's checksum, sent in its end frame: CRC-32, which catches a chunk lost,
 * repeated or reordered by the framing. Integrity against tampering is TLS's (its AEAD
 * authenticates every record); SHA-256 here cost a fifth of a cold read's CPU on each side.
 */
export class StreamChecksum {
  private value = 0
  update (data: Buffer): void { this.value = crc32(data, this.value) }
  digest (): string { return this.value.toString(16).padStart(8, '0') }
}

export interface FlowControl { pause (): void, resume (): void }

export class InboundStream implements AsyncIterable<Buffer> {
  private queue: Buffer[] = []
  private done = false
  private error: AfsError | null = null
  private wake: (() => void) | null = null
  private readonly hash = new StreamChecksum()
  private paused = false
  private idle: NodeJS.Timeout | null = null
  bytes = 0

  constructor (private readonly flow: FlowControl, private readonly onIdle: () => void = () => {}) {
    this.arm()
  }

  pushChunk (data: Buffer): void {
    if (this.done) return
    this.hash.update(data)
    this.bytes += data.length
    this.queue.push(data)
    this.arm()
    if (this.queue.length >= HIGH_WATER_CHUNKS && !this.paused) { this.paused = true; this.flow.pause() }
    this.notify()
  }

  end (checksum: string): void {
    if (this.done) return
    if (this.hash.digest() !== checksum) this.error = hashMismatch(`stream checksum mismatch after ${this.bytes} bytes`)
    this.finish()
  }

  fail (err: AfsError): void {
    if (this.done) return
    this.error = err
    this.finish()
  }

  get finished (): boolean { return this.done }

  private finish (): void {
    this.done = true
    if (this.idle) clearTimeout(this.idle)
    this.idle = null
    if (this.paused) { this.paused = false; this.flow.resume() }
    this.notify()
  }

  private arm (): void {
    if (this.idle) clearTimeout(this.idle)
    this.idle = setTimeout(() => {
      this.fail(timeout(`no data for ${STREAM_IDLE_MS} ms`))
      this.onIdle()
    }, STREAM_IDLE_MS)
    this.idle.unref()
  }

  private notify (): void {
    const w = this.wake
    this.wake = null
    w?.()
  }

  async * [Symbol.asyncIterator] (): AsyncIterator<Buffer> {
    while (true) {
      const next = this.queue.shift()
      if (next) {
        if (this.paused && this.queue.length <= LOW_WATER_CHUNKS) { this.paused = false; this.flow.resume() }
        yield next
        continue
      }
      if (this.done) {
        if (this.error) throw this.error
        return
      }
      await new Promise<void>(resolve => { this.wake = resolve })
    }
  }

  /** Drains and discards the rest (so the connection keeps flowing). */
  async discard (): Promise<void> {
    try { for await (const _ of this) { /* drop */ } } catch { /* already failed */ }
  }
}
