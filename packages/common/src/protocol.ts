// The afs-ts wire protocol in one place: every request, its argument schema (checked on
// arrival: the peer is hostile), and its reply type. Version 1 is sent in `hello`.
import { z } from 'zod'
import type { Fid } from './fid.ts'
import { ALL_RIGHTS, MAX_ACL_ENTRIES, type Acl } from './acl.ts'
import type { WireError } from './errors.ts'

export const PROTOCOL_VERSION = 1
export const MAX_NAME_BYTES = 255
export const MAX_PATH_BYTES = 4096
/** Names one file may have (ext4's limit): one more link is EMLINK. */
export const MAX_LINKS = 65_000
/** Extended attributes: a name, a value, and all of an object's names and values together (as ext4 with large xattrs). */
export const MAX_XATTR_NAME_BYTES = 255
export const MAX_XATTR_VALUE_BYTES = 65_536
export const MAX_XATTR_TOTAL_BYTES = 65_536
/** A directory listing comes in pages of at most this many entries. */
export const DIR_PAGE_ENTRIES = 20_000
/** Files of at most this many bytes may come with a listing's statuses (fetchDir `data`)… */
export const PREFETCH_FILE_MAX_BYTES = 16 * 1024
/** …up to this many bytes of them a page. */
export const PREFETCH_PAGE_BYTES = 2 * 1024 * 1024
/** The longest range one ranged fetchData may ask for. */
export const FETCH_RANGE_MAX_BYTES = 64 * 1024 * 1024
/** Statuses asked for in one fetchStatuses, at most. */
export const BULK_STATUS_MAX = 5_000

const u32 = z.number().int().min(0).max(2 ** 32 - 1)
const u53 = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
const timeMs = z.number().int().min(-(2 ** 52)).max(2 ** 52)
/** Nanoseconds past a timeMs (utimensat's precision). */
const subMs = z.number().int().min(0).max(999_999)
export const fidSchema = z.object({ volume: u32, vnode: u32, unique: u32 })
/** The message of a name too long: a request refused for it is ENAMETOOLONG, not EINVAL. */
export const NAME_TOO_LONG_MESSAGE = `a name is at most ${MAX_NAME_BYTES} bytes`
export const nameSchema = z.string().min(1)
  .refine(n => n !== '.' && n !== '..' && !n.includes('/') && !n.includes('\0'), { message: 'a name is 1-255 bytes without / or NUL, and not . or ..' })
  .refine(n => Buffer.byteLength(n) <= MAX_NAME_BYTES, { message: NAME_TOO_LONG_MESSAGE })
const xattrName = z.string().min(1).refine(n => !n.includes('\0') && Buffer.byteLength(n) <= MAX_XATTR_NAME_BYTES, { message: 'an attribute name is 1-255 bytes without NUL' })
const xattrValue = z.custom<Uint8Array>(v => v instanceof Uint8Array, { message: 'an attribute value is bytes' }).refine(v => v.byteLength <= MAX_XATTR_VALUE_BYTES, { message: 'an attribute value is at most 64 KiB' })
/** The bytes an object's extended attributes take (names and values). */
export function xattrBytes (x: Record<string, Uint8Array>): number {
  let n = 0
  for (const [k, v] of Object.entries(x)) n += Buffer.byteLength(k) + v.byteLength
  return n
}

const lockArgs = { owner: z.string().min(1).max(64), family: z.enum(['posix', 'flock']), start: u53, end: u53.nullable() }

/** A lock as the server describes it: the one granted, or the one in the way. */
export interface LockReply { kind: 'read' | 'write', start: number, end: number | null, generation: number, expiresAt: number, holder: string }

/** Linux keeps `user.*` attributes on files and directories only (others: EPERM to set, none to read). */
export function takesXattr (type: ObjectType, name: string): boolean {
  return !name.startsWith('user.') || type === 'file' || type === 'dir'
}

