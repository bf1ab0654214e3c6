// The file-system API of the cache manager, by path, as the FUSE adapter needs it (rclone's
// vfs/ to its mount). Knows nothing about FUSE: errors are AfsErrors, times are ms.
import { open as fsOpen, read as fsRead, write as fsWrite, close as fsClose, fsync as fsFsync, constants } from 'node:fs'
import { promisify } from 'node:util'
import {
  RIGHT_LOOKUP, RIGHT_READ, RIGHT_WRITE, isUnreachable, conflict, fromTimespec, invalid, isDir, noData, notDir, notFound, notSupported, permission, rootFid, badRequest,
  TYPE_BITS, type StatfsReply, type Timespec, type XattrMode,
} from '@afs-ts/common'
import type { CacheManager } from './cache-manager.ts'
import type { Cell } from './cell.ts'
import { hasData, seenAt, type FsObject, type LocalAttrs } from './fs-object.ts'
import { Namespace, splitPath, type Caller } from './namespace.ts'
import { uploadGate } from './upload-gate.ts'
import type { Filling } from './filling.ts'

const openAsync = promisify(fsOpen)
const closeAsync = promisify(fsClose)
const fsyncAsync = promisify(fsFsync)
const O_ACCMODE = 3

/** Never kept: the binding answers a get of these without asking (the kernel asks on every write, ls -l for every file). */
const UNKEPT_XATTRS = new Set(['security.capability', 'security.selinux'])

export interface Attr {
  ino: number, mode: number, uid: number, gid: number, size: number, nlink: number, rdev: number,
  atimeMs: number, mtimeMs: number, ctimeMs: number, atimeNs?: number, mtimeNs?: number
}
type Node = { kind: 'root' } | { kind: 'object', cell: Cell, obj: FsObject }
/** An open file: `shared` descriptors belong to the read-fd cache; `append`: opened with O_APPEND. */
/** `filling`: the file is read while its fetch fills the container (`fd` is the filling's). */
/** `chunked`: the file is read in chunks (no descriptor), by this path (for a miss). */
interface Handle { cell: Cell, obj: FsObject, fd: number, writable: boolean, shared: boolean, append: boolean, filling?: Filling, chunked?: { path: string } }

export class Vfs {
  private readonly handles = new Map<number, Handle>()
  private nextHandle = 1
  private readonly startedMs = Date.now()

  readonly ns: Namespace

  constructor (readonly cm: CacheManager) {
    this.ns = new Namespace(cm, (path, followMount) => this.resolveObject(path, followMount))
  }

  // ---- lookups ----

  async resolve (path: string, followMount = true): Promise<Node> {
    const parts = splitPath(path)
    if (parts.length === 0) return { kind: 'root' }
    const cached = this.resolveCached(parts, followMount)
    if (cached) return cached
    try {
      return await this.walk(path, parts, followMount)
    } catch (err) {
      if (isUnreachable(err)) throw this.cm.objects.miss(path, err)
      throw err
    }
  }

  private async walk (path: string, parts: string[], followMount: boolean): Promise<Node> {
    const cell = this.cm.objects.cell(parts[0])
    let obj = await this.cm.objects.object(cell, await cell.rootFid())
    for (let i = 1; i < parts.length; i++) {
      const d = (await this.cm.objects.entries(cell, obj)).get(parts[i])
      if (!d) throw notFound(`${path}: no such file or directory`)
      const dir = obj.status.fid
      obj = await this.cm.objects.object(cell, d.fid)
      seenAt(obj, dir, parts[i])
      if (obj.status.type === 'mount' && (followMount || i < parts.length - 1)) obj = await this.volumeRoot(cell, obj)
      else if (i < parts.length - 1 && obj.status.type !== 'dir') throw notDir(`${parts.slice(0, i + 1).join('/')} is not a directory`)
    }
    return { kind: 'object', cell, obj }
  }

