// Common ancestors for three-way views and merges: the server version a file had
// before its first change while disconnected, copied aside (a reflink where the file
// system offers one) under `<cache>/ancestors/`. A conflict takes its file; a store
// that reaches the server drops it.
import { constants } from 'node:fs'
import { copyFile, mkdir, readdir, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { makeLog } from '@afs-ts/common'

const log = makeLog('ancestors')
/** Files larger than this keep no ancestor (three-way merges are for text). */
export const ANCESTOR_MAX_BYTES = 64 * 1024 * 1024

export class Ancestors {
  readonly dir: string
  /** Keys ("cell:fid") with an ancestor on disk, and its version. */
  private readonly kept = new Map<string, number>()

  constructor (cacheDir: string) {
    this.dir = join(cacheDir, 'ancestors')
  }

  /** Indexes the ancestors on disk, dropping those no change refers to any more. */
  async ready (isReferenced: (key: string) => boolean): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    for (const f of await readdir(this.dir)) {
      const at = f.lastIndexOf('@')
      const key = f.slice(0, at)
      if (at > 0 && isReferenced(key)) this.kept.set(key, Number(f.slice(at + 1)))
      else await rm(join(this.dir, f), { force: true })
    }
  }

  private path (key: string, version: number): string {
    return join(this.dir, `${key}@${version}`)
  }

  /** Copies `container` as the ancestor of `key` at `version`, once per version. Best effort. */
  async keep (key: string, version: number, container: string, size: number): Promise<void> {
    if (this.kept.get(key) === version || size > ANCESTOR_MAX_BYTES) return
    try {
      await copyFile(container, this.path(key, version), constants.COPYFILE_FICLONE)
      const old = this.kept.get(key)
      this.kept.set(key, version)
      if (old !== undefined) await rm(this.path(key, old), { force: true })
    } catch (err) {
      log.warn(`could not keep the ancestor of ${key}: ${(err as Error).message}`)
    }
  }

  /** Moves the ancestor of `key` at `version` to `dest`; false if there is none. */
  async take (key: string, version: number | null, dest: string): Promise<boolean> {
    if (version === null || this.kept.get(key) !== version) return false
    this.kept.delete(key)
    try { await rename(this.path(key, version), dest); return true } catch { return false }
  }

  async drop (key: string): Promise<void> {
    const v = this.kept.get(key)
    if (v === undefined) return
    this.kept.delete(key)
    await rm(this.path(key, v), { force: true })
  }
}
