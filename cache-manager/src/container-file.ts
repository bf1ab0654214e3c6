// Container files: one file in the cache directory per cached file's contents (Venus'
// container files). A fetch writes a temp file and renames it into place, so a crash
// leaves either the old container or the new one.
import { createWriteStream } from 'node:fs'
import { mkdir, rename, rm, readdir, stat, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import { randomBytes } from 'node:crypto'
import { AfsError } from '@afs-ts/common'

export class ContainerStore {
  readonly dir: string
  private readonly tmp: string

  constructor (cacheDir: string) {
    this.dir = join(cacheDir, 'containers')
    this.tmp = join(cacheDir, 'tmp')
  }

  async ready (): Promise<void> {
    await rm(this.tmp, { recursive: true, force: true })
    await mkdir(this.tmp, { recursive: true })
    await mkdir(this.dir, { recursive: true })
  }

  path (key: string): string {
    return join(this.dir, key)
  }

  /** Writes `body` as the new container of `key`; returns the byte count. */
  async fill (key: string, body: AsyncIterable<Buffer>): Promise<number> {
    const tmp = join(this.tmp, `${key}.${randomBytes(4).toString('hex')}`)
    let bytes = 0
    const counted = async function * () { for await (const c of body) { bytes += c.length; yield c } }
    try {
      await pipeline(Readable.from(counted()), createWriteStream(tmp))
      await rename(tmp, this.path(key))
      return bytes
    } catch (err) {
      await rm(tmp, { force: true })
      throw AfsError.from(err)
    }
  }

  async createEmpty (key: string): Promise<void> {
    await writeFile(this.path(key), '')
  }

  async truncate (key: string, size: number): Promise<void> {
    await truncate(this.path(key), size)
  }

  async size (key: string): Promise<number> {
    return (await stat(this.path(key))).size
  }

  async remove (key: string): Promise<void> {
    await rm(this.path(key), { force: true })
  }

  async list (): Promise<string[]> {
    return await readdir(this.dir)
  }
}