  /** The same walk without I/O, when callbacks cover every step; null when one does not. */
  private resolveCached (parts: string[], followMount: boolean): Node | null {
    const cell = this.cm.cells.get(parts[0])
    const rootVolume = cell?.volumes.named(cell.rootVolume)
    if (!cell || !rootVolume) return null
    let obj = this.cm.objects.cachedObject(cell, rootVolume.entry.root)
    for (let i = 1; i < parts.length && obj; i++) {
      const d = this.cm.objects.cachedEntries(obj)?.get(parts[i])
      if (!d) return null
      obj = this.cm.objects.cachedObject(cell, d.fid)
      if (obj?.status.type === 'mount' && (followMount || i < parts.length - 1)) {
        const v = cell.volumes.named(obj.status.target ?? '')
        obj = v ? this.cm.objects.cachedObject(cell, v.entry.root) : null
      } else if (obj && i < parts.length - 1 && obj.status.type !== 'dir') return null
    }
    return obj ? { kind: 'object', cell, obj } : null
  }

  async resolveObject (path: string, followMount = true): Promise<{ cell: Cell, obj: FsObject }> {
    const n = await this.resolve(path, followMount)
    if (n.kind === 'root') throw permission('the mount root holds cells only')
    return n
  }

  private async volumeRoot (cell: Cell, mount: FsObject): Promise<FsObject> {
    const v = await cell.volume(mount.status.target ?? '')
    return await this.cm.objects.object(cell, rootFid(v.id))
  }

  /** The directory that holds `path`'s last component, and that name. */
  async getattr (path: string): Promise<Attr> {
    const n = await this.resolve(path)
    if (n.kind === 'root') return { ino: 1, mode: TYPE_BITS.dir | 0o755, uid: 0, gid: 0, size: 4096, nlink: 2 + this.cm.cells.size, rdev: 0, atimeMs: this.startedMs, mtimeMs: this.startedMs, ctimeMs: this.startedMs }
    return attrOf(n.obj)
  }

  async fgetattr (path: string, fh: number): Promise<Attr> {
    const h = this.handles.get(fh)
    return h ? attrOf(h.obj) : await this.getattr(path)
  }

  async readdir (path: string): Promise<string[]> {
    const n = await this.resolve(path)
    if (n.kind === 'root') return ['.', '..', ...this.cm.cells.keys()]
    await this.cm.objects.checkAccess(n.cell, n.obj, RIGHT_LOOKUP)
    return ['.', '..', ...(await this.cm.objects.entries(n.cell, n.obj)).keys()]
  }

  async readlink (path: string): Promise<string> {
    const { obj } = await this.resolveObject(path, false)
    if (obj.conflict) return conflictTarget(obj)
    if (obj.status.type !== 'symlink') throw invalid('not a symbolic link')
    return obj.status.target ?? ''
  }

  async statfs (path: string): Promise<StatfsReply | null> {
    const n = await this.resolve(path).catch(() => null)
    if (!n || n.kind === 'root') return null
    try {
      return await n.cell.route(n.obj.status.fid.volume).call('statfs', { volume: n.obj.status.fid.volume })
    } catch (err) {
      if (isUnreachable(err)) return null // df keeps working while disconnected
      throw err
    }
  }

  // ---- files ----

  async open (path: string, flags: number): Promise<number> {
    const { cell, obj } = await this.resolveObject(path)
    if (obj.status.type === 'dir') throw isDir('is a directory')
    const writable = (flags & O_ACCMODE) !== constants.O_RDONLY
    // (The kernel hands O_TRUNC to open, atomic_o_trunc: what is about to be thrown away is not fetched.)
    const truncate = (flags & constants.O_TRUNC) !== 0
    if ((writable || truncate) && obj.conflict) throw conflict(`${path} is in conflict: resolve it with afs repair`)
    // What this user may do, by the rights their server gave them (the data may be here for another user).
    const reads = (flags & O_ACCMODE) !== constants.O_WRONLY
    if (!obj.conflict) await this.cm.objects.checkAccess(cell, obj, (reads ? RIGHT_READ : 0) | (writable || truncate ? RIGHT_WRITE : 0))
    try {
      if (truncate && !writable) await this.truncateObject(cell, obj, 0)
      if (!writable && this.cm.chunkedFiles.chunked(cell, obj)) return this.openChunked(cell, obj, path)
      if (!writable) this.readingInOrder(cell, path)
      return await this.openHandle(cell, obj, writable, (flags & constants.O_APPEND) !== 0, truncate)
    } catch (err) {
      throw isUnreachable(err) ? this.cm.objects.miss(path, err) : err
    }
  }

