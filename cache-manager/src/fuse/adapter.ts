// The FUSE adapter: thin. Maps each fuse-native call to the Vfs, turns answers into a
// stat or an errno. Every handler goes through `answer`, which catches everything and
// answers exactly once; fuse-native itself drops a late answer after its timeout.
import Fuse from 'fuse-native'
import { AfsError, makeLog, toTimespec, type Timespec } from '@afs-ts/common'
import type { Attr, Vfs } from '../vfs.ts'
import type { Caller } from '../namespace.ts'
import { toErrno } from './errno.ts'
import { TokenFiles } from './token-files.ts'
import { actingAs } from '../tokens.ts'
import { constants } from 'node:fs'
import { FUSE_MAX_WRITE_BYTES, KERNEL_ATTR_TIMEOUT_S, KERNEL_ENTRY_TIMEOUT_S } from '../constants.ts'

type Cb = (err: number, ...rest: unknown[]) => void

/** fuse-native fails a handler after this long; a whole-file fetch in open, or a read waiting for its part of one, may take longer. */
const HANDLER_TIMEOUTS_MS = { default: 120_000, lock: false, flock: false, open: 3_600_000, read: 3_600_000, create: 3_600_000, flush: 3_600_000, fsync: 3_600_000, release: 3_600_000, truncate: 3_600_000, ftruncate: 3_600_000 }
/** A handler unanswered this long is logged. */
const SLOW_OP_MS = 10_000
const BLOCK = 4096
const log = makeLog('fuse')
const U32 = 2 ** 32 - 1
const XATTR_CREATE = 1
const XATTR_REPLACE = 2

function answer<T> (cb: Cb, work: () => Promise<T>, shape: (v: T) => unknown[] = () => []): void {
  let p: Promise<T>
  try { p = work() } catch (err) { cb(toErrno(err)); return }
  p.then(v => cb(0, ...shape(v)), err => cb(toErrno(err)))
}

function toStat (a: Attr) {
  return {
    mode: a.mode, uid: a.uid, gid: a.gid, size: a.size, nlink: a.nlink, blksize: BLOCK, blocks: Math.ceil(a.size / 512),
    atime: toTimespec(a.atimeMs, a.atimeNs), mtime: toTimespec(a.mtimeMs, a.mtimeNs), ctime: toTimespec(a.ctimeMs), dev: 0, rdev: a.rdev, ino: a.ino,
  }
}

