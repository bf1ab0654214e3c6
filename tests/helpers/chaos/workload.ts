// The chaos harness's operations: what a user does in a shared tree, drawn at random on
// a few names so that clients collide. Each runs through a client's mount (async calls:
// the cache manager is another process), is bounded in time, and returns what the
// client was told and what it means for the final state. Files hold fixed-size tokens,
// one per slot, so every byte a client wrote can be looked for at the end.
import { execFile } from 'node:child_process'
import { constants } from 'node:fs'
import { chmod, link, lstat, mkdir, open, readdir, rename, rmdir, symlink, unlink, utimes, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { Outcome } from './history.ts'

export const SLOT = 16
/** The extended attribute the workload sets (one token). */
export const XATTR = 'user.token'
const NAMES = ['a', 'b', 'c', 'x', 'y']
const MODES = [0o600, 0o640, 0o644, 0o755]
/** An operation that takes longer than this is reported as hung. */
const OP_TIMEOUT_MS = 45_000

/** A seeded generator (mulberry32): the same seed draws the same run. */
export class Random {
  private s: number
  constructor (seed: number) { this.s = seed >>> 0 }
  next (): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0
    let t = this.s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  int (n: number): number { return Math.floor(this.next() * n) }
  pick<T> (xs: readonly T[]): T { return xs[this.int(xs.length)] }
  chance (p: number): boolean { return this.next() < p }
  /** One of `weights`' keys, with probability proportional to its weight. */
  weighted<K extends string> (weights: Record<K, number>): K {
    const total = Object.values<number>(weights).reduce((a, b) => a + b, 0)
    let r = this.next() * total
    for (const [k, w] of Object.entries<number>(weights)) { r -= w; if (r < 0) return k as K }
    return Object.keys(weights)[0] as K
  }
}

export const TOKEN = /T\d{7}[0-9a-f]{7}\n/g
/**
 * Symbolic links lead nowhere (no name in the tree starts with a dot), and writes do
 * not follow one: every operation acts on the path it names, as the checker assumes.
 */
const SYMLINK_PREFIX = '.nowhere/'
/** O_NONBLOCK: an open of a FIFO never waits for the other end (FIFOs are skipped). */
const APPEND = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK
const RDWR = constants.O_RDWR | constants.O_NOFOLLOW | constants.O_NONBLOCK
const run = promisify(execFile)

const OPS = {
  create: 8, write: 8, partial: 5, append: 4, truncate: 3, read: 8, readdir: 3, rename: 6, remove: 5,
  mkdir: 5, rmdir: 3, link: 2, symlink: 2, chmod: 3, utimes: 2, mkfifo: 1, xattr: 2,
} as const
export type OpName = keyof typeof OPS

/** A path of one or two names under the shared tree, e.g. `a/x`. */
function randomPath (rnd: Random): string {
  return rnd.chance(0.45) ? rnd.pick(NAMES) : `${rnd.pick(NAMES)}/${rnd.pick(NAMES)}`
}

export class Workload {
  private serial = 0

  constructor (private readonly rnd: Random) {}

  /** Draws an operation and runs it in the tree `root` (a client's view) as client number `who`. */
  async run (root: string, who: number): Promise<Outcome> {
    const op = this.rnd.weighted<OpName>(OPS)
    const p = randomPath(this.rnd)
    let q = randomPath(this.rnd)
    const out: Outcome = { op, paths: [p], detail: p, ok: false, tokens: [], effects: [] }
    const at = (x: string) => join(root, x)
    const tokens = (n: number) => Array.from({ length: n }, () => this.token(who))
    const act = async (): Promise<void> => {
      switch (op) {
        case 'create': {
          out.tokens = tokens(1 + this.rnd.int(2))
          out.slot = -1
          await writeTokens(at(p), 'wx', out.tokens)
          out.effects = [{ kind: 'exists', path: p, type: 'file' }]
          return
        }
        case 'write': case 'partial': case 'append': {
          const existed = op === 'append' && await typeOf(at(p)) !== undefined
          // A whole write empties the file by its open (O_TRUNC: nothing is fetched first) or by ftruncate.
          const emptied = op === 'write' && this.rnd.int(2) === 0
          const fh = await open(at(p), op === 'append' ? APPEND : emptied ? RDWR | constants.O_TRUNC : RDWR, 0o644)
          try {
            const st = await notFifo(fh)
            out.ino = st.ino
            const slots = Math.floor(st.size / SLOT)
            out.tokens = op === 'write' ? tokens(1 + this.rnd.int(3)) : tokens(1)
            out.slot = op === 'write' ? -1 : op === 'append' ? slots : this.rnd.int(slots + 1)
            if (op === 'write' && !emptied) await fh.truncate(0)
            const data = Buffer.from(out.tokens.join(''))
            await fh.write(data, 0, data.length, op === 'append' ? null : Math.max(0, out.slot) * SLOT)
            out.detail = `${p} slot ${out.slot}`
          } finally { await fh.close() }
          if (op === 'partial') out.op = 'write'
          if (op === 'append' && !existed) out.effects = [{ kind: 'exists', path: p, type: 'file' }] // it made the file
          return
        }
        case 'truncate': {
          out.keepSlots = this.rnd.int(3)
          out.detail = `${p} to ${out.keepSlots} slots`
          const fh = await open(at(p), RDWR)
          try {
            out.ino = (await notFifo(fh)).ino
            await fh.truncate(out.keepSlots * SLOT)
          } finally { await fh.close() }
          return
        }
        case 'read': {
          const fh = await open(at(p), constants.O_RDONLY | constants.O_NONBLOCK)
          try { await notFifo(fh); await fh.readFile() } finally { await fh.close() }
          return
        }
        case 'readdir': await readdir(at(p)); return
        case 'rename': {
          // Never a name onto itself: libfuse 2.9 deadlocks on such a rename when the kernel's
          // two lookups of the name straddle a change of its type (see the closing note of issue 9).
          if (q === p) q = `${p}/${this.rnd.pick(NAMES)}`
          out.paths = [p, q]
          out.detail = `${p} → ${q}`
          const type = await typeOf(at(p))
          await rename(at(p), at(q))
          out.effects = p === q ? [] : [{ kind: 'absent', path: p }, { kind: 'exists', path: q, ...(type ? { type } : {}) }]
          return
        }
        case 'remove': await unlink(at(p)); out.effects = [{ kind: 'absent', path: p }]; return
        case 'rmdir': await rmdir(at(p)); out.effects = [{ kind: 'absent', path: p }]; return
        case 'mkdir': await mkdir(at(p), 0o755); out.effects = [{ kind: 'exists', path: p, type: 'dir' }]; return
        case 'link': {
          out.paths = [p, q]
          out.detail = `${p} ⇒ ${q}`
          await link(at(p), at(q))
          out.effects = [{ kind: 'exists', path: q }]
          return
        }
        case 'symlink': {
          out.detail = `${p} → ${q}`
          await symlink(SYMLINK_PREFIX + q, at(p))
          out.effects = [{ kind: 'exists', path: p, type: 'symlink' }]
          return
        }
        case 'chmod': {
          const mode = this.rnd.pick(MODES)
          out.detail = `${p} ${mode.toString(8)}`
          if ((await lstat(at(p))).isSymbolicLink()) throw Object.assign(new Error('not on symlinks'), { code: 'SKIPPED' })
          await chmod(at(p), mode)
          out.effects = [{ kind: 'mode', path: p, mode }]
          return
        }
        case 'mkfifo': {
          await run('mkfifo', ['-m', '644', at(p)]).catch((e: { stderr?: string }) => { throw Object.assign(new Error(e.stderr ?? String(e)), { code: errnoOf(e.stderr ?? '') }) })
          out.effects = [{ kind: 'exists', path: p, type: 'fifo' }]
          return
        }
        case 'xattr': {
          out.tokens = tokens(1)
          await run('setfattr', ['-h', '-n', XATTR, '-v', out.tokens[0].trim(), at(p)]).catch((e: { stderr?: string }) => { throw Object.assign(new Error(e.stderr ?? String(e)), { code: errnoOf(e.stderr ?? '') }) })
          return
        }
        case 'utimes': {
          const t = new Date(Date.UTC(2020, this.rnd.int(12), 1 + this.rnd.int(28)))
          await utimes(at(p), t, t)
          return
        }
      }
    }
    try {
      await bounded(act(), OP_TIMEOUT_MS)
      out.ok = true
    } catch (err) {
      out.errno = (err as NodeJS.ErrnoException).code ?? (err as Error).message
      out.effects = []
    }
    return out
  }

  private token (who: number): string {
    const t = `T${String(++this.serial).padStart(6, '0')}${who % 10}${this.rnd.int(0x10000000).toString(16).padStart(7, '0')}\n`
    return t
  }
}

async function writeTokens (path: string, flags: string, tokens: string[]): Promise<void> {
  const fh = await open(path, flags, 0o644)
  try { await fh.write(tokens.join('')) } finally { await fh.close() }
}

export type ObjectKind = 'file' | 'dir' | 'symlink' | 'fifo'

export function kindOf (s: { isDirectory (): boolean, isSymbolicLink (): boolean, isFIFO (): boolean }): ObjectKind {
  return s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'symlink' : s.isFIFO() ? 'fifo' : 'file'
}

async function typeOf (path: string): Promise<ObjectKind | undefined> {
  try { return kindOf(await lstat(path)) } catch { return undefined }
}

/** Reads and writes act on files: a FIFO opened without blocking is skipped. */
async function notFifo (fh: FileHandle) {
  const st = await fh.stat()
  if (st.isFIFO()) throw Object.assign(new Error('not on FIFOs'), { code: 'SKIPPED' })
  return st
}

/** The errno a failed mkfifo(1) names in its message. */
function errnoOf (stderr: string): string {
  const known: Record<string, string> = {
    'File exists': 'EEXIST', 'No such file or directory': 'ENOENT', 'Not a directory': 'ENOTDIR',
    'Connection timed out': 'ETIMEDOUT', 'Read-only file system': 'EROFS', 'Permission denied': 'EACCES',
    'Operation not permitted': 'EPERM', 'Operation not supported': 'EOPNOTSUPP', 'No space left': 'ENOSPC',
  }
  return Object.entries(known).find(([text]) => stderr.includes(text))?.[1] ?? stderr.trim()
}

/** Rejects with HUNG when `p` takes longer than `ms` (the call itself goes on). */
export async function bounded<T> (p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(Object.assign(new Error(`no answer in ${ms} ms`), { code: 'HUNG' })), ms) })])
  } finally { clearTimeout(timer) }
}