  private async openHandle (cell: Cell, obj: FsObject, writable: boolean, append = false, truncate = false): Promise<number> {
    obj.openCount++
    try {
      // Read-only, a cold file is read as it comes in; written, it is fetched whole first (emptied: not at all).
      const filling = writable ? null : await this.cm.files.readable(cell, obj)
      if (writable && truncate) await this.truncateLocally(cell, obj, 0)
      else if (writable) {
        await this.cm.files.ensureData(cell, obj)
        await this.cm.files.keepAncestor(cell, obj)
      }
      const path = this.cm.containers.path(obj.key)
      const { fd, shared } = filling ? { fd: filling.fd, shared: false } : writable ? { fd: await openAsync(path, 'r+'), shared: false } : await this.cm.readFds.acquire(obj.key, obj.cachedVersion, path)
      const fh = this.nextHandle++
      this.handles.set(fh, { cell, obj, fd, writable, shared, append, ...(filling ? { filling } : {}) })
      obj.lastUse = Date.now()
      return fh
    } catch (err) {
      obj.openCount--
      throw err
    }
  }

  /** A file of a directory listed here is opened for reading: its next ones may be fetched ahead. */
  private readingInOrder (cell: Cell, path: string): void {
    const parts = splitPath(path)
    const dir = this.resolveCached(parts.slice(0, -1), true)
    if (dir?.kind === 'object' && dir.cell === cell) this.cm.readAhead.opened(cell, dir.obj, parts[parts.length - 1])
  }

  /** A file too big to cache whole, read-only: its chunks are fetched as it is read. */
  private openChunked (cell: Cell, obj: FsObject, path: string): number {
    obj.openCount++
    obj.lastUse = Date.now()
    const fh = this.nextHandle++
    this.handles.set(fh, { cell, obj, fd: -1, writable: false, shared: false, append: false, chunked: { path } })
    return fh
  }

  async create (path: string, mode: number, caller: Caller): Promise<number> {
    const { cell, dir, name } = await this.ns.parent(path)
    const obj = await this.ns.mutate(cell, dir, async (volume, seq) => {
      const r = await volume.call('create', { dir: dir.status.fid, name, mode: mode & 0o7777, uid: caller.uid, gid: caller.gid, seq })
      const o = this.ns.created(cell, r, name)
      await this.cm.containers.createEmpty(o.key)
      this.cm.space.setCached(o, r.status.dataVersion, 0)
      return o
    }, sent => this.cm.emulator.create(cell, dir, name, { type: 'file', mode, uid: caller.uid, gid: caller.gid }, sent))
    return await this.openHandle(cell, obj, true)
  }

  private handle (fh: number): Handle {
    const h = this.handles.get(fh)
    if (!h) throw badRequest(`no open file ${fh}`)
    return h
  }

  async read (fh: number, buf: Buffer, len: number, pos: number): Promise<number> {
    const h = this.handle(fh)
    if (h.chunked) return await this.cm.chunkedFiles.read(h.cell, h.obj, h.chunked.path, buf, len, pos)
    if (h.filling) await h.filling.until(pos + len)
    return await new Promise((resolve, reject) => fsRead(h.fd, buf, 0, len, pos, (err, n) => err ? reject(err) : resolve(n)))
  }

  write (fh: number, buf: Buffer, len: number, position: number): Promise<number> {
    const h = this.handle(fh)
    const o = h.obj
    // O_APPEND: at the end of the container. The kernel's idea of the end can be another
    // client's append behind (its size is cached a second after a callback break).
    return uploadGate(o).write(() => new Promise((resolve, reject) => {
      const pos = h.append ? o.cachedBytes : position
      fsWrite(h.fd, buf, 0, len, pos, (err, n) => {
        if (err) return reject(err)
        this.markDirty(o, Math.max(o.cachedBytes, pos + n))
        resolve(n)
      })
    }))
  }