/** setxattr's flags: only make a new attribute, only replace one, or either. */
export const xattrMode = z.enum(['create', 'replace', 'either'])
export type XattrMode = z.infer<typeof xattrMode>
const volumeName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'volume names are 1-63 of A-Z a-z 0-9 . _ -')
/** A server's address: HOST:PORT (an IPv6 host in brackets). */
export const hostPortSchema = z.string().max(270).regex(/^(\[[^\]]+\]|[^:\s]+):\d{1,5}$/, 'a server address is HOST:PORT')
/** The most servers one volume is kept on (as in Coda). */
export const MAX_VOLUME_SITES = 8
const sites = z.array(hostPortSchema).min(1).max(MAX_VOLUME_SITES)

/** Special files: their data path stays on the machine that opens them (as on NFS); the volume keeps the node. */
export const SPECIAL_TYPES = ['fifo', 'socket', 'chardev', 'blockdev'] as const
export type SpecialType = typeof SPECIAL_TYPES[number]
export type ObjectType = 'file' | 'dir' | 'symlink' | 'mount' | SpecialType

export function isSpecial (t: ObjectType): t is SpecialType {
  return (SPECIAL_TYPES as readonly string[]).includes(t)
}

/** Character and block device nodes: the special files that stand for a device (`rdev`). */
export function isDevice (t: ObjectType): boolean {
  return t === 'chardev' || t === 'blockdev'
}

/** The file-type bits of a mode (a status's `mode` carries them), by object type. */
export const S_IFMT = 0o170000
export const TYPE_BITS: Record<ObjectType, number> = {
  file: 0o100000, dir: 0o040000, symlink: 0o120000, mount: 0o040000, fifo: 0o010000, socket: 0o140000, chardev: 0o020000, blockdev: 0o060000,
}

export interface VnodeStatus {
  fid: Fid
  type: ObjectType
  mode: number
  uid: number
  gid: number
  nlink: number
  size: number
  atimeMs: number
  mtimeMs: number
  ctimeMs: number
  /** Nanoseconds past atimeMs and mtimeMs, when set finer than a millisecond (absent: 0). */
  atimeNs?: number
  mtimeNs?: number
  /** Bumped by every change to the contents (file data, directory entries). */
  dataVersion: number
  /** Symlink target, or the volume name a mount point leads to. */
  target?: string
  /** The device a character or block device node stands for (major/minor as the kernel encodes them). */
  rdev?: number
  /** Extended attributes (`user.*`, `trusted.*`, `security.*`), name → value. */
  xattrs?: Record<string, Uint8Array>
  /** In a replicated volume: the version vector (member server id → updates it applied) and the id of the last update. */
  vv?: Record<string, number>
  sid?: string
  /** The ids of its last updates, oldest first (the last is `sid`). */
  history?: string[]
  /** A replicated volume's object in server/server conflict: its members changed it apart. */
  conflict?: boolean
  /** A directory's access control list (absent: a directory from before ACLs, open to all). */
  acl?: Acl
  /** The cell user (protection database id) who made it, when one with a token did: AFS's owner. */
  owner?: number
}

/** A callback promise: the server tells us before this object changes, until expiresAt (ms epoch). */
export interface CallbackPromise { expiresAt: number }

/** `access`: the caller's rights on the object (a directory's own, a file's directory's), as AFS's CallerAccess. */
export interface StatusReply { status: VnodeStatus, callback: CallbackPromise, access?: number }
export interface CreateReply extends StatusReply { dir: VnodeStatus }
/** `data` of a status in `statuses`: the file's bytes at that status's version (fetchDir `data`). */
export interface DirReply extends StatusReply { entries: Array<[string, Fid, ObjectType]>, more: boolean, statuses?: Array<(StatusReply & { data?: Uint8Array }) | null> }
/**
 * How a replicated volume takes updates: `any` member that answers (Coda's optimistic
 * choice: always writable, members may diverge and need resolution or repair), or only
 * with a `majority` of members answering (a minority treats the volume as disconnected:
 * no server/server conflicts, but no update reaches the servers during such a split).
 */
