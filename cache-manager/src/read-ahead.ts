// Files of a directory read in the order it lists them (find -exec cat, grep -r, cp -r,
// tar c, an image viewer's "next"): once opens of a directory's files come in that order,
// the next files it lists that are not cached yet are fetched ahead of the reader, a few
// at a time, so that each open finds its file here instead of waiting for a fetch of its
// own. Speculative, as a prefetch: it never evicts anything for room, an open of a file
// under way joins its fetch, and it runs only on a current listing of a volume whose
// server answers. Files of up to READ_AHEAD_FILE_MAX_BYTES (a larger one is read as it
// comes in) and bigger than PREFETCH_FILE_MAX_BYTES (smaller ones came with the listing).
import { PREFETCH_FILE_MAX_BYTES } from '@afs-ts/common'
import type { Cell } from './cell.ts'
import type { Counters } from './counters.ts'
import { isListed, type FsObject } from './fs-object.ts'
import { objectKey, type FsObjectTable } from './fs-object-table.ts'
import type { WholeFiles } from './whole-file.ts'
import { STREAMED_READ_MIN_BYTES } from './constants.ts'
import { JobQueue } from './job-queue.ts'

/** Files fetched ahead of an in-order reader, at most, past the one it opened. */
export const READ_AHEAD_FILES = 16
/** Fetches ahead under way at once, at most. */
export const READ_AHEAD_PARALLEL = 4
/** Files waiting to be fetched ahead, at most (a reader far ahead of them finds them fetched by its opens). */
const READ_AHEAD_QUEUE_MAX = 256
/** The largest file fetched ahead. */
export const READ_AHEAD_FILE_MAX_BYTES = STREAMED_READ_MIN_BYTES
/** Opens count as in order when each is at most this many entries past the last. */
const IN_ORDER_GAP = 8
/** Directories whose readers are followed, at most (the least recently opened go). */
const DIRS_MAX = 256

/** A directory's listing order, and where its reader is. */
interface DirState { version: number, position: Map<string, number>, names: string[], last: number, ahead: number }

export interface ReadAheadDeps {
  readonly table: Pick<FsObjectTable, 'get'>
  readonly files: Pick<WholeFiles, 'ensureData'>
  readonly counters: Pick<Counters, 'readAheadFiles'>
}

export class DirReadAhead {
  private readonly dirs = new Map<string, DirState>()
  private readonly jobs = new JobQueue(READ_AHEAD_PARALLEL, READ_AHEAD_QUEUE_MAX, 'read-ahead')

  constructor (private readonly d: ReadAheadDeps) {}

  /** File `name` of directory `dir` is being opened for reading. */
  opened (cell: Cell, dir: FsObject, name: string): void {
    if (!isListed(dir) || !dir.entries || !cell.route(dir.status.fid.volume).connected) return
    let s = this.dirs.get(dir.key)
    if (s?.version !== dir.listedVersion) {
      const names = [...dir.entries.keys()]
      s = { version: dir.listedVersion, names, position: new Map(names.map((n, i) => [n, i])), last: -1, ahead: -1 }
    }
    this.dirs.delete(dir.key)
    this.dirs.set(dir.key, s)
    if (this.dirs.size > DIRS_MAX) this.dirs.delete(this.dirs.keys().next().value!)
    const at = s.position.get(name)
    if (at === undefined) return
    const inOrder = s.last >= 0 && at > s.last && at - s.last <= IN_ORDER_GAP
    s.last = at
    if (!inOrder) { s.ahead = at; return }
    const until = Math.min(s.names.length - 1, at + READ_AHEAD_FILES)
    for (let i = Math.max(s.ahead, at) + 1; i <= until; i++) {
      const entry = dir.entries.get(s.names[i])
      const o = entry?.type === 'file' ? this.d.table.get(objectKey(cell.name, entry.fid)) : undefined
      if (o && o.cachedVersion === null && !o.dirty && o.status.size > PREFETCH_FILE_MAX_BYTES && o.status.size <= READ_AHEAD_FILE_MAX_BYTES) this.enqueue(cell, o)
    }
    s.ahead = Math.max(s.ahead, until)
  }

  /** Fetches `o` ahead of its open (as the user whose reading it follows: the server checks that user's right to read). */
  private enqueue (cell: Cell, o: FsObject): void {
    this.jobs.push(async () => {
      if (o.cachedVersion !== null) return
      await this.d.files.ensureData(cell, o, 0)
      if (o.cachedVersion !== null) this.d.counters.readAheadFiles++
    })
  }
}