  private markDirty (o: FsObject, size: number): void {
    o.dirty = true
    o.writeGen++
    o.localMtimeMs = o.localCtimeMs = Date.now()
    o.localMtimeNs = 0
    this.cm.space.usedBytes += size - o.cachedBytes
    o.cachedBytes = size
  }

  /** close(2) and fsync(2): a written file is stored whole on the server before they return. */
  async flush (fh: number): Promise<void> {
    const h = this.handle(fh)
    if (h.writable && h.obj.dirty) await this.cm.files.store(h.cell, h.obj)
  }

  async fsync (fh: number): Promise<void> {
    const h = this.handle(fh)
    if (h.writable) await fsyncAsync(h.fd)
    await this.flush(fh)
  }

  async release (fh: number): Promise<void> {
    const h = this.handles.get(fh)
    if (!h) return
    this.handles.delete(fh)
    if (h.filling) h.filling.release()
    else if (h.shared) this.cm.readFds.release(h.obj.key, h.fd)
    else if (!h.chunked) await closeAsync(h.fd).catch(() => {})
    h.obj.openCount--
    if (h.chunked) this.cm.chunkedFiles.closed(h.obj)
    if (h.obj.openCount > 0) return
    try {
      if (h.obj.unlinked) await this.cm.objects.forget(h.obj)
      else if (h.obj.dirty) await this.cm.files.store(h.cell, h.obj)
      // A file written past the cache's size (stored at its flush, while still open) may go now.
      else await this.cm.space.trim()
    } finally { this.cm.fileLocks.closed(h.obj.status.fid) }
  }

  private writers (o: FsObject): boolean {
    for (const h of this.handles.values()) if (h.obj === o && h.writable) return true
    return false
  }

  async truncate (path: string, size: number): Promise<void> {
    const { cell, obj } = await this.resolveObject(path)
    await this.truncateObject(cell, obj, size)
  }

  async ftruncate (fh: number, size: number): Promise<void> {
    const h = this.handle(fh)
    await this.truncateObject(h.cell, h.obj, size)
  }

  private async truncateObject (cell: Cell, obj: FsObject, size: number): Promise<void> {
    if (obj.status.type === 'dir') throw isDir('is a directory')
    if (obj.conflict) throw conflict(`${obj.key} is in conflict: resolve it with afs repair`)
    if (obj.dirty || this.writers(obj)) return await this.truncateLocally(cell, obj, size)
    const before = obj.status.dataVersion
    await this.ns.mutate(cell, obj, async (volume, seq) => {
      const r = await volume.call('setattr', { fid: obj.status.fid, size, seq })
      this.cm.objects.accept(cell, r)
      if (hasDataAt(obj, before) && r.status.dataVersion === before + 1) {
        await this.cm.containers.truncate(obj.key, size)
        this.cm.space.setCached(obj, r.status.dataVersion, size)
      }
    }, async sent => {
      // Disconnected, or the server stopped answering (it may still truncate): the container
      // is truncated and the result logged as a store (under the request's number).
      await this.truncateLocally(cell, obj, size)
      await this.cm.files.store(cell, obj, sent)
    })
  }

  private async truncateLocally (cell: Cell, obj: FsObject, size: number): Promise<void> {
    if (size === 0 && !hasData(obj) && !this.cm.cml.references(cell.name, obj.status.fid)) {
      // Emptied: nothing to fetch. A new container: readers of an older one keep theirs, and
      // it holds no server version (none is kept as a conflict's ancestor).
      this.cm.readFds.drop(obj.key)
      await this.cm.containers.remove(obj.key)
      await this.cm.containers.createEmpty(obj.key)
      obj.cachedVersion = null
    } else if (size > 0 || obj.cachedVersion !== null) await this.cm.files.ensureData(cell, obj)
    else await this.cm.containers.createEmpty(obj.key)
    await this.cm.files.keepAncestor(cell, obj)
    await uploadGate(obj).write(async () => {
      await this.cm.containers.truncate(obj.key, size)
      if (obj.cachedVersion === null) obj.cachedVersion = obj.status.dataVersion
      this.markDirty(obj, size)
    })
  }