export type Quorum = 'any' | 'majority'
/** `epoch`: grows with each move of the volume; a server that does not hold it refuses requests for the volume (MOVED). */
/** A user or group of the protection database, as shown (never a password hash). */
export interface PtsRecord { id: number, name: string, kind: 'user' | 'group', createdMs: number, owner: number, tokenEpoch?: number, members?: number[] }

/** Who a request is made by: a user (or no one: system:anyuser) and every group it is in. */
export interface IdentityRecord { uid: number, name: string, cps: number[], admin: boolean }

export interface VolumeEntry { id: number, name: string, servers: string[], quota: number, root: Fid, quorum?: Quorum, epoch?: number }
export interface StatfsReply { volume: number, usage: number, quota: number, files: number, diskTotal: number, diskFree: number }
export interface RenameReply {
  fromDir: VnodeStatus
  toDir: VnodeStatus
  moved: VnodeStatus
  /** The object that was at the new name, if any, and its status after (null when deleted). */
  replaced: { fid: Fid, status: VnodeStatus | null } | null
}
export interface LocateReply { places: Array<{ dir: Fid, name: string }> }
/** The object a name stands for (its status: no callback comes with it). */
export interface LookupReply { fid: Fid | null, status: VnodeStatus | null }
export interface HelloReply { cell: string, protocol: number, serverId: string, rootVolume: string }
/** A volume's members as one server sees them (`afs vos examine`). */
export interface ExamineReply {
  volume: VolumeEntry
  replicas: Array<{
    server: string
    reachable: boolean
    /** Updates the member knows of (the sum of its volume vector), and the vector. */
    version: number | null
    vector: Record<string, number> | null
    objects: number | null
    /** Objects whose version there differs from another reachable member's (waiting for resolution). */
    pending: number | null
    /** Objects in server/server conflict there. */
    conflicts: number | null
    error?: string
  }>
}
/** Objects whose versions differ between a volume's reachable members (`path`: in the replica of the member asked, where it has one). */
export interface PendingReply {
  volume: VolumeEntry
  unreachable: string[]
  objects: Array<{ fid: Fid, type: ObjectType, conflict: boolean, path: string | null }>
}
/** A server of the cell as the location database knows it. */
export interface ServerRecord { id: string, address: string, since: number, leader?: boolean }
/** A removed name's directory after, and the object's status after (null when it is gone). */
export interface RemoveReply { dir: VnodeStatus, status: VnodeStatus | null }
/** A renewed lease, and the locks still held under it (fid key, generation). */
export interface RenewLocksReply { expiresAt: number, locks: Array<{ fid: string, generation: number }> }

/** How a record of a client modification log conflicts with the server's state. */
export type ConflictKind = 'update/update' | 'remove/update' | 'update/remove' | 'name/name' | 'rename'

const attrsSchema = z.object({
  mode: u32.optional(), uid: u32.optional(), gid: u32.optional(),
  atimeMs: timeMs.optional(), mtimeMs: timeMs.optional(), atimeNs: subMs.optional(), mtimeNs: subMs.optional(), size: u53.optional(),
})

/**
 * A record of a client modification log as replayed to a server. `base` is the data
 * version the client's change was based on; the server applies a record only when
 * the object still has it.
 */
export const cmlRecordSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('create'), dir: fidSchema, name: nameSchema, fid: fidSchema, mode: u32, uid: u32, gid: u32 }),
  z.object({ op: z.literal('mkdir'), dir: fidSchema, name: nameSchema, fid: fidSchema, mode: u32, uid: u32, gid: u32 }),
  z.object({ op: z.literal('symlink'), dir: fidSchema, name: nameSchema, fid: fidSchema, target: z.string().min(1).max(MAX_PATH_BYTES), uid: u32, gid: u32 }),
  z.object({ op: z.literal('mknod'), dir: fidSchema, name: nameSchema, fid: fidSchema, type: z.enum(SPECIAL_TYPES), mode: u32, rdev: u32, uid: u32, gid: u32 }),
  z.object({ op: z.literal('store'), fid: fidSchema, base: u53.nullable(), size: u53, mtimeMs: timeMs, mtimeNs: subMs.optional() }),
  z.object({ op: z.literal('setattr'), fid: fidSchema, base: u53.nullable(), attrs: attrsSchema }),
  z.object({ op: z.literal('remove'), dir: fidSchema, name: nameSchema, fid: fidSchema, base: u53.nullable() }),
  z.object({ op: z.literal('rmdir'), dir: fidSchema, name: nameSchema, fid: fidSchema, base: u53.nullable() }),
  z.object({ op: z.literal('rename'), fromDir: fidSchema, fromName: nameSchema, toDir: fidSchema, toName: nameSchema, fid: fidSchema, base: u53.nullable() }),
  z.object({ op: z.literal('link'), dir: fidSchema, name: nameSchema, fid: fidSchema }),
  /** An extended attribute `attr` set (`value`) or removed (null). (`name` is a directory entry's in every record.) */
  z.object({ op: z.literal('xattr'), fid: fidSchema, base: u53.nullable(), attr: xattrName, value: xattrValue.nullable() }),
])
export type CmlRecordBody = z.infer<typeof cmlRecordSchema>

