// A cached object (Coda's fsobj): the server status we last saw, the callback that
// keeps it trustworthy, and the state of its container file.
import { sameFid, type ConflictKind, type Fid, type ObjectType, type VnodeStatus } from '@afs-ts/common'

export interface Dirent { fid: Fid, type: ObjectType }

export interface FsObject {
  key: string
  cell: string
  status: VnodeStatus
  /** Callback promise expiry (ms epoch) and the server-link epoch it was granted in; 0 = none. */
  cbExpiresAt: number
  cbEpoch: string
  /** dataVersion of the container's contents; null when there is no container. */
  cachedVersion: number | null
  /** Bytes in the container (for cache accounting). */
  cachedBytes: number
  /** The container holds changes not yet stored on the server. */
  dirty: boolean
  /** Bumped by every local write; a store only cleans the generation it uploaded. */
  writeGen: number
  /** The write generation last logged as a store in the CML. */
  loggedGen: number
  /** Local mtime of the dirty container (ms epoch, and ns past it when utimensat set it). */
  localMtimeMs: number
  localMtimeNs: number
  /** When the container was last written (ms epoch): its ctime until the store. */
  localCtimeMs: number
  /**
   * Attributes set while the file was open for writing and not yet stored (tar x's
   * fchown, fchmod and futimens before close): they go with its store.
   */
  heldAttrs: LocalAttrs | null
  openCount: number
  lastUse: number
  /**
   * Directory entries, when this is a directory whose listing is cached: current when
   * listedVersion is its dataVersion, else kept for use while the server is unreachable.
   */
  entries: Map<string, Dirent> | null
  listedVersion: number
  /** The server data version the local, not yet reintegrated changes are based on. */
  baseVersion: number | null
  /** Its last name was removed while it was open: it is never stored again. */
  unlinked: boolean
  /** Set when reintegration found this object changed on both sides. */
  conflict: ConflictMark | null
  /** Where it was last seen (Coda's parent fid and name): names a conflict after its listing forgot it. */
  place: Place | null
  /**
   * Each local user's rights on it, as its server last said (uid → rlidwka bits): good
   * while its callback holds, and what is checked while disconnected, so that one user's
   * access never serves another's.
   */
  access: Record<number, number>
}

export interface Place { dir: Fid, name: string }

/** How a conflicted object is shown: a dangling symlink, as Coda does, until `afs repair`. */
export interface ConflictMark { kind: ConflictKind, id: string }

/** Fields that survive a restart of the cache manager (all callbacks are void after one). */
export type PersistedObject = Pick<FsObject, 'key' | 'cell' | 'status' | 'cachedVersion' | 'cachedBytes' | 'dirty' | 'lastUse' | 'listedVersion' | 'baseVersion' | 'conflict' | 'place'> & Partial<Pick<FsObject, 'access'>> & {
  /** Whether a listing (current or not) is kept; absent in caches written before it was. */
  listed?: boolean
}

export function newObject (key: string, cell: string, status: VnodeStatus): FsObject {
  return {
    key, cell, status, cbExpiresAt: 0, cbEpoch: '', cachedVersion: null, cachedBytes: 0, dirty: false, writeGen: 0, loggedGen: 0,
    localMtimeMs: 0, localMtimeNs: 0, localCtimeMs: 0, heldAttrs: null, openCount: 0, lastUse: Date.now(), entries: null, listedVersion: -1, baseVersion: null, unlinked: false, conflict: null, place: null, access: {},
  }
}

/** Records where `o` was seen: `name` in directory `dir`. */
export function seenAt (o: FsObject, dir: Fid, name: string): void {
  if (o.place?.name === name && sameFid(o.place.dir, dir)) return
  o.place = { dir, name }
}

export function isDirectory (o: FsObject): boolean { return o.status.type === 'dir' }
export function hasData (o: FsObject): boolean { return o.cachedVersion !== null && (o.dirty || o.cachedVersion === o.status.dataVersion) }
/** A container may be thrown away: not open, not holding unsaved changes. */
export function isEvictable (o: FsObject): boolean { return o.cachedVersion !== null && o.openCount === 0 && !o.dirty && o.conflict === null }
export function isListed (o: FsObject): boolean { return o.entries !== null && o.listedVersion === o.status.dataVersion }
/** Forgets a directory's cached listing: the next lookup lists it from the server. */
export function dropListing (o: FsObject): void { o.entries = null; o.listedVersion = -1 }
/** No longer trusts a listing but keeps it for disconnected use: a connected lookup lists again. */
export function demoteListing (o: FsObject): void { o.listedVersion = -1 }

export function typeOf (s: VnodeStatus): ObjectType { return s.type }

/** Attributes a setattr changes (undefined: unchanged). */
export interface LocalAttrs { mode?: number, uid?: number, gid?: number, atimeMs?: number, mtimeMs?: number, atimeNs?: number, mtimeNs?: number }

/** Attributes set by `older`, then by `newer`: a time set again loses the older nanoseconds. */
export function mergeAttrs<A extends { atimeMs?: number, mtimeMs?: number, atimeNs?: number, mtimeNs?: number }> (older: A, newer: A): A {
  const out = { ...older, ...newer }
  if (newer.atimeMs !== undefined && newer.atimeNs === undefined) delete out.atimeNs
  if (newer.mtimeMs !== undefined && newer.mtimeNs === undefined) delete out.mtimeNs
  return out
}

/** `s` with `a`'s attributes set (permission bits only for the mode). */
export function withAttrs (s: VnodeStatus, a: LocalAttrs): VnodeStatus {
  const out = { ...s }
  if (a.mode !== undefined) out.mode = (s.mode & ~0o7777) | (a.mode & 0o7777)
  if (a.uid !== undefined) out.uid = a.uid
  if (a.gid !== undefined) out.gid = a.gid
  if (a.atimeMs !== undefined) { out.atimeMs = a.atimeMs; out.atimeNs = a.atimeNs ?? 0 }
  if (a.mtimeMs !== undefined) return withMtime(out, a.mtimeMs, a.mtimeNs)
  return out
}

/** `s` with extended attribute `name` set to `value` (removed when null). */
export function withXattr (s: VnodeStatus, name: string, value: Uint8Array | null): VnodeStatus {
  const xattrs = { ...s.xattrs }
  if (value) xattrs[name] = value
  else delete xattrs[name]
  const out: VnodeStatus = { ...s, xattrs }
  if (Object.keys(xattrs).length === 0) delete out.xattrs
  return out
}

/** The mtime a store of `o` sets: the local one (a write's, or a utimensat's since), else now. */
export function localMtime (o: FsObject): { mtimeMs: number, mtimeNs?: number } {
  if (!o.localMtimeMs) return { mtimeMs: Date.now() }
  return o.localMtimeNs ? { mtimeMs: o.localMtimeMs, mtimeNs: o.localMtimeNs } : { mtimeMs: o.localMtimeMs }
}

/** `s` modified at `ms` (and `ns` past it). */
export function withMtime (s: VnodeStatus, ms: number, ns = 0): VnodeStatus {
  return { ...s, mtimeMs: ms, mtimeNs: ns }
}
