// Container files: one file in the cache directory per cached file's contents (Venus'
// container files). A fetch writes a temp file and renames it into place, so a crash
// leaves either the old container or the new one; readers may read it as it fills.
// A file too big to cache whole has chunks instead (`chunks`), gone with its container.
import { open as fsOpen } from 'node:fs'
import { promisify } from 'node:util'
import { mkdir, open, rename, rm, readdir, stat, truncate, writeFile, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { AfsError } from '@afs-ts/common'
import { Filling } from './filling.ts'
import { ChunkStore } from './chunk-store.ts'
import { CHUNK_MAX_BYTES } from './constants.ts'

/** A raw descriptor (a FileHandle would close it when collected). */
const openFd = promisify(fsOpen)

export class ContainerStore {
  readonly dir: string
  private readonly tmp: string
  readonly chunks: ChunkStore

  /** `chunkBytes`: the size of the chunks of files too big to cache whole. */
  constructor (cacheDir: string, chunkBytes = CHUNK_MAX_BYTES) {
    this.dir = join(cacheDir, 'containers')
    this.tmp = join(cacheDir, 'tmp')
    this.chunks = new ChunkStore(join(cacheDir, 'chunks'), this.tmp, chunkBytes)
  }

  async ready (): Promise<void> {
    await rm(this.tmp, { recursive: true, force: true })
    await mkdir(this.tmp, { recursive: true })
    await mkdir(this.dir, { recursive: true })
    await this.chunks.ready()
  }

  path (key: string): string {
    return join(this.dir, key)
  }

  /**
   * Writes `body` as the new container of `key`; returns the byte count. With `publish`,
   * readers may read the bytes as they come in: it is given the container's Filling
   * (for a file of `size` bytes) before the first byte is written.
   */
  async fill (key: string, body: AsyncIterable<Buffer>, publish?: { size: number, to: (f: Filling) => void }): Promise<number> {
    const tmp = join(this.tmp, `${key}.${randomBytes(4).toString('hex')}`)
    let bytes = 0
    let filling: Filling | null = null
    let out: FileHandle | null = null
    try {
      out = await open(tmp, 'w')
      if (publish) {
        filling = new Filling(await openFd(tmp, 'r'), publish.size)
        publish.to(filling)
      }
      for await (const chunk of body) {
        for (let at = 0; at < chunk.length;) at += (await out.write(chunk, at, chunk.length - at, bytes + at)).bytesWritten
        bytes += chunk.length
        filling?.wrote(chunk.length)
      }
      await out.close()
      out = null
      await rename(tmp, this.path(key))
      await this.chunks.drop(key)
      filling?.end()
      return bytes
    } catch (err) {
      filling?.end(err)
      await out?.close().catch(() => {})
      await rm(tmp, { force: true })
      throw AfsError.from(err)
    }
  }

  async createEmpty (key: string): Promise<void> {
    await writeFile(this.path(key), '')
    await this.chunks.drop(key)
  }

  async truncate (key: string, size: number): Promise<void> {
    await truncate(this.path(key), size)
  }

  async size (key: string): Promise<number> {
    return (await stat(this.path(key))).size
  }

  /** Removes the container of `key` and any chunks of it. */
  async remove (key: string): Promise<void> {
    await rm(this.path(key), { force: true })
    await this.chunks.drop(key)
  }

  async list (): Promise<string[]> {
    return await readdir(this.dir)
  }
}