/** The reply to a replayed record: the new status of the object it made or changed, if any. */
export interface ReplayReply { seq: number, status: VnodeStatus | null, duplicate: boolean }

/** A batch's stores carry their file's bytes inline up to this size (larger ones replay alone, streamed). */
export const MAX_BATCH_INLINE_BYTES = 64 * 1024
export const MAX_BATCH_RECORDS = 256
/** Inline bytes of a whole batch, well inside one frame. */
export const MAX_BATCH_BYTES = 4 * 1024 * 1024
const inlineData = z.custom<Uint8Array>(v => v instanceof Uint8Array, { message: 'inline data is bytes' })
  .refine(v => v.byteLength <= MAX_BATCH_INLINE_BYTES, { message: `inline data is at most ${MAX_BATCH_INLINE_BYTES} bytes` })
const batchItem = z.object({ seq: u53, record: cmlRecordSchema, data: inlineData.optional() })

/**
 * The reply to a batch of records: the replies of those applied (or applied before), in
 * order, and the record that stopped it with its error (the rest were not tried).
 */
export interface ReplayBatchReply { results: ReplayReply[], failed: { seq: number, error: WireError } | null }

/**
 * The number a connected mutation carries: the sequence number its client's log record
 * would have (Coda's StoreId). A client that gives up waiting logs the change under the
 * same number, and the server, which remembers the numbers it applied, applies it once.
 */
const seq = u53.min(1).optional()
/** A version vector: member server id → updates. */
const vvSchema = z.record(z.string().max(128), u53).refine(v => Object.keys(v).length <= 64, { message: 'a version vector has at most 64 members' })
const objectTypeSchema = z.enum(['file', 'dir', 'symlink', 'mount', ...SPECIAL_TYPES])
const aclEntries = z.array(z.tuple([z.number().int().min(-(2 ** 31)).max(2 ** 31 - 1), z.number().int().min(0).max(ALL_RIGHTS)])).max(MAX_ACL_ENTRIES)
const aclSchema = z.object({ pos: aclEntries, neg: aclEntries })
/** A directory's status as one member hands it to another (resolution). */
const dirStatusSchema = z.object({
  fid: fidSchema, type: z.literal('dir'), mode: u32, uid: u32, gid: u32, nlink: u32, size: u53,
  atimeMs: timeMs, mtimeMs: timeMs, ctimeMs: timeMs, atimeNs: subMs.optional(), mtimeNs: subMs.optional(), dataVersion: u53,
  xattrs: z.record(z.string().max(255), xattrValue).optional(), vv: vvSchema, sid: z.string().max(300), history: z.array(z.string().max(300)).max(64).optional(),
  acl: aclSchema.optional(), owner: z.number().int().optional(),
})
/** A create in a replicated volume sent on to the other members: the fid the first member gave the object. */
const newFid = fidSchema.optional()

const ptsName = z.string().min(1).max(130)
const passwordSchema = z.string().min(1).max(1024)