export function makeOps (vfs: Vfs, caller: () => Caller) {
  return {
    getattr: (path: string, cb: Cb) => answer(cb, () => vfs.getattr(path), a => [toStat(a)]),
    fgetattr: (path: string, fh: number, cb: Cb) => answer(cb, () => vfs.fgetattr(path, fh), a => [toStat(a)]),
    readdir: (path: string, cb: Cb) => answer(cb, () => vfs.readdir(path), names => [names]),
    readlink: (path: string, cb: Cb) => answer(cb, () => vfs.readlink(path), t => [t]),
    statfs: (path: string, cb: Cb) => answer(cb, () => vfs.statfs(path), s => [toStatfs(s)]),
    open: (path: string, flags: number, cb: Cb) => answer(cb, () => vfs.open(path, flags), fh => [fh]),
    opendir: (_path: string, _flags: number, cb: Cb) => cb(0, 0),
    create: (path: string, mode: number, cb: Cb) => { const c = caller(); answer(cb, () => vfs.create(path, mode, c), fh => [fh]) },
    read: (_path: string, fh: number, buf: Buffer, len: number, pos: number, cb: Cb) =>
      vfs.read(fh, buf, len, pos).then(n => cb(n), err => cb(toErrno(AfsError.from(err)))),
    write: (_path: string, fh: number, buf: Buffer, len: number, pos: number, cb: Cb) =>
      vfs.write(fh, buf, len, pos).then(n => cb(n), err => cb(toErrno(AfsError.from(err)))),
    flush: (_path: string, fh: number, cb: Cb) => answer(cb, () => vfs.flush(fh)),
    fsync: (_path: string, _datasync: boolean, fh: number, cb: Cb) => answer(cb, () => vfs.fsync(fh)),
    release: (_path: string, fh: number, cb: Cb) => answer(cb, () => vfs.release(fh)),
    truncate: (path: string, size: number, cb: Cb) => answer(cb, () => vfs.truncate(path, size)),
    ftruncate: (_path: string, fh: number, size: number, cb: Cb) => answer(cb, () => vfs.ftruncate(fh, size)),
    chmod: (path: string, mode: number, cb: Cb) => answer(cb, () => vfs.chmod(path, mode)),
    chown: (path: string, uid: number, gid: number, cb: Cb) => answer(cb, () => vfs.chown(path, uid, gid)),
    utimens: (path: string, atime: Timespec | null, mtime: Timespec | null, cb: Cb) => answer(cb, () => vfs.utimens(path, atime, mtime)),
    getxattr: (path: string, name: string, _position: number, cb: Cb) => answer(cb, () => vfs.getxattr(path, name), v => [v]),
    listxattr: (path: string, cb: Cb) => answer(cb, () => vfs.listxattr(path), names => [names]),
    setxattr: (path: string, name: string, value: Buffer, _position: number, flags: number, cb: Cb) => {
      const copy = Buffer.from(value) // the binding's buffer is gone once the call returns
      answer(cb, () => vfs.setxattr(path, name, copy, flags & XATTR_CREATE ? 'create' : flags & XATTR_REPLACE ? 'replace' : 'either'))
    },
    removexattr: (path: string, name: string, cb: Cb) => answer(cb, () => vfs.setxattr(path, name, null, 'replace')),
    lock: (_path: string, fh: number, cmd: number, type: number, start: number, len: number, _pid: number, owner: string, cb: Cb) =>
      answer(cb, () => vfs.lock(fh, cmd, type, start, len, owner), found => [found]),
    flock: (_path: string, fh: number, op: number, owner: string, cb: Cb) => answer(cb, () => vfs.flock(fh, op, owner)),
    mknod: (path: string, mode: number, rdev: number, cb: Cb) => { const c = caller(); answer(cb, () => vfs.mknod(path, mode, rdev, c)) },
    mkdir: (path: string, mode: number, cb: Cb) => { const c = caller(); answer(cb, () => vfs.mkdir(path, mode, c)) },
    rmdir: (path: string, cb: Cb) => answer(cb, () => vfs.rmdir(path)),
    unlink: (path: string, cb: Cb) => answer(cb, () => vfs.unlink(path)),
    rename: (from: string, to: string, cb: Cb) => answer(cb, () => vfs.rename(from, to)),
    link: (from: string, to: string, cb: Cb) => answer(cb, () => vfs.link(from, to)),
    symlink: (target: string, path: string, cb: Cb) => { const c = caller(); answer(cb, () => vfs.symlink(target, path, c)) },
  }
}

function toStatfs (s: { usage: number, quota: number, files: number, diskTotal: number, diskFree: number } | null) {
  const total = s ? (s.quota > 0 ? s.quota : s.diskTotal) : 0
  const free = s ? (s.quota > 0 ? Math.max(0, Math.min(s.quota - s.usage, s.diskFree)) : s.diskFree) : 0
  const blocks = (n: number) => Math.min(U32, Math.floor(n / BLOCK))
  return {
    bsize: BLOCK, frsize: BLOCK, blocks: blocks(total), bfree: blocks(free), bavail: blocks(free),
    files: Math.min(U32, (s?.files ?? 0) + 1_000_000), ffree: 1_000_000, favail: 1_000_000, fsid: 0x0af5, flag: 0, namemax: 255,
  }
}

/**
 * Every handler, watched: one still unanswered after SLOW_OP_MS is logged (with its
 * path), and again when it ends, so a stuck call shows in the log.
 */
function watched<T extends Record<string, (...args: never[]) => unknown>> (ops: T): T {
  const out: Record<string, (...args: unknown[]) => unknown> = {}
  for (const [name, fn] of Object.entries(ops) as Array<[string, (...args: unknown[]) => unknown]>) {
    out[name] = (...args: unknown[]) => {
      const cb = args[args.length - 1] as Cb
      const what = () => `${name} ${typeof args[0] === 'string' ? args[0] : ''}` // built only for a slow call
      const started = Date.now()
      let slow = false
      const timer = setTimeout(() => { slow = true; log.warn(`${what()}: no answer after ${SLOW_OP_MS / 1000} s`) }, SLOW_OP_MS)
      args[args.length - 1] = (...r: unknown[]) => {
        clearTimeout(timer)
        if (slow) log.warn(`${what()}: answered after ${((Date.now() - started) / 1000).toFixed(1)} s`)
        cb(...(r as [number]))
      }
      return fn(...args)
    }
  }
  return out as unknown as T
}

export interface Mount { fuse: Fuse, unmount (): Promise<void> }

