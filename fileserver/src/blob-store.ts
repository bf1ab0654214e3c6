// Whole-file contents of a server's volumes: one blob file per file version, written
// to a temp file, fsynced and renamed into place before the metadata that points to it
// commits. A crash at any instant leaves the old or the new blob, never a torn one;
// blobs that no record points to (a crash between rename and commit) are removed at start.
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, open, readdir, rename, rm, unlink } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import { AfsError, invalid } from '@afs-ts/common'

export interface WrittenBlob { name: string, size: number }

export class BlobStore {
  /** Volumes whose blob directory exists. */
  private readonly made = new Set<number>()

  constructor (readonly dir: string) {}

  async ready (): Promise<void> {
    await rm(join(this.dir, 'tmp'), { recursive: true, force: true })
    await mkdir(join(this.dir, 'tmp'), { recursive: true })
    await mkdir(join(this.dir, 'vols'), { recursive: true })
  }

  path (volume: number, name: string): string {
    return join(this.dir, 'vols', String(volume), name)
  }

  /** Writes `source` as a new blob of `volume`; fails (leaving nothing) unless exactly `expectSize` bytes came. */
  async write (volume: number, prefix: string, source: AsyncIterable<Buffer>, expectSize?: number): Promise<WrittenBlob> {
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

  /** Writes `data` as a new blob of `volume` (a small file's bytes, all in memory). */
  async writeBytes (volume: number, prefix: string, data: Uint8Array): Promise<WrittenBlob> {
    const name = `${prefix}.${randomBytes(6).toString('hex')}`
    const tmp = join(this.dir, 'tmp', `${volume}.${name}`)
    try {
      const fh = await open(tmp, 'wx')
      try {
        await fh.writeFile(data)
        await fh.sync()
      } finally { await fh.close() }
      await this.volumeDir(volume)
      await rename(tmp, this.path(volume, name))
      return { name, size: data.byteLength }
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

  /** The first `size` bytes of an existing blob (zero-filled past its end) as a stream. */
  async * prefix (volume: number, name: string | undefined, oldSize: number, size: number): AsyncIterable<Buffer> {
    const keep = Math.min(oldSize, size)
    if (name && keep > 0) yield * createReadStream(this.path(volume, name), { start: 0, end: keep - 1 }) as AsyncIterable<Buffer>
    for (let left = size - keep; left > 0; left -= 1 << 20) yield Buffer.alloc(Math.min(left, 1 << 20))
  }

  async remove (volume: number, name: string | undefined): Promise<void> {
    if (name) await unlink(this.path(volume, name)).catch(() => {})
  }

  /** Deletes every blob of `volume`. */
  async removeVolume (volume: number): Promise<void> {
    this.made.delete(volume)
    await rm(join(this.dir, 'vols', String(volume)), { recursive: true, force: true })
  }

  /** Deletes blobs of `volume` that `isReferenced` does not claim. Returns how many. */
  async collect (volume: number, isReferenced: (name: string) => boolean): Promise<number> {
    let names: string[]
    try { names = await readdir(join(this.dir, 'vols', String(volume))) } catch { return 0 }
    let removed = 0
    for (const n of names) {
      if (!isReferenced(n)) { await this.remove(volume, n); removed++ }
    }
    return removed
  }
}
