// Emulation (Coda's disconnected mode): mutations made while a volume's servers are
// unreachable, applied to the cache and appended to the client modification log. Each
// operation checks what the server would, changes the cached objects and listings the
// way the server would, and returns only once its record is on disk.
import { open as openFile } from 'node:fs/promises'
import {
  exists, isDir, notDir, notEmpty, notFound, noData, noSpace, notPermitted, invalid, sameFid, takesXattr, tooManyLinks, xattrBytes,
  MAX_LINKS, MAX_XATTR_TOTAL_BYTES, TYPE_BITS,
  type CmlRecordBody, type SpecialType, type VnodeStatus, type XattrMode,
} from '@afs-ts/common'
import type { CacheSpace } from './cache-space.ts'
import type { ContainerStore } from './container-file.ts'
import type { FsObjectTable } from './fs-object-table.ts'
import type { ObjectCache } from './object-cache.ts'
import type { Cell } from './cell.ts'
import { isLocalFid, type ClientModifyLog } from './cml.ts'
import { localMtime, withAttrs, withMtime, withXattr, type Dirent, type FsObject, type LocalAttrs } from './fs-object.ts'

export interface NewLocal { type: 'file' | 'dir' | 'symlink' | SpecialType, mode: number, uid: number, gid: number, target?: string, rdev?: number }

/** What emulation needs of the cache manager. */
export interface EmulatorDeps {
  readonly objects: Pick<ObjectCache, 'entries' | 'object' | 'forget'>
  readonly table: FsObjectTable
  readonly cml: Pick<ClientModifyLog, 'append' | 'newLocalFid'>
  readonly containers: Pick<ContainerStore, 'createEmpty' | 'path'>
  readonly space: Pick<CacheSpace, 'setCached'>
}

export class Emulator {
  constructor (private readonly d: EmulatorDeps) {}

  /** `sent` (each operation's): the number the same change went to a server under that stopped answering. */
  async create (cell: Cell, dir: FsObject, name: string, n: NewLocal, sent?: number): Promise<FsObject> {
    const entries = await this.d.objects.entries(cell, dir)
    if (entries.has(name)) throw exists(`${name} exists`)
    const fid = this.d.cml.newLocalFid(dir.status.fid.volume)
    const now = Date.now()
    const status: VnodeStatus = {
      fid, type: n.type, mode: (n.mode & 0o7777) | TYPE_BITS[n.type], uid: n.uid, gid: n.gid, nlink: n.type === 'dir' ? 2 : 1,
      size: n.type === 'dir' ? 4096 : Buffer.byteLength(n.target ?? ''), atimeMs: now, mtimeMs: now, ctimeMs: now, dataVersion: 0,
    }
    if (n.target !== undefined) status.target = n.target
    if (n.rdev) status.rdev = n.rdev
    const obj = this.d.table.upsert(cell.name, status)
    if (n.type === 'dir') { obj.entries = new Map(); obj.listedVersion = 0 }
    if (n.type === 'file') {
      await this.d.containers.createEmpty(obj.key)
      this.d.space.setCached(obj, 0, 0)
    }
    const d = dir.status.fid
    const owner = { uid: n.uid, gid: n.gid }
    const body: CmlRecordBody = n.type === 'symlink'
      ? { op: 'symlink', dir: d, name, fid, target: n.target ?? '', ...owner }
      : n.type === 'file' || n.type === 'dir'
        ? { op: n.type === 'dir' ? 'mkdir' : 'create', dir: d, name, fid, mode: n.mode & 0o7777, ...owner }
        : { op: 'mknod', dir: d, name, fid, type: n.type, mode: n.mode & 0o7777, rdev: n.rdev ?? 0, ...owner }
    await this.d.cml.append(cell.name, body, { sent })
    this.setEntry(dir, name, { fid, type: n.type })
    return obj
  }

  /** Logs the whole current contents of a written file (close or fsync while disconnected). */
  async store (cell: Cell, o: FsObject, sent?: number): Promise<void> {
    const fh = await openFile(this.d.containers.path(o.key), 'r+')
    let size: number
    try {
      await fh.sync() // the data a log record points to must survive a reboot too
      size = (await fh.stat()).size
    } finally { await fh.close() }
    const gen = o.writeGen
    const mtime = localMtime(o)
    await this.d.cml.append(cell.name, { op: 'store', fid: o.status.fid, base: this.dataBase(o), size, ...mtime }, { sent })
    o.loggedGen = gen
    o.status = { ...withMtime(o.status, mtime.mtimeMs, mtime.mtimeNs), size }
    void this.d.table.save(o)
  }

  async setattr (cell: Cell, o: FsObject, attrs: LocalAttrs, sent?: number): Promise<void> {
    if (o.conflict) throw invalid('in conflict')
    await this.d.cml.append(cell.name, { op: 'setattr', fid: o.status.fid, base: this.base(o), attrs }, { sent })
    o.status = { ...withAttrs(o.status, attrs), ctimeMs: Date.now() }
    if (attrs.mtimeMs !== undefined) { o.localMtimeMs = attrs.mtimeMs; o.localMtimeNs = attrs.mtimeNs ?? 0 }
    void this.d.table.save(o)
  }

