// Chunks of files too big to cache whole (OpenAFS's dcache chunks): each a file of its own
// under the cache directory, named by object key, data version and index, so that a file
// far bigger than the cache is read through it a chunk at a time and evicted chunk by
// chunk. A chunk is written to a temp file and renamed into place: a crash leaves it whole
// or absent, and the chunks found at start are read again after a restart, offline too
// (kept in a directory per chunk size: those of another size, a cache resized, go).
import { close as fsClose, open as fsOpen, read as fsRead } from 'node:fs'
import { promisify } from 'node:util'
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { AfsError, hashMismatch } from '@afs-ts/common'
import { CHUNK_MAX_BYTES, CHUNK_MIN_BYTES } from './constants.ts'

const openAsync = promisify(fsOpen)
const closeAsync = promisify(fsClose)
/** Between a chunk file's key, version and index (a key is `cell:volume.vnode.unique`). */
const SEP = '@'

interface Chunk { bytes: number, used: number }
/** The chunks of one file, all of one data version; `keep`: the indexes its reader needs next. */
interface ChunkSet { version: number, chunks: Map<number, Chunk>, keep: { from: number, to: number } | null }
/** A descriptor on the chunk a file was last read from (reads come 128 KiB at a time). */
interface OpenChunk { version: number, index: number, fd: number, refs: number }

/** The chunk size of a cache of `cacheBytes`: CHUNK_MAX_BYTES, halved until sixteen fit (not below CHUNK_MIN_BYTES). */
export function chunkSizeFor (cacheBytes: number): number {
  let size = CHUNK_MAX_BYTES
  while (size > CHUNK_MIN_BYTES && size * 16 > cacheBytes) size /= 2
  return size
}

export class ChunkStore {
  /** Bytes all chunks hold. */
  bytes = 0
  private readonly sets = new Map<string, ChunkSet>()
  private readonly fds = new Map<string, OpenChunk>()
  private readonly dir: string

  /** `root`: the directory of the chunk directories; `chunkBytes`: every chunk's size but a file's last. */
  constructor (private readonly root: string, private readonly tmp: string, readonly chunkBytes: number) {
    this.dir = join(root, String(chunkBytes))
  }

