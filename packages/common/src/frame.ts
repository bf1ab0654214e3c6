// Length-prefixed msgpackr frames: a 4-byte big-endian length, then one msgpack value.
// The decoder treats its input as hostile: bounded frame size, garbage becomes a
// PROTOCOL error (the caller closes the connection: a byte stream cannot resync).
import { Packr } from 'msgpackr'
import { protocolError } from './errors.ts'

/** Largest frame either side accepts: a data chunk plus headroom, or a directory page. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024
/** Whole files travel in chunks of this many bytes. */
export const CHUNK_BYTES = 1024 * 1024

// Records and structured clones are off: a peer may only send plain msgpack values.
const packr = new Packr({ useRecords: false, moreTypes: false, structuredClone: false, mapsAsObjects: true })

/** First body byte of a raw data chunk (never the first byte of a msgpack array). */
const RAW_CHUNK = 0xff

/** A data chunk of stream `id`, sent without msgpack: [len][0xff][id u32][bytes]. */
export interface RawChunk { raw: true, id: number, data: Buffer }

/** The header of a raw chunk frame; the data follows as is (no copy). */
export function rawChunkHeader (id: number, bytes: number): Buffer {
  const h = Buffer.allocUnsafe(9)
  h.writeUInt32BE(bytes + 5, 0)
  h[4] = RAW_CHUNK
  h.writeUInt32BE(id, 5)
  return h
}

export function isRawChunk (v: unknown): v is RawChunk {
  return typeof v === 'object' && v !== null && (v as RawChunk).raw === true
}

export function encodeFrame (value: unknown): Buffer {
  const body = packr.pack(value)
  if (body.length > MAX_FRAME_BYTES) throw protocolError(`frame of ${body.length} bytes exceeds ${MAX_FRAME_BYTES}`)
  const header = Buffer.allocUnsafe(4)
  header.writeUInt32BE(body.length, 0)
  return Buffer.concat([header, body])
}

export class FrameDecoder {
  private chunks: Buffer[] = []
  private buffered = 0
  private readonly maxFrame: number

  constructor (maxFrame = MAX_FRAME_BYTES) {
    this.maxFrame = maxFrame
  }

  /** Feeds bytes; returns the values of every complete frame. Throws PROTOCOL on garbage. */
  push (data: Buffer): unknown[] {
    this.chunks.push(data)
    this.buffered += data.length
    const out: unknown[] = []
    while (this.buffered >= 4) {
      const head = this.peek(4)
      const len = head.readUInt32BE(0)
      if (len > this.maxFrame) throw protocolError(`frame of ${len} bytes exceeds the limit of ${this.maxFrame}`)
      if (len === 0) throw protocolError('empty frame')
      if (this.buffered < 4 + len) break
      const frame = this.take(4 + len).subarray(4)
      if (frame[0] === RAW_CHUNK) {
        if (frame.length < 5) throw protocolError('short chunk frame')
        out.push({ raw: true, id: frame.readUInt32BE(1), data: frame.subarray(5) } satisfies RawChunk)
        continue
      }
      try {
        out.push(packr.unpack(frame))
      } catch (err) {
        throw protocolError(`undecodable frame: ${(err as Error).message}`)
      }
    }
    return out
  }

  private peek (n: number): Buffer {
    if (this.chunks[0].length < n) this.chunks = [Buffer.concat(this.chunks)]
    return this.chunks[0]
  }

  private take (n: number): Buffer {
    const first = this.peek(n)
    const out = first.subarray(0, n)
    if (first.length === n) this.chunks.shift()
    else this.chunks[0] = first.subarray(n)
    this.buffered -= n
    return out
  }
}
