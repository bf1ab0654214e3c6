// Namespace operations of the file-system API (create, mkdir, symlink, link, remove,
// rename, mount points) and the one shape every mutation has: to the server while its
// volume is online, emulated and logged when it is not. Names only; contents are vfs.ts's.
import {
  isUnreachable, conflict, crossVolume, invalid, isDevice, nameTooLong, notDir, notPermitted, permission, volumeOffline, MAX_NAME_BYTES, S_IFMT, SPECIAL_TYPES, TYPE_BITS,
  type CreateReply, type Fid, type SpecialType, type VnodeStatus,
} from '@afs-ts/common'
import type { Emulator } from './emulator.ts'
import type { ObjectCache } from './object-cache.ts'
import type { Cell } from './cell.ts'
import type { FsObject } from './fs-object.ts'
import { isLocalFid, type ClientModifyLog } from './cml.ts'
import { objectKey, type FsObjectTable } from './fs-object-table.ts'
import type { VolumeCalls } from './volume.ts'

type Resolve = (path: string, followMount?: boolean) => Promise<{ cell: Cell, obj: FsObject }>

/** Who asks: the process behind a FUSE request. */
export interface Caller { uid: number, gid: number, pid: number }

/** What namespace changes need of the cache manager. */
export interface NamespaceDeps {
  readonly objects: Pick<ObjectCache, 'accept' | 'applyEntries' | 'entries' | 'forget' | 'online' | 'update'>
  readonly table: FsObjectTable
  readonly cml: Pick<ClientModifyLog, 'reserve'>
  readonly emulator: Pick<Emulator, 'create' | 'link' | 'remove' | 'rename'>
}

export class Namespace {
  constructor (private readonly d: NamespaceDeps, private readonly resolveObject: Resolve) {}

  async parent (path: string): Promise<{ cell: Cell, dir: FsObject, name: string }> {
    const parts = splitPath(path)
    if (parts.length < 2) throw permission('the mount root holds cells only')
    const { cell, obj } = await this.resolveObject('/' + parts.slice(0, -1).join('/'))
    if (obj.status.type !== 'dir') throw notDir('not a directory')
    return { cell, dir: obj, name: parts[parts.length - 1] }
  }

  /**
   * Runs a mutation against the server while its volume is online; when it is not (or
   * the server stops answering during the call), runs the emulated version instead.
   * The request carries the number its log record would have (`seq`): a server that
   * stopped answering may still apply it, and then knows the logged change by that
   * number (`sent`) when it is replayed.
   */
  async mutate<T> (cell: Cell, on: FsObject, connected: (volume: VolumeCalls, seq: number) => Promise<T>, emulated: (sent?: number) => Promise<T>): Promise<T> {
    if (on.conflict) throw conflict(`${on.key} is in conflict: resolve it with afs repair`)
    const volume = on.status.fid.volume
    if (!this.d.objects.online(cell, volume) || isLocalFid(on.status.fid)) return await emulated()
    const seq = await this.d.cml.reserve()
    try { return await connected(cell.route(volume), seq) } catch (err) { if (!isUnreachable(err)) throw err }
    return await emulated(seq)
  }

  created (cell: Cell, r: CreateReply, name: string): FsObject {
    const obj = this.d.objects.accept(cell, r)
    this.d.objects.applyEntries(cell, r.dir, [[name, { fid: r.status.fid, type: r.status.type }]])
    return obj
  }

  async mkdir (path: string, mode: number, caller: Caller): Promise<void> {
    const { cell, dir, name } = await this.parent(path)
    await this.mutate(cell, dir, async (volume, seq) => {
      this.created(cell, await volume.call('mkdir', { dir: dir.status.fid, name, mode: mode & 0o7777, uid: caller.uid, gid: caller.gid, seq }), name)
    }, async sent => { await this.d.emulator.create(cell, dir, name, { type: 'dir', mode, uid: caller.uid, gid: caller.gid }, sent) })
  }

  async symlink (target: string, path: string, caller: Caller): Promise<void> {
    const { cell, dir, name } = await this.parent(path)
    await this.mutate(cell, dir, async (volume, seq) => {
      this.created(cell, await volume.call('symlink', { dir: dir.status.fid, name, target, uid: caller.uid, gid: caller.gid, seq }), name)
    }, async sent => { await this.d.emulator.create(cell, dir, name, { type: 'symlink', mode: 0o777, uid: caller.uid, gid: caller.gid, target }, sent) })
  }

  /** A FIFO, socket or device node (`mode` carries the type bits; device nodes are root's to make). */
  async mknod (path: string, mode: number, rdev: number, caller: Caller): Promise<void> {
    const type = specialType(mode)
    if (isDevice(type) && caller.uid !== 0) throw notPermitted('only root makes device nodes')
    const { cell, dir, name } = await this.parent(path)
    const owner = { mode: mode & 0o7777, uid: caller.uid, gid: caller.gid }
    const device = isDevice(type) ? rdev : 0
    await this.mutate(cell, dir, async (volume, seq) => {
      this.created(cell, await volume.call('mknod', { dir: dir.status.fid, name, type, rdev: device, ...owner, seq }), name)
    }, async sent => { await this.d.emulator.create(cell, dir, name, { type, rdev: device, ...owner }, sent) })
  }

