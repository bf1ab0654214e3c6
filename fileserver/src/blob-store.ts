// Whole-file contents of a server's volumes: one blob per file version. A blob of a small
// file is kept inline, in the metadata database, put in by the very transaction that makes
// a record point to it: one commit makes it durable, with no file to create and sync.
// Any other is a blob file, written to a temp file, fsynced and renamed into place before
// the metadata that points to it commits. A crash at any instant leaves the old or the new
// blob, never a torn one; blobs that no record points to (a crash between rename and
// commit) are removed at start.
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, open, readdir, rename, rm, unlink } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import type { Database } from 'lmdb'
import { AfsError, CHUNK_BYTES, invalid, notFound } from '@afs-ts/common'

/** Files up to this size are kept inline. */
export const INLINE_BLOB_BYTES = 16 * 1024
/** How the name of an inline blob ends. */
const INLINE = '~i'

/** A part of a blob: `length` bytes from `offset`. */
export interface ByteRange { offset: number, length: number }

/** `bytes`: an inline blob's, put in by keep() inside the transaction that points to it. */
export interface WrittenBlob { name: string, size: number, bytes?: Uint8Array }

const isInline = (name: string) => name.endsWith(INLINE)

export class BlobStore {
  /** Volumes whose blob directory exists. */
  private readonly made = new Set<number>()

  constructor (readonly dir: string, private readonly inline: Database<Uint8Array, [number, string]>) {}

  async ready (): Promise<void> {
    await rm(join(this.dir, 'tmp'), { recursive: true, force: true })
    await mkdir(join(this.dir, 'tmp'), { recursive: true })
    await mkdir(join(this.dir, 'vols'), { recursive: true })
  }

  path (volume: number, name: string): string {
    return join(this.dir, 'vols', String(volume), name)
  }

  /** Writes `source` as a new blob of `volume`; fails (leaving nothing) unless exactly `expectSize` bytes came. */
  async write (volume: number, prefix: string, source: AsyncIterable<Buffer> | Iterable<Buffer>, expectSize?: number): Promise<WrittenBlob> {
    if (expectSize !== undefined && expectSize <= INLINE_BLOB_BYTES) {
      const chunks: Buffer[] = []
      let size = 0
      for await (const chunk of source) {
        size += chunk.length
        if (size > expectSize) throw invalid(`more data than the declared ${expectSize} bytes`)
        chunks.push(chunk)
      }
      if (size !== expectSize) throw invalid(`got ${size} bytes, ${expectSize} declared`)
      return inlineBlob(prefix, Buffer.concat(chunks))
    }
    const name = `${prefix}.${randomBytes(6).toString('hex')}`
    const tmp = join(this.dir, 'tmp', `${volume}.${name}`)
    let size = 0
    try {
      const counted = async function * () {
        for await (const chunk of source) {
          size += chunk.length
          if (expectSize !== undefined && size > expectSize) throw invalid(`more data than the declared ${expectSize} bytes`)
          yield chunk
        }
      }
      await pipeline(Readable.from(counted()), createWriteStream(tmp, { flags: 'wx' }))
      if (expectSize !== undefined && size !== expectSize) throw invalid(`got ${size} bytes, ${expectSize} declared`)
      const fh = await open(tmp, 'r+')
      try { await fh.sync() } finally { await fh.close() }
      await this.volumeDir(volume)
      await rename(tmp, this.path(volume, name))
      return { name, size }
    } catch (err) {
      await rm(tmp, { force: true })
      throw AfsError.from(err)
    }
  }

  /** Makes the directory of `volume`'s blobs, once. */
  private async volumeDir (volume: number): Promise<void> {
    if (this.made.has(volume)) return
    await mkdir(join(this.dir, 'vols', String(volume)), { recursive: true })
    this.made.add(volume)
  }

  /** Runs inside the transaction that makes a record point to `blob`: an inline blob's bytes go in with it. */
  keep (volume: number, blob: WrittenBlob): void {
    if (blob.bytes) this.inline.put([volume, blob.name], blob.bytes)
  }

  /** An inline blob's bytes (null for a blob kept in a file, or gone). */
  inlineBytes (volume: number, name: string): Uint8Array | null {
    return isInline(name) ? this.inline.get([volume, name]) ?? null : null
  }

  /**
   * A blob's bytes as a stream, or those of `range` (none past its end); NOT_FOUND once a
   * newer version replaced it.
   */
  async open (volume: number, name: string, range?: ByteRange): Promise<AsyncIterable<Buffer>> {
    const start = range?.offset ?? 0
    const end = range ? start + range.length : Infinity
    if (!isInline(name)) {
      return (await open(this.path(volume, name), 'r')).createReadStream({ highWaterMark: CHUNK_BYTES, start, ...end === Infinity ? {} : { end: end - 1 } })
    }
    const bytes = this.inline.get([volume, name])
    if (!bytes) throw notFound(`blob ${name} of volume ${volume} is gone`)
    const all = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    return Readable.from([range ? all.subarray(start, end) : all])
  }

  /** The first `size` bytes of an existing blob (zero-filled past its end) as a stream. */
  async * prefix (volume: number, name: string | undefined, oldSize: number, size: number): AsyncIterable<Buffer> {
    const keep = Math.min(oldSize, size)
    if (name && keep > 0) {
      if (isInline(name)) yield Buffer.from(this.inline.get([volume, name])?.subarray(0, keep) ?? Buffer.alloc(0))
      else yield * createReadStream(this.path(volume, name), { start: 0, end: keep - 1 }) as AsyncIterable<Buffer>
    }
    for (let left = size - keep; left > 0; left -= 1 << 20) yield Buffer.alloc(Math.min(left, 1 << 20))
  }

  /**
   * Removes a blob no record points to. (An inline one's removal is not waited for: it
   * commits with the next write, and one lost in a crash is collected at the next start.)
   */
  async remove (volume: number, name: string | undefined): Promise<void> {
    if (!name) return
    if (isInline(name)) void this.inline.remove([volume, name]).catch(() => {})
    else await unlink(this.path(volume, name)).catch(() => {})
  }

  /** The names of `volume`'s inline blobs. */
  private * inlineNames (volume: number): Iterable<string> {
    for (const [, name] of this.inline.getKeys({ start: [volume, ''], end: [volume + 1, ''] })) yield name
  }

  /** Deletes every blob of `volume`. */
  async removeVolume (volume: number): Promise<void> {
    this.made.delete(volume)
    for (const name of this.inlineNames(volume)) void this.inline.remove([volume, name]).catch(() => {})
    await rm(join(this.dir, 'vols', String(volume)), { recursive: true, force: true })
  }

  /** Deletes blobs of `volume` that `isReferenced` does not claim. Returns how many. */
  async collect (volume: number, isReferenced: (name: string) => boolean): Promise<number> {
    let removed = 0
    for (const name of this.inlineNames(volume)) {
      if (!isReferenced(name)) { await this.remove(volume, name); removed++ }
    }
    let names: string[]
    try { names = await readdir(join(this.dir, 'vols', String(volume))) } catch { return removed }
    for (const n of names) {
      if (!isReferenced(n)) { await this.remove(volume, n); removed++ }
    }
    return removed
  }
}

function inlineBlob (prefix: string, bytes: Uint8Array): WrittenBlob {
  return { name: `${prefix}.${randomBytes(6).toString('hex')}${INLINE}`, size: bytes.byteLength, bytes }
}
