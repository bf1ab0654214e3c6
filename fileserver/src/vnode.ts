// A vnode: one file, directory, symlink or mount point of a volume, as stored in LMDB.
// Its contents (for files) live in a blob file named by `blob`, written before the
// record that points to it commits.
import type { Fid, ObjectType, VnodeStatus } from '@afs-ts/common'

/** A vnode as stored: a status without its fid (the key holds volume and vnode), plus bookkeeping. */
export interface VnodeRecord extends Omit<VnodeStatus, 'fid'> {
  vnode: number
  unique: number
  /** The directory this directory lives in (directories only; the root points to itself). */
  parent: number
  /** File name of the contents under the volume's blob folder; files only. */
  blob?: string
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
}

export const S_IFMT = 0o170000
export const S_IFREG = 0o100000
export const S_IFDIR = 0o040000
export const S_IFLNK = 0o120000

export function typeBits (type: ObjectType): number {
  switch (type) {
    case 'file': return S_IFREG
    case 'dir': return S_IFDIR
    case 'symlink': return S_IFLNK
    case 'mount': return S_IFDIR
    default: { const never: never = type; return never }
  }
}

export function toStatus (volume: number, v: VnodeRecord): VnodeStatus {
  const fid: Fid = { volume, vnode: v.vnode, unique: v.unique }
  const s: VnodeStatus = {
    fid, type: v.type, mode: (v.mode & 0o7777) | typeBits(v.type), uid: v.uid, gid: v.gid, nlink: v.nlink,
    size: v.size, atimeMs: v.atimeMs, mtimeMs: v.mtimeMs, ctimeMs: v.ctimeMs, dataVersion: v.dataVersion,
  }
  if (v.target !== undefined) s.target = v.target
  return s
}