export const requests = {
  hello: z.object({ protocol: u32, clientId: z.string().min(1).max(128), hostname: z.string().max(255) }),
  ping: z.object({}).optional(),
  vlGet: z.object({ name: volumeName.optional(), id: u32.optional() }),
  vlList: z.object({}).optional(),
  /** The location database's own requests (a server of the cell asks the one that keeps it). */
  vlCreate: z.object({ name: volumeName, servers: sites, quota: u53, quorum: z.enum(['any', 'majority']).optional() }),
  vlUpdate: z.object({ id: u32, servers: sites.optional(), quota: u53.optional(), epoch: u53.optional() }),
  /** A server (by the id it keeps in its data directory) says where it is now. */
  vlRegister: z.object({ serverId: z.string().min(1).max(128), address: hostPortSchema }),
  vlServers: z.object({}).optional(),
  /** `servers`: the sites (the server asked among them); two or more make a replicated volume. */
  volCreate: z.object({ name: volumeName, quota: u53.optional(), servers: sites.optional(), quorum: z.enum(['any', 'majority']).optional() }),
  /** Server to server: keep replica `slot` of a replicated volume just registered, or (slot null) a volume moving here (its root made at `createdMs`). */
  volAttach: z.object({ id: u32, name: volumeName, quota: u53, slot: z.number().int().min(0).max(MAX_VOLUME_SITES - 1).nullable(), createdMs: timeMs }),
  /** `afs vos move`: the volume's server copies it to `to` while it stays in use, then switches its location there. */
  volMove: z.object({ name: volumeName, to: hostPortSchema }),
  /** How far a move of the volume that this server runs got (null: none under way here). */
  volMoveProgress: z.object({ name: volumeName }),
  /** Server to server, during a move: take object `fid` as server `from` has it now. */
  moveTake: z.object({ fid: fidSchema, from: hostPortSchema }),
  volSetQuota: z.object({ name: volumeName, quota: u53 }),
  /** The protection database (`afs pts`, `afs login`); a server that does not keep it passes them on with the caller's token. */
  ptCreateUser: z.object({ name: ptsName, password: passwordSchema.nullable() }),
  ptCreateGroup: z.object({ name: ptsName }),
  ptAddUser: z.object({ user: ptsName, group: ptsName }),
  ptRemoveUser: z.object({ user: ptsName, group: ptsName }),
  ptDelete: z.object({ name: ptsName }),
  ptSetPassword: z.object({ name: ptsName, password: passwordSchema }),
  ptExamine: z.object({ name: ptsName }),
  ptMembership: z.object({ name: ptsName }),
  ptList: z.object({}).optional(),
  /** The names of ids (for showing ACLs); an id no entry has any more is left out. */
  ptNames: z.object({ ids: z.array(z.number().int()).max(1_000) }),
  ptLogin: z.object({ name: ptsName, password: passwordSchema }),
  /** Server to server: the identity behind a token (for a server that does not keep the protection database). */
  ptIdentify: z.object({ token: z.string().min(1).max(4096) }),
  /** Who the server takes the caller for (the token its requests carry, or none). */
  whoami: z.object({}).optional(),
  fetchStatus: z.object({ fid: fidSchema }),
  /**
   * The statuses of many objects of one volume, each with a callback on it, null where the
   * caller may not look it up or it is gone (AFS's FetchBulkStatus): a cache revalidates
   * what it held before a restart or a reconnection in one request, not one per object.
   */
  fetchStatuses: z.object({ volume: u32, fids: z.array(fidSchema).min(1).max(BULK_STATUS_MAX) }),
  /**
   * A page of a directory's entries. `statuses`: with each entry's status and a callback
   * on it (AFS's InlineBulkStatus), null where the caller may not look it up: one request
   * for a whole cold page. `data`: with them, the bytes of each file of at most that many
   * bytes that the caller may read, while the page's PREFETCH_PAGE_BYTES last (a cold
   * walk then opens small files without a request each).
   */
  fetchDir: z.object({ fid: fidSchema, after: z.string().max(1024).optional(), statuses: z.boolean().optional(), data: z.number().int().min(0).max(PREFETCH_FILE_MAX_BYTES).optional() }),
  /**
   * A file's bytes with its status and a callback. `offset`/`length`: only that range of
   * them (a file too big to cache whole is read a chunk at a time); the body then holds
   * exactly the part of the range the file has, no bytes past its end.
   */
  fetchData: z.object({ fid: fidSchema, offset: u53.optional(), length: z.number().int().min(1).max(FETCH_RANGE_MAX_BYTES).optional() }),
  /** `ifVersion`: store only if the file is still at that version (repairs), else CONFLICT. */
  /** `ctimeMs`: when the client changed the contents (its last write); the file's ctime becomes that unless it is later already. */
  /** `lock`: the generation of the write lock the client writes under; refused (NO_LOCK) once that lock is gone. */
  /** With the attributes set while the file was open for writing (tar x's fchown, fchmod and futimens): one request at close. */
  store: z.object({
    fid: fidSchema, size: u53, mtimeMs: timeMs.optional(), mtimeNs: subMs.optional(), ctimeMs: timeMs.optional(), ifVersion: u53.optional(), lock: u53.optional(), seq,
    mode: u32.optional(), uid: u32.optional(), gid: u32.optional(), atimeMs: timeMs.optional(), atimeNs: subMs.optional(),
  }),
  create: z.object({ dir: fidSchema, name: nameSchema, mode: u32, uid: u32, gid: u32, seq, newFid }),
  mkdir: z.object({ dir: fidSchema, name: nameSchema, mode: u32, uid: u32, gid: u32, seq, newFid }),
  symlink: z.object({ dir: fidSchema, name: nameSchema, target: z.string().min(1).max(MAX_PATH_BYTES), uid: u32, gid: u32, seq, newFid }),
  /** A FIFO, socket or device node. */
  mknod: z.object({ dir: fidSchema, name: nameSchema, type: z.enum(SPECIAL_TYPES), mode: u32, rdev: u32, uid: u32, gid: u32, seq, newFid }),
  mkmount: z.object({ dir: fidSchema, name: nameSchema, volume: volumeName, uid: u32, gid: u32, seq, newFid }),
  link: z.object({ dir: fidSchema, name: nameSchema, fid: fidSchema, seq }),
  /** `ifFid`/`ifVersion`: remove only if the name still holds that object at that version, else CONFLICT. */
  remove: z.object({ dir: fidSchema, name: nameSchema, ifFid: fidSchema.optional(), ifVersion: u53.optional(), seq }),
  rmdir: z.object({ dir: fidSchema, name: nameSchema, ifFid: fidSchema.optional(), ifVersion: u53.optional(), seq }),
  /** Where an object is: the names it has in its volume. */
  locate: z.object({ fid: fidSchema }),
  /** The object a name in a directory stands for (no callback: for repairs, not for the namespace). */
  lookup: z.object({ dir: fidSchema, name: nameSchema }),
  /** `removeSeq`: the number of the removal of the name it replaces, logged apart when the rename is emulated. */
  rename: z.object({ fromDir: fidSchema, fromName: nameSchema, toDir: fidSchema, toName: nameSchema, seq, removeSeq: seq }),
  setattr: z.object({
    fid: fidSchema, mode: u32.optional(), uid: u32.optional(), gid: u32.optional(),
    atimeMs: timeMs.optional(), mtimeMs: timeMs.optional(), atimeNs: subMs.optional(), mtimeNs: subMs.optional(), size: u53.optional(), seq,
  }),
  setxattr: z.object({ fid: fidSchema, name: xattrName, value: xattrValue, mode: xattrMode, seq }),
  /** `afs fs setacl`: a directory's whole ACL (the administer right on it needed). */
  storeAcl: z.object({ fid: fidSchema, acl: aclSchema, seq }),
  removexattr: z.object({ fid: fidSchema, name: xattrName, seq }),
  /**
   * Advisory locks, held as a lease the client renews (renewLocks). `end` null: to the end
   * of the file. `wait`: answered when granted (F_SETLKW), else WOULD_BLOCK at once.
   */
  lock: z.object({ fid: fidSchema, ...lockArgs, kind: z.enum(['read', 'write']), wait: z.boolean() }),
  unlock: z.object({ fid: fidSchema, ...lockArgs }),
  /** The first lock in the way of one like this (F_GETLK), or null. */
  testLock: z.object({ fid: fidSchema, ...lockArgs, kind: z.enum(['read', 'write']) }),
  renewLocks: z.object({}).optional(),
  readlink: z.object({ fid: fidSchema }),
  statfs: z.object({ volume: u32 }),
  replay: z.object({ seq: u53, record: cmlRecordSchema, newFid }),
  /**
   * Records of one unreplicated volume, applied in order as `replay` applies each, with
   * one reply and one sync for all: a record may name the fid a create before it in the
   * batch was logged with, and the base version an earlier record of its object left.
   */
  replayBatch: z.object({ volume: u32, records: z.array(batchItem).min(1).max(MAX_BATCH_RECORDS) })
    .refine(b => b.records.reduce((n, r) => n + (r.data?.byteLength ?? 0), 0) <= MAX_BATCH_BYTES, { message: `a batch carries at most ${MAX_BATCH_BYTES} bytes inline` }),
  /**
   * COP2 of a replicated volume's update `sid`: the members (server ids) that applied
   * it, so that each counts the others' share too.
   */
  cop2: z.object({ volume: u32, sid: z.string().min(1).max(200), updateSet: z.array(z.string().min(1).max(128)).min(1).max(MAX_VOLUME_SITES) }),
  /** Resolution of a replicated volume's object: the member asked gathers every member's version and makes them equal, or marks a conflict. */
  resolve: z.object({ fid: fidSchema }),
  /** Server to server, during resolution: take `from`'s version of the object; set its vector; mark it in conflict; the vector it had when removed. */
  /** `expect`: the vector the member had when the version to take was chosen; changed since, the pull waits for the next resolution. */
  resolvePull: z.object({ fid: fidSchema, from: hostPortSchema, expect: vvSchema.nullable() }),
  /** `dataVersion`: at least this (a repaired object's version must differ from every one a client may have cached). */
  vvSet: z.object({ fid: fidSchema, vv: vvSchema, dataVersion: u53.optional() }),
  /** `on` false: the conflict is repaired (the members hold one version again). */
  markConflict: z.object({ fid: fidSchema, on: z.boolean().optional() }),
  /**
   * A server/server conflict repaired: every member takes the version of member `keep`,
   * or the body (`merged`: a file the user made of the versions) as the one version.
   */
  repairReplica: z.union([
    z.object({ fid: fidSchema, keep: hostPortSchema }),
    z.object({ fid: fidSchema, merged: z.object({ size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER), mtimeMs: z.number().int().min(0) }) }),
  ]),
  /** A directory merged from members that changed it apart: take exactly these entries, with this status. */
  resolveMerge: z.object({ expect: vvSchema.nullable(), status: dirStatusSchema, entries: z.array(z.tuple([nameSchema, fidSchema, objectTypeSchema])).max(DIR_PAGE_ENTRIES) }),
  tombstone: z.object({ fid: fidSchema }),
  /** A page of a replica's object vectors after vnode `after` (`limit` 0: the volume's vector only). */
  vectors: z.object({ volume: u32, after: u32, limit: z.number().int().min(0).max(10_000) }),
  /** A replicated volume gains a member (filled by the members' sweeps while in use), or loses one (its copy stays on its disk). */
  volAddSite: z.object({ name: volumeName, server: hostPortSchema }),
  volRemoveSite: z.object({ name: volumeName, server: hostPortSchema }),
  /** `afs vos examine`: every member of a volume as the server asked sees it. */
  volExamine: z.object({ name: volumeName }),
  /** `afs vos resolve`: the objects whose versions differ between a volume's reachable members. */
  volPending: z.object({ name: volumeName }),
} as const

