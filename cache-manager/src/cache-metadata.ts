// Opening the cache's metadata (LMDB): damaged metadata is moved aside and the cache
// starts empty — the client modification log lives apart and loses nothing.
import { open, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { makeLog } from '@afs-ts/common'
import { FsObjectTable } from './fs-object-table.ts'

const log = makeLog('cache-manager')

/**
 * Opens the cache metadata; damaged metadata is moved aside (`damaged`) and rebuilt from
 * the log and the servers (the CML is kept apart).
 */
export async function openTable (cacheDir: string): Promise<{ table: FsObjectTable, damaged: boolean }> {
  try {
    // LMDB trusts its file: check its meta pages before handing it one.
    if (!await looksLikeLmdb(join(cacheDir, 'cache.lmdb'))) throw new Error('no valid LMDB meta page')
    const t = new FsObjectTable(cacheDir)
    t.load()
    return { table: t, damaged: false }
  } catch (err) {
    const aside = join(cacheDir, `cache.lmdb.damaged-${Date.now()}`)
    log.error(`cache metadata is damaged (${(err as Error).message}); moved to ${aside}, starting an empty cache; pending changes are kept`)
    await rename(join(cacheDir, 'cache.lmdb'), aside)
    await rm(join(cacheDir, 'cache.lmdb-lock'), { force: true })
    return { table: new FsObjectTable(cacheDir), damaged: true }
  }
}

const LMDB_MAGIC = 0xbeefc0de
/** Where the magic sits in a meta page: after a 16-byte page header (LMDB 0.9) or 24-byte (1.0, as lmdb-js builds it). */
const LMDB_MAGIC_OFFSETS = [16, 24]

/** Whether a file is absent or carries LMDB's magic number in one of its two meta pages. */
async function looksLikeLmdb (path: string): Promise<boolean> {
  let fh
  try { fh = await open(path, 'r') } catch { return true }
  try {
    const buf = Buffer.alloc(8192)
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0)
    if (bytesRead === 0) return true
    for (const page of [0, 4096]) {
      for (const off of LMDB_MAGIC_OFFSETS) if (bytesRead >= page + off + 4 && buf.readUInt32LE(page + off) === LMDB_MAGIC) return true
    }
    return false
  } finally { await fh.close() }
}