  /**
   * Finds the chunks a previous run left, the newest version of each file's (the temp
   * directory is the container store's, emptied at start).
   */
  async ready (): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    for (const other of await readdir(this.root)) if (other !== String(this.chunkBytes)) await rm(join(this.root, other), { recursive: true, force: true })
    const found: Array<{ name: string, key: string, version: number, index: number }> = []
    for (const name of await readdir(this.dir)) {
      const [key, version, index, ...rest] = name.split(SEP)
      const v = Number(version)
      const i = Number(index)
      if (key && rest.length === 0 && Number.isSafeInteger(v) && Number.isSafeInteger(i)) found.push({ name, key, version: v, index: i })
      else await rm(join(this.dir, name), { force: true })
    }
    const newest = new Map<string, number>()
    for (const f of found) newest.set(f.key, Math.max(newest.get(f.key) ?? -1, f.version))
    for (const f of found) {
      if (f.version !== newest.get(f.key)) { await rm(join(this.dir, f.name), { force: true }); continue }
      this.add(this.setOf(f.key, f.version), f.index, (await stat(join(this.dir, f.name))).size, 0)
    }
  }

  /** The data version the chunks of `key` hold, if it has any. */
  versionOf (key: string): number | null {
    const set = this.sets.get(key)
    return set && set.chunks.size > 0 ? set.version : null
  }

  /** The files that have chunks here. */
  keys (): string[] {
    return [...this.sets.keys()]
  }

  bytesOf (key: string): number {
    let n = 0
    for (const c of this.sets.get(key)?.chunks.values() ?? []) n += c.bytes
    return n
  }

  count (): { files: number, chunks: number } {
    let chunks = 0
    for (const s of this.sets.values()) chunks += s.chunks.size
    return { files: this.sets.size, chunks }
  }

  has (key: string, version: number, index: number): boolean {
    const set = this.sets.get(key)
    return set?.version === version && set.chunks.has(index)
  }

  /** The reader of `key` goes on with chunks `from` to `to`: they are evicted last. */
  keep (key: string, from: number, to: number): void {
    const set = this.sets.get(key)
    if (set) set.keep = { from, to }
  }

  /**
   * Writes `body` as chunk `index` of version `version` of `key`: exactly `expect` bytes, or
   * nothing. Chunks of an older version of the file go first; a chunk older than those here
   * is not kept.
   */
  async put (key: string, version: number, index: number, body: AsyncIterable<Buffer>, expect: number): Promise<number> {
    const tmp = join(this.tmp, `${key}${SEP}${version}${SEP}${index}.${randomBytes(4).toString('hex')}`)
    try {
      const out = await open(tmp, 'w')
      let bytes = 0
      try {
        for await (const chunk of body) {
          if (bytes + chunk.length > expect) throw hashMismatch(`chunk ${index} of ${key}: more than the ${expect} bytes asked for (a server without ranged reads?)`)
          for (let at = 0; at < chunk.length;) at += (await out.write(chunk, at, chunk.length - at, bytes + at)).bytesWritten
          bytes += chunk.length
        }
      } finally { await out.close() }
      if (bytes !== expect) throw hashMismatch(`chunk ${index} of ${key}: ${bytes} bytes came, ${expect} expected`)
      const here = this.sets.get(key)?.version
      // (Overtaken by chunks of a newer version: not kept.)
      if (here !== undefined && here > version) { await rm(tmp, { force: true }); return bytes }
      if (here !== undefined && here < version) await this.drop(key)
      await rename(tmp, this.path(key, version, index))
      const set = this.setOf(key, version)
      const old = set.chunks.get(index)
      if (old) { this.bytes -= old.bytes; set.chunks.delete(index) }
      this.add(set, index, bytes, Date.now())
      return bytes
    } catch (err) {
      await rm(tmp, { force: true })
      throw AfsError.from(err)
    }
  }

  /**
   * Reads up to `len` bytes at `at` within chunk `index` of version `version` into `buf`
   * at `offset`; null when that chunk is not here (never fetched, evicted, or replaced).
   */
  async read (key: string, version: number, index: number, buf: Buffer, offset: number, len: number, at: number): Promise<number | null> {
    const set = this.sets.get(key)
    const chunk = set?.version === version ? set.chunks.get(index) : undefined
    if (!chunk) return null
    chunk.used = Date.now()
    let open = this.fds.get(key)
    if (open?.version !== version || open.index !== index) {
      let fd: number
      try { fd = await openAsync(this.path(key, version, index), 'r') } catch { return null }
      this.closeFd(key)
      open = { version, index, fd, refs: 0 }
      this.fds.set(key, open)
    }
    const o = open
    o.refs++
    try {
      return await new Promise((resolve, reject) => fsRead(o.fd, buf, offset, len, at, (err, n) => err ? reject(err) : resolve(n)))
    } finally {
      o.refs--
      if (o.refs === 0 && this.fds.get(key) !== o) void closeAsync(o.fd).catch(() => {})
    }
  }

  /** Removes every chunk of `key` (its whole container came, it changed, or it is gone). */
  async drop (key: string): Promise<void> {
    const set = this.sets.get(key)
    if (!set) return
    this.sets.delete(key)
    this.closeFd(key)
    for (const [index, c] of set.chunks) {
      this.bytes -= c.bytes
      await rm(this.path(key, set.version, index), { force: true })
    }
  }

  /**
   * Evicts chunks, least recently read first, until `enough()`: only those no reader needs
   * next, or (`kept`) those too. Returns how many went.
   */
  async evict (enough: () => boolean, kept: boolean): Promise<number> {
    const all: Array<[string, ChunkSet, number, Chunk]> = []
    for (const [key, set] of this.sets) {
      for (const [index, c] of set.chunks) {
        if (kept || set.keep === null || index < set.keep.from || index > set.keep.to) all.push([key, set, index, c])
      }
    }
    all.sort((a, b) => a[3].used - b[3].used)
    let n = 0
    for (const [key, set, index, c] of all) {
      if (enough()) break
      if (set.chunks.get(index) !== c) continue
      set.chunks.delete(index)
      this.bytes -= c.bytes
      if (set.chunks.size === 0) { this.sets.delete(key); this.closeFd(key) } else if (this.fds.get(key)?.index === index) this.closeFd(key)
      await rm(this.path(key, set.version, index), { force: true })
      n++
    }
    return n
  }

  private path (key: string, version: number, index: number): string {
    return join(this.dir, `${key}${SEP}${version}${SEP}${index}`)
  }

  /** The set of `key`, made for `version` if it has none. */
  private setOf (key: string, version: number): ChunkSet {
    let set = this.sets.get(key)
    if (!set) { set = { version, chunks: new Map(), keep: null }; this.sets.set(key, set) }
    return set
  }

  private add (set: ChunkSet, index: number, bytes: number, used: number): void {
    set.chunks.set(index, { bytes, used })
    this.bytes += bytes
  }

  /** Closes the descriptor kept on `key`'s last chunk read (now, or when its last read ends). */
  private closeFd (key: string): void {
    const o = this.fds.get(key)
    if (!o) return
    this.fds.delete(key)
    if (o.refs === 0) void closeAsync(o.fd).catch(() => {})
  }
}