/**
 * The token files (`token-files.ts`) in front of the file system's own handlers: their
 * paths and handles are answered by them, everything else goes on to `ops`.
 */
function withTokenFiles (ops: ReturnType<typeof makeOps>, files: TokenFiles, caller: () => Caller): ReturnType<typeof makeOps> {
  const now = <T>(cb: Cb, work: () => T, shape: (v: T) => unknown[] = () => []) => answer(cb, async () => work(), shape)
  return {
    ...ops,
    getattr: (path, cb) => files.owns(path) ? now(cb, () => files.getattr(path), a => [toStat(a)]) : ops.getattr(path, cb),
    fgetattr: (path, fh, cb) => files.ownsHandle(fh) ? now(cb, () => files.getattr(path), a => [toStat(a)]) : ops.fgetattr(path, fh, cb),
    readdir: (path, cb) => files.owns(path) ? cb(0, []) : ops.readdir(path, cb),
    open: (path, flags, cb) => files.owns(path) ? now(cb, () => files.open(path, flags, caller()), fh => [fh]) : ops.open(path, flags, cb),
    create: (path, mode, cb) => files.owns(path) ? now(cb, () => files.open(path, constants.O_WRONLY | constants.O_TRUNC, caller()), fh => [fh]) : ops.create(path, mode, cb),
    read: async (path, fh, buf, len, pos, cb) => {
      if (!files.ownsHandle(fh)) { await ops.read(path, fh, buf, len, pos, cb); return }
      try { cb(files.read(fh, buf, len, pos)) } catch (err) { cb(toErrno(err)) }
    },
    write: async (path, fh, buf, len, pos, cb) => {
      if (!files.ownsHandle(fh)) { await ops.write(path, fh, buf, len, pos, cb); return }
      try { cb(files.write(fh, buf, len, pos)) } catch (err) { cb(toErrno(err)) }
    },
    flush: (path, fh, cb) => files.ownsHandle(fh) ? now(cb, () => files.flush(fh)) : ops.flush(path, fh, cb),
    release: (path, fh, cb) => files.ownsHandle(fh) ? now(cb, () => files.release(fh)) : ops.release(path, fh, cb),
    ftruncate: (path, fh, size, cb) => files.ownsHandle(fh) ? now(cb, () => files.truncate(fh, size)) : ops.ftruncate(path, fh, size, cb),
    truncate: (path, size, cb) => files.owns(path) ? now(cb, () => files.truncatePath(path, size, caller())) : ops.truncate(path, size, cb),
    unlink: (path, cb) => files.owns(path) ? now(cb, () => files.unlink(path, caller())) : ops.unlink(path, cb),
  }
}

/** Every handler runs for the calling process's user: the requests it makes carry that user's tokens. */
function asCaller<T extends Record<string, (...args: never[]) => unknown>> (ops: T, caller: () => Caller): T {
  const out: Record<string, (...args: unknown[]) => unknown> = {}
  for (const [name, fn] of Object.entries(ops) as Array<[string, (...args: unknown[]) => unknown]>) {
    out[name] = (...args: unknown[]) => actingAs(caller().uid, () => fn(...args))
  }
  return out as unknown as T
}

/** Mounts `vfs` at `mnt`: every user may enter (allow_other when root), the kernel checks modes. */
export async function mount (vfs: Vfs, mnt: string): Promise<Mount> {
  let fuse: Fuse | null = null
  const caller = (): Caller => fuse?.caller ?? { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, pid: 0 }
  const isRoot = process.getuid?.() === 0
  const ops = withTokenFiles(makeOps(vfs, caller), new TokenFiles(vfs.cm.tokens), caller)
  fuse = new Fuse(mnt, watched(asCaller(ops, caller)), {
    force: true, mkdir: true, fsname: 'afs-ts', subtype: 'afs', allowOther: isRoot, defaultPermissions: true,
    bigWrites: true, maxWrite: FUSE_MAX_WRITE_BYTES, autoCache: true, attrTimeout: String(KERNEL_ATTR_TIMEOUT_S),
    entryTimeout: KERNEL_ENTRY_TIMEOUT_S, negativeTimeout: 0, useIno: true, atomicOTrunc: true, timeout: HANDLER_TIMEOUTS_MS,
  })
  const f = fuse
  await new Promise<void>((resolve, reject) => f.mount(err => err ? reject(err) : resolve()))
  return {
    fuse: f,
    unmount: () => new Promise<void>((resolve, reject) => f.unmount(err => err ? reject(err) : resolve())),
  }
}