  // ---- attributes ----

  async chmod (path: string, mode: number): Promise<void> {
    await this.setattr(path, { mode: mode & 0o7777 })
  }

  async chown (path: string, uid: number, gid: number): Promise<void> {
    const change: { uid?: number, gid?: number } = {}
    if (uid !== 0xffffffff && uid !== -1) change.uid = uid
    if (gid !== 0xffffffff && gid !== -1) change.gid = gid
    await this.setattr(path, change)
  }

  /** Sets times to the nanosecond; null leaves a time as it is (UTIME_OMIT). */
  async utimens (path: string, atime: Timespec | null, mtime: Timespec | null): Promise<void> {
    const { obj } = await this.resolveObject(path)
    const change: LocalAttrs = {}
    if (atime) { const t = fromTimespec(atime); change.atimeMs = t.ms; change.atimeNs = t.ns }
    if (mtime) {
      const t = fromTimespec(mtime)
      change.mtimeMs = t.ms
      change.mtimeNs = t.ns
      // A file being written keeps the time set now when it is stored at close (cp -p, tar x).
      if (obj.dirty) { obj.localMtimeMs = t.ms; obj.localMtimeNs = t.ns }
    }
    await this.setattr(path, change)
  }

  private async setattr (path: string, change: LocalAttrs): Promise<void> {
    const { cell, obj } = await this.resolveObject(path)
    if (this.cm.files.hold(cell, obj, change, this.writers(obj))) return
    await this.ns.mutate(cell, obj, async (volume, seq) => {
      this.cm.objects.accept(cell, await volume.call('setattr', { fid: obj.status.fid, ...change, seq }))
    }, sent => this.cm.emulator.setattr(cell, obj, change, sent))
  }

  // ---- extended attributes: kept with the status, so a cached object answers without an RPC ----

  async getxattr (path: string, name: string): Promise<Buffer> {
    const { obj } = await this.resolveObject(path)
    const v = obj.status.xattrs?.[name]
    if (!v) throw noData(`no attribute ${name}`)
    return Buffer.from(v.buffer, v.byteOffset, v.byteLength)
  }

  async listxattr (path: string): Promise<string[]> {
    const { obj } = await this.resolveObject(path)
    return Object.keys(obj.status.xattrs ?? {})
  }

  /** `value` null removes the attribute. */
  async setxattr (path: string, name: string, value: Uint8Array | null, mode: XattrMode): Promise<void> {
    if (name.startsWith('system.')) throw notSupported(`${name}: system attributes (POSIX ACLs) are not kept in /afs`)
    if (UNKEPT_XATTRS.has(name)) throw notSupported(`${name}: file capabilities and SELinux labels are not kept in /afs`)
    const { cell, obj } = await this.resolveObject(path)
    await this.ns.mutate(cell, obj, async (volume, seq) => {
      const reply = value
        ? await volume.call('setxattr', { fid: obj.status.fid, name, value, mode, seq })
        : await volume.call('removexattr', { fid: obj.status.fid, name, seq })
      this.cm.objects.accept(cell, reply)
    }, sent => this.cm.emulator.xattr(cell, obj, name, value, mode, sent))
  }

  // ---- advisory locks (locks.ts) ----