  /** Sets (`value`) or removes (null) an extended attribute, checked as the server would. */
  async xattr (cell: Cell, o: FsObject, name: string, value: Uint8Array | null, mode: XattrMode, sent?: number): Promise<void> {
    if (value && !takesXattr(o.status.type, name)) throw notPermitted(`${name}: user attributes are kept on files and directories only`)
    const had = o.status.xattrs !== undefined && Object.hasOwn(o.status.xattrs, name)
    if (mode === 'create' && had) throw exists(`attribute ${name} exists`)
    if ((mode === 'replace' || !value) && !had) throw noData(`no attribute ${name}`)
    const status = withXattr(o.status, name, value)
    if (xattrBytes(status.xattrs ?? {}) > MAX_XATTR_TOTAL_BYTES) throw noSpace(`the attributes of an object take at most ${MAX_XATTR_TOTAL_BYTES} bytes`)
    await this.d.cml.append(cell.name, { op: 'xattr', fid: o.status.fid, base: this.base(o), attr: name, value }, { sent })
    o.status = { ...status, ctimeMs: Date.now() }
    void this.d.table.save(o)
  }

  async remove (cell: Cell, dir: FsObject, name: string, directory: boolean, sent?: number): Promise<void> {
    const d = (await this.d.objects.entries(cell, dir)).get(name)
    if (!d) throw notFound(`${name} does not exist`)
    const o = await this.d.objects.object(cell, d.fid)
    if (directory && o.status.type !== 'dir') throw notDir(`${name} is not a directory`)
    if (!directory && o.status.type === 'dir') throw isDir(`${name} is a directory`)
    if (directory && (await this.d.objects.entries(cell, o)).size > 0) throw notEmpty(`${name} is not empty`)
    const last = o.status.type === 'dir' || o.status.nlink <= 1
    await this.d.cml.append(cell.name, { op: directory ? 'rmdir' : 'remove', dir: dir.status.fid, name, fid: o.status.fid, base: this.base(o) }, { lastName: last, sent })
    this.setEntry(dir, name, null)
    if (last) await this.d.objects.forget(o)
    else { o.status = { ...o.status, nlink: o.status.nlink - 1 }; void this.d.table.save(o) }
  }

  async rename (cell: Cell, from: FsObject, fromName: string, to: FsObject, toName: string, sent?: { seq: number, removeSeq: number }): Promise<void> {
    const d = (await this.d.objects.entries(cell, from)).get(fromName)
    if (!d) throw notFound(`${fromName} does not exist`)
    const target = (await this.d.objects.entries(cell, to)).get(toName)
    if (target && sameFid(target.fid, d.fid)) return
    if (target) await this.remove(cell, to, toName, target.type === 'dir', sent?.removeSeq)
    const o = await this.d.objects.object(cell, d.fid)
    await this.d.cml.append(cell.name, { op: 'rename', fromDir: from.status.fid, fromName, toDir: to.status.fid, toName, fid: o.status.fid, base: this.base(o) }, { sent: sent?.seq })
    this.setEntry(from, fromName, null)
    this.setEntry(to, toName, d)
  }

  async link (cell: Cell, o: FsObject, dir: FsObject, name: string, sent?: number): Promise<void> {
    if ((await this.d.objects.entries(cell, dir)).has(name)) throw exists(`${name} exists`)
    if (o.status.nlink >= MAX_LINKS) throw tooManyLinks(`it has ${o.status.nlink} names already, the most a file may have`)
    await this.d.cml.append(cell.name, { op: 'link', dir: dir.status.fid, name, fid: o.status.fid }, { sent })
    o.status = { ...o.status, nlink: o.status.nlink + 1 }
    void this.d.table.save(o)
    this.setEntry(dir, name, { fid: o.status.fid, type: o.status.type })
  }

  /** The server version a change to `o` is based on; null for objects born in the log. */
  private base (o: FsObject): number | null {
    if (isLocalFid(o.status.fid)) return null
    o.baseVersion ??= o.status.dataVersion
    return o.baseVersion
  }

  /**
   * The version a store's bytes derive from: the one the container held before the local
   * writes. It can be older than the status (a newer status arrived while the data could
   * not be fetched), and then the store conflicts instead of passing for the newer version.
   */
  private dataBase (o: FsObject): number | null {
    const base = this.base(o)
    return base !== null && o.cachedVersion !== null ? Math.min(base, o.cachedVersion) : base
  }

  private setEntry (dir: FsObject, name: string, d: Dirent | null): void {
    if (!dir.entries) dir.entries = new Map()
    if (d) dir.entries.set(name, d)
    else dir.entries.delete(name)
    const now = Date.now()
    dir.status = { ...withMtime(dir.status, now), ctimeMs: now }
    this.d.table.saveEntry(dir, name, d)
    void this.d.table.save(dir)
  }
}