  /** Mount points are made on the server only: not offline, not ahead of changes still in the log. */
  async mkmount (path: string, volume: string, caller: Caller): Promise<void> {
    const { cell, dir, name } = await this.parent(path)
    if (!this.d.objects.online(cell, dir.status.fid.volume) || isLocalFid(dir.status.fid)) {
      throw volumeOffline(`${path}: a mount point is made on the server directly: not while it is unreachable, in write-back mode or behind local changes still to replay (afs reconnect, afs sync --wait)`)
    }
    const r = await cell.route(dir.status.fid.volume).call('mkmount', { dir: dir.status.fid, name, volume, uid: caller.uid, gid: caller.gid })
    this.created(cell, r, name)
  }

  async link (from: string, to: string): Promise<void> {
    const src = await this.resolveObject(from, false)
    const { cell, dir, name } = await this.parent(to)
    if (src.cell !== cell) throw invalid('hard links stay within a cell')
    if (src.obj.conflict) throw conflict(`${from} is in conflict: resolve it with afs repair`)
    await this.mutate(cell, dir, async (volume, seq) => {
      this.created(cell, await volume.call('link', { dir: dir.status.fid, name, fid: src.obj.status.fid, seq }), name)
    }, sent => this.d.emulator.link(cell, src.obj, dir, name, sent))
  }

  async remove (path: string, directory: boolean): Promise<void> {
    const { cell, dir, name } = await this.parent(path)
    await this.refuseConflicted(cell, dir, name, path)
    await this.mutate(cell, dir, async (volume, seq) => {
      const gone = (await this.d.objects.entries(cell, dir)).get(name)
      const r = await volume.call(directory ? 'rmdir' : 'remove', { dir: dir.status.fid, name, seq })
      this.d.objects.applyEntries(cell, r.dir, [[name, null]])
      if (gone) await this.settle(cell, gone.fid, r.status)
    }, sent => this.d.emulator.remove(cell, dir, name, directory, sent))
  }

  /**
   * A conflicted object's name is not removed, renamed or replaced: on the server that
   * name holds the server's version, which would go without the user ever choosing.
   */
  private async refuseConflicted (cell: Cell, dir: FsObject, name: string, path: string): Promise<void> {
    const d = (await this.d.objects.entries(cell, dir).catch(() => null))?.get(name)
    if (d && this.d.table.get(objectKey(cell.name, d.fid))?.conflict) throw conflict(`${path} is in conflict: resolve it with afs repair`)
  }

  /** After a remove or a replacing rename: refresh or forget the object that lost a name. */
  private async settle (cell: Cell, fid: Fid, status: VnodeStatus | null): Promise<void> {
    const o = this.d.table.get(objectKey(cell.name, fid))
    if (!o) return
    if (status) this.d.objects.update(cell, status)
    else await this.d.objects.forget(o)
  }

  async rename (from: string, to: string): Promise<void> {
    const a = await this.parent(from)
    const b = await this.parent(to)
    if (a.cell !== b.cell) throw invalid('rename across cells')
    if (a.dir.status.fid.volume !== b.dir.status.fid.volume) throw crossVolume('rename across volumes')
    await this.refuseConflicted(a.cell, a.dir, a.name, from)
    await this.refuseConflicted(b.cell, b.dir, b.name, to)
    // The name it replaces is logged as a removal of its own, before the rename.
    const removeSeq = await this.d.cml.reserve()
    await this.mutate(a.cell, a.dir, async (volume, seq) => {
      const r = await volume.call('rename', { fromDir: a.dir.status.fid, fromName: a.name, toDir: b.dir.status.fid, toName: b.name, seq, removeSeq })
      const entry = { fid: r.moved.fid, type: r.moved.type }
      if (r.fromDir.fid.vnode === r.toDir.fid.vnode) {
        this.d.objects.applyEntries(a.cell, r.fromDir, [[a.name, null], [b.name, entry]])
      } else {
        this.d.objects.applyEntries(a.cell, r.fromDir, [[a.name, null]])
        this.d.objects.applyEntries(b.cell, r.toDir, [[b.name, entry]])
      }
      this.d.objects.update(a.cell, r.moved)
      if (r.replaced) await this.settle(a.cell, r.replaced.fid, r.replaced.status)
    }, sent => this.d.emulator.rename(a.cell, a.dir, a.name, b.dir, b.name, sent === undefined ? undefined : { seq: sent, removeSeq }))
  }
}

function specialType (mode: number): SpecialType {
  const t = SPECIAL_TYPES.find(x => TYPE_BITS[x] === (mode & S_IFMT))
  if (!t) throw invalid(`mknod makes FIFOs, sockets and device nodes, not mode ${(mode & S_IFMT).toString(8)}`)
  return t
}

/** A mount-relative path's components; a component over MAX_NAME_BYTES is ENAMETOOLONG, as POSIX says. */
export function splitPath (path: string): string[] {
  const parts = path.split('/').filter(p => p !== '' && p !== '.')
  for (const p of parts) {
    if (p.length > MAX_NAME_BYTES / 4 && Buffer.byteLength(p) > MAX_NAME_BYTES) throw nameTooLong(`${p.slice(0, 32)}…: a name is at most ${MAX_NAME_BYTES} bytes`)
  }
  return parts
}