  /**
   * fcntl locks: `cmd` 0 F_GETLK, 1 F_SETLK, 2 F_SETLKW; `type` 0 read, 1 write, 2 unlock;
   * `len` 0 to the end of the file. F_GETLK answers the lock in the way, if any.
   */
  async lock (fh: number, cmd: number, type: number, start: number, len: number, owner: string): Promise<{ type: number, start: number, len: number, pid: number } | undefined> {
    const h = this.handle(fh)
    const range = { family: 'posix' as const, owner, start, end: len === 0 ? Infinity : start + len }
    if (type === 2) { await this.cm.fileLocks.unlock(h.cell, h.obj, range); return undefined }
    const ask = { ...range, kind: type === 1 ? 'write' as const : 'read' as const }
    if (cmd === 0) {
      const b = await this.cm.fileLocks.test(h.cell, h.obj, ask)
      return b ? { type: b.kind === 'write' ? 1 : 0, start: b.start, len: b.end === Infinity ? 0 : b.end - b.start, pid: 0 } : undefined
    }
    await this.cm.fileLocks.lock(h.cell, h.obj, ask, cmd === 2)
    return undefined
  }

  /** flock: `op` 0 shared, 1 exclusive, 2 unlock, plus 4 for LOCK_NB. */
  async flock (fh: number, op: number, owner: string): Promise<void> {
    const h = this.handle(fh)
    const whole = { family: 'flock' as const, owner, start: 0, end: Infinity }
    if ((op & 3) === 2) return await this.cm.fileLocks.unlock(h.cell, h.obj, whole)
    await this.cm.fileLocks.lock(h.cell, h.obj, { ...whole, kind: (op & 3) === 1 ? 'write' : 'read' }, (op & 4) === 0)
  }

  // ---- namespace (namespace.ts) ----

  mkdir (path: string, mode: number, caller: Caller): Promise<void> { return this.ns.mkdir(path, mode, caller) }
  symlink (target: string, path: string, caller: Caller): Promise<void> { return this.ns.symlink(target, path, caller) }
  mknod (path: string, mode: number, rdev: number, caller: Caller): Promise<void> { return this.ns.mknod(path, mode, rdev, caller) }
  mkmount (path: string, volume: string, caller: Caller): Promise<void> { return this.ns.mkmount(path, volume, caller) }
  link (from: string, to: string): Promise<void> { return this.ns.link(from, to) }
  unlink (path: string): Promise<void> { return this.ns.remove(path, false) }
  rmdir (path: string): Promise<void> { return this.ns.remove(path, true) }
  rename (from: string, to: string): Promise<void> { return this.ns.rename(from, to) }
}

function hasDataAt (o: FsObject, version: number): boolean {
  return hasData(o) && o.cachedVersion === version
}

/** A stable 32-bit inode number for a fid (hard links share it: git and tar compare them). */
export function inodeNumber (fid: { volume: number, vnode: number, unique: number }): number {
  const n = (Math.imul(fid.volume, 0x9e3779b1) + fid.vnode + (fid.unique === 0 ? 0x40000000 : 0)) >>> 0
  return n < 2 ? n + 2 : n
}

/** A conflicted object shows as a dangling symlink naming its conflict, as in Coda. */
export function conflictTarget (o: FsObject): string {
  return `/afs-conflict/${o.conflict!.kind.replace('/', '-')}/${o.conflict!.id}`
}

function attrOf (o: FsObject): Attr {
  const s = o.status
  const ino = inodeNumber(s.fid)
  if (o.conflict) {
    const size = Buffer.byteLength(conflictTarget(o))
    return { ino, mode: 0o120444, uid: s.uid, gid: s.gid, size, nlink: 1, rdev: 0, atimeMs: s.atimeMs, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs }
  }
  const size = o.dirty ? o.cachedBytes : s.size
  const local = o.dirty && o.localMtimeMs
  const mtimeMs = local ? o.localMtimeMs : s.mtimeMs
  const mtimeNs = local ? o.localMtimeNs : s.mtimeNs
  // Written here: changed when last written (the store at close gives the server that time too).
  const ctimeMs = o.dirty ? Math.max(s.ctimeMs, o.localCtimeMs || 0) : s.ctimeMs
  return { ino, mode: s.mode, uid: s.uid, gid: s.gid, size, nlink: s.nlink, rdev: s.rdev ?? 0, atimeMs: s.atimeMs, mtimeMs, ctimeMs, atimeNs: s.atimeNs, mtimeNs }
}
