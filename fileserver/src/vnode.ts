// A vnode: one file, directory, symlink or mount point of a volume, as stored in LMDB.
// Its contents (for files) live in a blob file named by `blob`, written before the
// record that points to it commits.
import { isDevice, TYPE_BITS, type Fid, type ObjectType, type SpecialType, type VnodeStatus } from '@afs-ts/common'

/** A vnode as stored: a status without its fid (the key holds volume and vnode), plus bookkeeping. */
export interface VnodeRecord extends Omit<VnodeStatus, 'fid'> {
  vnode: number
  unique: number
  /** The directory this directory lives in (directories only; the root points to itself). */
  parent: number
  /** File name of the contents under the volume's blob folder; files only. */
  blob?: string
  /** A replicated volume's object its members changed apart (a server/server conflict), until repaired. */
  conflict?: boolean
}

/** A directory entry: name → [vnode, unique, type]. */
export type DirentValue = [number, number, ObjectType]

export interface VolumeRecord {
  id: number
  name: string
  quota: number
  usage: number
  files: number
  nextVnode: number
  /** A replicated volume's member: this server's id, its slot among the sites (its stripe of vnode numbers), and how many updates it applied. */
  replica?: { self: string, slot: number, vv: Record<string, number> }
  /** Moved to this server (`afs vos move`): the copy stays on disk, every request for it is refused. */
  movedTo?: string
  /** Its move to this server began its switch here: until the location database says where it is, it is not served. */
  movingTo?: string
}

/** What a create makes; `owner`: the cell user who made it (their token's). */
export interface NewObject { type: ObjectType, mode: number, uid: number, gid: number, target?: string, rdev?: number, owner?: number }

/** A create-like request or log record (they name their fields alike). */
export type Making =
  | { op: 'create' | 'mkdir', mode: number, uid: number, gid: number }
  | { op: 'symlink', target: string, uid: number, gid: number }
  | { op: 'mknod', type: SpecialType, mode: number, rdev: number, uid: number, gid: number }
  | { op: 'mkmount', volume: string, uid: number, gid: number }

export function newObject (m: Making, by?: number): NewObject {
  const owner = { uid: m.uid, gid: m.gid, ...(by !== undefined ? { owner: by } : {}) }
  switch (m.op) {
    case 'create': return { type: 'file', mode: m.mode, ...owner }
    case 'mkdir': return { type: 'dir', mode: m.mode, ...owner }
    case 'symlink': return { type: 'symlink', mode: 0o777, target: m.target, ...owner }
    case 'mknod': return { type: m.type, mode: m.mode, rdev: isDevice(m.type) ? m.rdev : undefined, ...owner }
    case 'mkmount': return { type: 'mount', mode: 0o755, target: m.volume, ...owner }
    default: { const never: never = m; return never }
  }
}

export function toStatus (volume: number, v: VnodeRecord): VnodeStatus {
  const fid: Fid = { volume, vnode: v.vnode, unique: v.unique }
  const s: VnodeStatus = {
    fid, type: v.type, mode: (v.mode & 0o7777) | TYPE_BITS[v.type], uid: v.uid, gid: v.gid, nlink: v.nlink,
    size: v.size, atimeMs: v.atimeMs, mtimeMs: v.mtimeMs, ctimeMs: v.ctimeMs, dataVersion: v.dataVersion,
  }
  if (v.target !== undefined) s.target = v.target
  if (v.rdev !== undefined) s.rdev = v.rdev
  if (v.atimeNs) s.atimeNs = v.atimeNs
  if (v.mtimeNs) s.mtimeNs = v.mtimeNs
  if (v.xattrs) s.xattrs = v.xattrs
  if (v.vv) { s.vv = v.vv; s.sid = v.sid; if (v.history) s.history = v.history }
  if (v.conflict) s.conflict = true
  if (v.acl) s.acl = v.acl
  if (v.owner !== undefined) s.owner = v.owner
  return s
}