export type Op = keyof typeof requests

/** Requests that change a volume (a replicated volume's go to every member that answers; a moving volume's wait for its switch). */
export const UPDATE_OPS: ReadonlySet<Op> = new Set<Op>(['store', 'create', 'mkdir', 'symlink', 'mknod', 'mkmount', 'link', 'remove', 'rmdir', 'rename', 'setattr', 'setxattr', 'removexattr', 'storeAcl', 'replay', 'replayBatch'])
export type Args<O extends Op> = z.infer<(typeof requests)[O]>

/** What each request answers: callers get it typed, the server's handlers are checked against it. */
export interface Replies {
  hello: HelloReply
  ping: Record<string, never>
  vlGet: VolumeEntry
  vlList: VolumeEntry[]
  vlCreate: VolumeEntry
  vlUpdate: VolumeEntry
  vlRegister: { before: ServerRecord | null }
  vlServers: ServerRecord[]
  volCreate: VolumeEntry
  volAttach: Record<string, never>
  volSetQuota: VolumeEntry
  ptCreateUser: PtsRecord
  ptCreateGroup: PtsRecord
  ptAddUser: PtsRecord
  ptRemoveUser: PtsRecord
  ptDelete: Record<string, never>
  ptSetPassword: Record<string, never>
  ptExamine: PtsRecord
  ptMembership: PtsRecord[]
  ptList: PtsRecord[]
  ptNames: { names: Record<string, string> }
  ptLogin: { token: string, expiresMs: number, user: string }
  ptIdentify: IdentityRecord
  whoami: IdentityRecord
  fetchStatus: StatusReply
  fetchStatuses: { statuses: Array<StatusReply | null> }
  fetchDir: DirReply
  /** Comes with the file's bytes as a streamed body. */
  fetchData: StatusReply
  store: StatusReply
  create: CreateReply
  mkdir: CreateReply
  symlink: CreateReply
  mknod: CreateReply
  mkmount: CreateReply
  link: CreateReply
  remove: RemoveReply
  rmdir: RemoveReply
  locate: LocateReply
  lookup: LookupReply
  rename: RenameReply
  setattr: StatusReply
  setxattr: StatusReply
  storeAcl: StatusReply
  removexattr: StatusReply
  lock: LockReply
  unlock: Record<string, never>
  testLock: { blocker: LockReply | null }
  renewLocks: RenewLocksReply
  readlink: { target: string }
  statfs: StatfsReply
  replay: ReplayReply
  replayBatch: ReplayBatchReply
  cop2: Record<string, never>
  resolve: { outcome: 'equal' | 'weakly-equal' | 'resolved' | 'conflict' | 'unreachable' }
  resolvePull: Record<string, never>
  vvSet: Record<string, never>
  markConflict: Record<string, never>
  repairReplica: Record<string, never>
  resolveMerge: Record<string, never>
  tombstone: { vv: Record<string, number> | null }
  volAddSite: VolumeEntry
  volRemoveSite: VolumeEntry
  vectors: { volumeVv: Record<string, number>, slot: number | null, vectors: Array<{ vnode: number, unique: number, type: ObjectType, vv: Record<string, number>, conflict?: boolean }> }
  volExamine: ExamineReply
  volMove: VolumeEntry
  moveTake: Record<string, never>
  volMoveProgress: { progress: { phase: 'copying' | 'switching', done: number, total: number, to: string } | null }
  volPending: PendingReply
}
export type Reply<O extends Op> = Replies[O]
// Every request has a reply type and every reply type a request (a compile error otherwise).
const repliesCoverRequests: [keyof Replies] extends [Op] ? [Op] extends [keyof Replies] ? true : never : never = true
void repliesCoverRequests

/** Server → client: the server breaks its callback promises on these objects. */
export const callbackBreakSchema = z.object({ fids: z.array(fidSchema).max(100_000) })

/** Server → client: the location entries of volumes the client looked up changed (a move, a new member): like callbacks on location entries. */
export const locationChangeSchema = z.object({
  volumes: z.array(z.object({
    id: u32, name: volumeName, servers: sites, quota: u53, root: fidSchema, quorum: z.enum(['any', 'majority']).optional(), epoch: u53.optional(),
  })).max(1_000),
})

export function isOp (op: string): op is Op {
  return Object.hasOwn(requests, op)
}
