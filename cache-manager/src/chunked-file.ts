// Files too big to cache whole, read a chunk at a time (OpenAFS's chunked cache): a read
// fetches the chunks it needs — with the next few while reads go on in order — and reads
// those already here from disk. The cache evicts chunks one by one, so a file many times
// the cache's size streams through it. Only read-only opens of a file with no current
// container read this way; opening one for writing fetches it whole, as any file.
import { busy, isUnreachable, volumeOffline } from '@afs-ts/common'
import type { Cell } from './cell.ts'
import type { CacheSpace } from './cache-space.ts'
import type { ContainerStore } from './container-file.ts'
import type { Counters } from './counters.ts'
import { hasData, type FsObject } from './fs-object.ts'
import type { ClientModifyLog } from './cml.ts'
import type { ObjectCache } from './object-cache.ts'
import { CHUNKED_FILE_FRACTION, READ_AHEAD_CHUNKS } from './constants.ts'

/** Reads of a chunk that went between its fetch and its read (evicted, or a newer version came), at most. */
const READ_ATTEMPTS = 5

/** What chunked reading needs of the cache manager. */
export interface ChunkedFilesDeps {
  readonly objects: Pick<ObjectCache, 'accept' | 'miss'>
  readonly cml: Pick<ClientModifyLog, 'references'>
  readonly containers: Pick<ContainerStore, 'chunks'>
  readonly space: Pick<CacheSpace, 'makeRoom' | 'usePriority' | 'limitBytes' | 'reservedBytes'>
  readonly counters: Counters
}

export class ChunkedFiles {
  /** Files bigger than this are read in chunks. */
  readonly minBytes: number
  /** Chunks fetched ahead of an in-order reader. */
  private readonly ahead: number
  private readonly inflight = new Map<string, Promise<void>>()
  /** Where each file's last read ended: a read that starts there reads ahead. */
  private readonly nextRead = new Map<string, number>()

  constructor (private readonly d: ChunkedFilesDeps) {
    this.minBytes = Math.floor(d.space.limitBytes * CHUNKED_FILE_FRACTION)
    this.ahead = Math.max(1, Math.min(READ_AHEAD_CHUNKS, Math.floor(d.space.limitBytes / d.containers.chunks.chunkBytes / 4)))
  }

  /**
   * Whether a read-only open of `o` reads it in chunks: a file too big for a fair share of
   * the cache, with no current container — none, or an older version's while its server
   * answers (disconnected, that one is read).
   */
  chunked (cell: Cell, o: FsObject): boolean {
    if (o.status.type !== 'file' || o.status.size <= this.minBytes || hasData(o) || o.conflict) return false
    return o.cachedVersion === null || (cell.route(o.status.fid.volume).connected && !this.d.cml.references(cell.name, o.status.fid))
  }

  /**
   * Reads `len` bytes at `pos` of `o` into `buf` (fewer at its end). A chunk missing while
   * its server is unreachable fails at once, as a miss of `path`.
   */
  async read (cell: Cell, o: FsObject, path: string, buf: Buffer, len: number, pos: number): Promise<number> {
    const chunks = this.d.containers.chunks
    const size = chunks.chunkBytes
    const sequential = pos === 0 || this.nextRead.get(o.key) === pos
    let done = 0
    for (let attempt = 1; done < len;) {
      const at = pos + done
      const connected = cell.route(o.status.fid.volume).connected
      // (Disconnected, the chunks here are read at whatever version they are, as a whole container would be.)
      const version = connected ? o.status.dataVersion : chunks.versionOf(o.key) ?? o.status.dataVersion
      if (at >= o.status.size) break
      const index = Math.floor(at / size)
      const within = at - index * size
      const want = Math.min(len - done, size - within)
      if (sequential && connected) this.readAhead(cell, o, index)
      if (!chunks.has(o.key, version, index)) await this.fetchMissing(cell, o, index, path, connected)
      const n = await chunks.read(o.key, version, index, buf, done, want, within)
      if (n === null) {
        if (++attempt > READ_ATTEMPTS) throw busy(`${path}: chunk ${index} keeps going before it can be read (the cache is too small for its readers)`)
        continue
      }
      done += n
      if (n < want) break // the end of the file
    }
    this.nextRead.set(o.key, pos + done)
    return done
  }

  /** The reader of `o` is closing it. */
  closed (o: FsObject): void {
    if (o.openCount === 0) this.nextRead.delete(o.key)
  }

  private async fetchMissing (cell: Cell, o: FsObject, index: number, path: string, connected: boolean): Promise<void> {
    if (!connected) throw this.d.objects.miss(path, volumeOffline(`chunk ${index} is not in the cache`))
    try {
      await this.fetch(cell, o, index)
    } catch (err) {
      throw isUnreachable(err) ? this.d.objects.miss(path, err) : err
    }
  }

  /** Fetches the chunks after `index` that are not here, and keeps them from eviction before the rest. */
  private readAhead (cell: Cell, o: FsObject, index: number): void {
    const last = Math.min(index + this.ahead, Math.ceil(o.status.size / this.d.containers.chunks.chunkBytes) - 1)
    this.d.containers.chunks.keep(o.key, index, last)
    for (let i = index + 1; i <= last; i++) {
      if (!this.d.containers.chunks.has(o.key, o.status.dataVersion, i)) void this.fetch(cell, o, i).catch(() => {})
    }
  }

  /** Fetches chunk `index` of `o` once for concurrent callers. */
  private fetch (cell: Cell, o: FsObject, index: number): Promise<void> {
    const k = `${o.key}#${index}`
    let p = this.inflight.get(k)
    if (!p) {
      p = this.fetchChunk(cell, o, index).finally(() => this.inflight.delete(k))
      this.inflight.set(k, p)
    }
    return p
  }

  private async fetchChunk (cell: Cell, o: FsObject, index: number): Promise<void> {
    const size = this.d.containers.chunks.chunkBytes
    await this.d.space.makeRoom(size, o.key, this.d.space.usePriority(o.key))
    this.d.space.reservedBytes += size
    try {
      const offset = index * size
      const { result: reply, body } = await cell.route(o.status.fid.volume).download('fetchData', { fid: o.status.fid, offset, length: size })
      this.d.counters.chunkFetches++
      // (A newer version than the chunks here: they go, and this one starts its set.)
      this.d.objects.accept(cell, reply)
      const expect = Math.max(0, Math.min(size, reply.status.size - offset))
      this.d.counters.bytesFetched += await this.d.containers.chunks.put(o.key, reply.status.dataVersion, index, body, expect)
    } finally {
      this.d.space.reservedBytes -= size
    }
  }
}
