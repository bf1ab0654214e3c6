// A server's volumes: vnode records, directory entries and volume headers in LMDB,
// file contents in the blob store. Every mutation has one shape (Coda's srvproc):
// validate → get objects → check semantics → perform in one write transaction. The
// caller (file-server) breaks other clients' callbacks after it returns.
import { open as openLmdb, type Database, type RootDatabase } from 'lmdb'
import { join } from 'node:path'
import { statfs as fsStatfs } from 'node:fs/promises'
import {
  AfsError, compareVv, conflict, crossVolume, maxVv, exists, sameFid, invalid, permission, isDir, notDir, notEmpty, notFound, noData, noSpace, notPermitted, quotaExceeded, takesXattr, xattrBytes,
  type Acl, type Fid, type ObjectType, type StatfsReply, type RenameReply, type VnodeStatus, type XattrMode,
  tooManyLinks, DIR_PAGE_ENTRIES, MAX_LINKS, MAX_VOLUME_SITES, MAX_XATTR_TOTAL_BYTES, ROOT_VNODE, ROOT_UNIQUE,
} from '@afs-ts/common'
import { AsyncLocalStorage } from 'node:async_hooks'
import { BlobStore, type WrittenBlob } from './blob-store.ts'
import { toStatus, type DirentValue, type NewObject, type VnodeRecord, type VolumeRecord } from './vnode.ts'

const DIR_SIZE = 4096
/** Update ids an object of a replicated volume remembers (resolution tells by them which member has which update). */
export const HISTORY_KEPT = 32

export interface AttrChange { mode?: number, uid?: number, gid?: number, atimeMs?: number, mtimeMs?: number, atimeNs?: number, mtimeNs?: number, size?: number }
/** The modification and change times a store sets (the server's clock when absent). */
export interface Mtime { mtimeMs?: number, mtimeNs?: number, ctimeMs?: number }

/** Runs inside a mutation's write transaction with the record it wrote (replay bookkeeping). */
export type Within = (record: VnodeRecord | null) => void

/**
 * What a mutation carries besides its arguments. `within`: bookkeeping to run inside its
 * transaction; `sid`: the id of the update (its client and number, Coda's StoreId) that
 * a replicated volume stamps on what it changes; `fid`: for a create in a replicated
 * volume, the fid the first member gave the new object (the others make it under the
 * same); `touched`: filled with the vnodes a replicated volume stamped (for COP2).
 */
export interface Update { within?: Within, sid?: string, fid?: Fid, touched?: number[] }

/**
 * Conditions checked inside a mutation's transaction, so no other change slips in
 * between check and change (repairs and replays): the object must still be `ifFid`
 * at `ifVersion`.
 */
export interface Expect { ifFid?: Fid, ifVersion?: number }

type VKey = [number, number]
type DKey = [number, number, string]

export class VolumeStore {
  readonly root: RootDatabase
  readonly blobs: BlobStore
  private readonly vnodes: Database<VnodeRecord, VKey>
  private readonly dirents: Database<DirentValue, DKey>
  private readonly volumes: Database<VolumeRecord, number>
  /** Replicated volumes: the version vector each removed object had when it went (resolution tells a removal from a miss). */
  private readonly tombstones: Database<{ unique: number, vv: Record<string, number> }, VKey>
  /** Numbers this server's own updates of replicated volumes (those no client numbered). */
  private unnumbered = 0
  /** Inside inOneTransaction: the blobs to remove once it commits. */
  private readonly joined = new AsyncLocalStorage<Array<[number, string]>>()

  private constructor (dir: string) {
    this.root = openLmdb({ path: join(dir, 'meta.lmdb'), compression: false, maxDbs: 64 })
    this.vnodes = this.root.openDB({ name: 'vnodes' })
    this.dirents = this.root.openDB({ name: 'dirents' })
    this.volumes = this.root.openDB({ name: 'volumes', keyEncoding: 'uint32' })
    this.tombstones = this.root.openDB({ name: 'tombstones' })
    this.blobs = new BlobStore(dir, this.root.openDB({ name: 'inline-blobs', encoding: 'binary' }))
  }

  /**
   * Runs `changes` (mutations of this store, one after another) in one transaction, with
   * one commit: a batch of replayed records. Blobs its changes free are removed after the
   * commit. Mutations made meanwhile outside it commit after it, in the same commit or the
   * next, as any others.
   */
  async inOneTransaction<T> (changes: () => Promise<T>): Promise<T> {
    const freed: Array<[number, string]> = []
    const out = await this.root.transaction(async () => await this.joined.run(freed, changes))
    for (const [volume, name] of freed) await this.blobs.remove(volume, name)
    return out
  }

  /** A mutation's transaction: its own, or the one it runs inside (inOneTransaction). */
  private async tx (change: () => void): Promise<void> {
    if (this.joined.getStore()) change()
    else await this.root.transaction(change)
  }

  /** Removes a blob no record points to after a committed change (inside inOneTransaction: after its commit). */
  private async freeBlob (volume: number, name: string | undefined): Promise<void> {
    const later = this.joined.getStore()
    if (!name) return
    if (later) later.push([volume, name])
    else await this.blobs.remove(volume, name)
  }

  static async open (dir: string): Promise<VolumeStore> {
    const store = new VolumeStore(dir)
    await store.blobs.ready()
    for (const { value: vol } of store.volumes.getRange()) {
      const referenced = new Set<string>()
      for (const { value } of store.vnodes.getRange({ start: [vol.id, 0], end: [vol.id + 1, 0] })) {
        if (value.blob) referenced.add(value.blob)
      }
      await store.blobs.collect(vol.id, n => referenced.has(n))
    }
    return store
  }

  async close (): Promise<void> {
    await this.root.close()
  }

  // ---- volumes ----

  /**
   * A new volume with an empty root directory. `replica`: this server's place in a
   * replicated volume (its id, its slot among the sites); every member starts with the
   * same root, made at `createdMs`.
   */
  async createVolume (id: number, name: string, quota: number, replica?: { self: string, slot: number }, createdMs = Date.now(), acl?: Acl): Promise<void> {
    await this.tx(() => {
      if (this.volumes.get(id)) throw exists(`volume ${id} exists on this server`)
      const vol: VolumeRecord = { id, name, quota, usage: 0, files: 1, nextVnode: ROOT_VNODE + 1 }
      if (replica) vol.replica = { ...replica, vv: {} }
      this.volumes.put(id, vol)
      const root: VnodeRecord = {
        vnode: ROOT_VNODE, unique: ROOT_UNIQUE, type: 'dir', mode: 0o755, uid: 0, gid: 0, nlink: 2, size: DIR_SIZE,
        atimeMs: createdMs, mtimeMs: createdMs, ctimeMs: createdMs, dataVersion: 1, parent: ROOT_VNODE,
      }
      if (acl) root.acl = acl
      if (replica) { root.vv = {}; root.sid = `created:${id}` }
      this.vnodes.put([id, ROOT_VNODE], root)
    })
  }

  /** The ids of the replicated volumes kept here. */
  replicatedVolumes (): number[] {
    return [...this.volumes.getRange()].filter(({ value }) => value.replica).map(({ key }) => key)
  }

  /** This server's part in a replicated volume, or undefined for a volume kept here alone. */
  replicaOf (id: number): VolumeRecord['replica'] {
    return this.volume(id).replica
  }

  /**
   * The fid of a new object: the one the first member gave it (a replicated volume's
   * other members), else the next free vnode — in a replicated volume, of this member's
   * stripe, so that members that cannot reach each other never hand out the same fid.
   */
  private newFid (vol: VolumeRecord, given?: Fid): { vnode: number, unique: number, next: number } {
    if (given) {
      if (this.vnodes.get([vol.id, given.vnode])) throw exists(`object ${vol.id}.${given.vnode} exists on this member`)
      return { vnode: given.vnode, unique: given.unique, next: vol.nextVnode }
    }
    let vnode = vol.nextVnode
    // (Objects taken whole from another server are numbered below nextVnode already: numberedPast.)
    if (vol.replica) while (vnode % MAX_VOLUME_SITES !== vol.replica.slot || this.vnodes.get([vol.id, vnode])) vnode++
    return { vnode, unique: 1, next: vnode + 1 }
  }

  /**
   * COP2: the members in `updateSet` all applied update `sid`, which touched `vnodes`
   * here: their slots of these vnodes' vectors count it too, so that members that took
   * the same updates end with equal vectors.
   */
  async cop2 (volume: number, vnodes: number[], updateSet: string[]): Promise<void> {
    const self = this.volume(volume).replica?.self
    if (!self) return
    const counts = new Map<number, number>()
    for (const v of vnodes) counts.set(v, (counts.get(v) ?? 0) + 1)
    const others = updateSet.filter(m => m !== self)
    await this.tx(() => {
      let total = 0
      for (const [vnode, n] of counts) {
        total += n
        const rec = this.vnodes.get([volume, vnode])
        if (rec) this.vnodes.put([volume, vnode], { ...rec, vv: addTo(rec.vv, others, n) })
        const t = this.tombstones.get([volume, vnode])
        if (t) this.tombstones.put([volume, vnode], { ...t, vv: addTo(t.vv, others, n) })
      }
      const vol = this.volume(volume)
      this.volumes.put(volume, { ...vol, replica: { ...vol.replica!, vv: addTo(vol.replica!.vv, others, total) } })
    })
  }

  /** How many volumes are kept here (not counting those moved away). */
  volumeCount (): number {
    let n = 0
    for (const { value } of this.volumes.getRange()) if (value.movedTo === undefined) n++
    return n
  }

  /** Whether object `fid` is here. */
  hasObject (fid: Fid): boolean {
    return this.vnodes.get([fid.volume, fid.vnode])?.unique === fid.unique
  }

  /** Whether the volume is kept here (a volume moved away is not). */
  hasVolume (id: number): boolean {
    const v = this.volumes.get(id)
    return v !== undefined && v.movedTo === undefined
  }

  /** Where the volume went, if it was moved away from here. */
  movedTo (id: number): string | undefined {
    return this.volumes.get(id)?.movedTo
  }

  /** The volume moved to `to`: from now on every request for it is refused here. */
  async markMoved (id: number, to: string): Promise<void> {
    await this.tx(() => {
      const { movingTo: _, ...vol } = this.volume(id)
      this.volumes.put(id, { ...vol, movedTo: to })
    })
  }

  /** Where the volume's move was switching to when this server last knew (undefined: no move under way). */
  movingTo (id: number): string | undefined {
    return this.volumes.get(id)?.movingTo
  }

  /** A move's switch begins (`to`) or was found not to have happened (undefined): kept on disk, so a crash in between is known at restart. */
  async markMoving (id: number, to: string | undefined): Promise<void> {
    await this.tx(() => {
      const { movingTo: _, ...vol } = this.volume(id)
      this.volumes.put(id, to === undefined ? vol : { ...vol, movingTo: to })
    })
  }

  /** A volume moving here that could not be finished is dropped (its objects too), so that a later move starts clean. */
  async dropVolume (id: number): Promise<void> {
    await this.tx(() => {
      for (const { key } of this.vnodes.getRange({ start: [id, 0], end: [id + 1, 0] })) this.vnodes.remove(key)
      for (const { key } of this.dirents.getRange({ start: [id, 0, ''], end: [id + 1, 0, ''] })) this.dirents.remove(key)
      for (const { key } of this.tombstones.getRange({ start: [id, 0], end: [id + 1, 0] })) this.tombstones.remove(key)
      this.volumes.remove(id)
    })
    await this.blobs.removeVolume(id)
  }

  async setQuota (id: number, quota: number): Promise<void> {
    await this.tx(() => {
      const vol = this.volume(id)
      this.volumes.put(id, { ...vol, quota })
    })
  }

  private volume (id: number): VolumeRecord {
    const vol = this.volumes.get(id)
    if (!vol) throw notFound(`volume ${id} is not on this server`)
    return vol
  }

  async statfs (id: number): Promise<StatfsReply> {
    const vol = this.volume(id)
    const s = await fsStatfs(this.blobs.dir)
    return { volume: id, usage: vol.usage, quota: vol.quota, files: vol.files, diskTotal: s.blocks * s.bsize, diskFree: s.bavail * s.bsize }
  }

  // ---- reads ----

  get (fid: Fid): VnodeRecord {
    const v = this.vnodes.get([fid.volume, fid.vnode])
    if (!v || v.unique !== fid.unique) throw notFound(`no object ${fid.volume}.${fid.vnode}.${fid.unique}`)
    return v
  }

  status (fid: Fid): VnodeStatus {
    return toStatus(fid.volume, this.get(fid))
  }

  /** One page of a directory, names in byte order, starting after `after`. */
  listDir (fid: Fid, after?: string): { entries: Array<[string, Fid, ObjectType]>, more: boolean } {
    const dir = this.get(fid)
    if (dir.type !== 'dir') throw notDir('not a directory')
    const entries: Array<[string, Fid, ObjectType]> = []
    const range = this.dirents.getRange({ start: [fid.volume, fid.vnode, after ?? ''], end: [fid.volume, fid.vnode + 1, ''] })
    for (const { key, value } of range) {
      const name = key[2]
      if (after !== undefined && name === after) continue
      if (entries.length === DIR_PAGE_ENTRIES) return { entries, more: true }
      entries.push([name, { volume: fid.volume, vnode: value[0], unique: value[1] }, value[2]])
    }
    return { entries, more: false }
  }

  /** All of a directory's entries (for resolution: directories of a replica are taken whole). */
  listAll (fid: Fid): Array<[string, Fid, ObjectType]> {
    const out: Array<[string, Fid, ObjectType]> = []
    for (let page = this.listDir(fid); ; page = this.listDir(fid, out[out.length - 1][0])) {
      out.push(...page.entries)
      if (!page.more) return out
    }
  }

  /** Every name an object has in its volume (a scan: for repairs, not for hot paths). */
  locate (fid: Fid, max = 16): Array<{ dir: Fid, name: string }> {
    this.get(fid)
    const out: Array<{ dir: Fid, name: string }> = []
    for (const { key, value } of this.dirents.getRange({ start: [fid.volume, 0, ''], end: [fid.volume + 1, 0, ''] })) {
      if (value[0] !== fid.vnode || value[1] !== fid.unique) continue
      const d = this.vnodes.get([fid.volume, key[1]])
      out.push({ dir: { volume: fid.volume, vnode: key[1], unique: d?.unique ?? 0 }, name: key[2] })
      if (out.length >= max) break
    }
    return out
  }

  lookup (dir: Fid, name: string): Fid | null {
    const e = this.dirents.get([dir.volume, dir.vnode, name])
    return e ? { volume: dir.volume, vnode: e[0], unique: e[1] } : null
  }

  /** A file's status and the blob that holds its bytes now (none: it is empty). */
  blobOf (fid: Fid): { status: VnodeStatus, blob: string | null } {
    const v = this.get(fid)
    if (v.type !== 'file') throw isDir('not a file')
    return { status: toStatus(fid.volume, v), blob: v.blob ?? null }
  }

  // ---- mutations ----

  /** A transaction of its own for `within` (a replayed record that needs no change). */
  async record (within: Within): Promise<void> {
    await this.tx(() => within(null))
  }

  /**
   * Replaces a file's whole contents with `body` (exactly `size` bytes); `attrs`: attributes
   * set with them (those set while the file was being written).
   */
  async store (fid: Fid, body: AsyncIterable<Buffer>, size: number, mtime: Mtime = {}, u: Update = {}, expect: Expect = {}, attrs: AttrChange = {}): Promise<VnodeStatus> {
    this.checkStorable(fid, size, expect)
    const blob = await this.blobs.write(fid.volume, `${fid.vnode}.${fid.unique}`, body, size)
    const { mtimeMs: _, mtimeNs: __, size: ___, ...others } = attrs
    return await this.replaceBlob(fid, blob, { ...this.attrFields(others), ...mtime }, u, expect)
  }

  /** Like store(), with the contents already written as a blob of the volume (removed when the store fails). */
  async storeBlob (fid: Fid, blob: WrittenBlob, mtime: Mtime = {}, u: Update = {}, expect: Expect = {}): Promise<VnodeStatus> {
    try {
      this.checkStorable(fid, blob.size, expect)
    } catch (err) {
      await this.blobs.remove(fid.volume, blob.name)
      throw err
    }
    return await this.replaceBlob(fid, blob, mtime, u, expect)
  }

  private checkStorable (fid: Fid, size: number, expect: Expect): void {
    const before = this.get(fid)
    if (before.type !== 'file') throw isDir('not a file')
    checkExpected(before, expect, 'update/update')
    this.checkQuota(fid.volume, size - before.size)
  }

  /** New contents, with `extra` attributes; the mtime is `extra`'s or now. */
  private async replaceBlob (fid: Fid, blob: { name: string, size: number }, extra: Partial<VnodeRecord> = {}, u: Update = {}, expect: Expect = {}): Promise<VnodeStatus> {
    let old: string | undefined
    let out: VnodeRecord | null = null
    const now = Date.now()
    try {
      await this.tx(() => {
        const v = this.get(fid)
        checkExpected(v, expect, 'update/update')
        this.checkQuota(fid.volume, blob.size - v.size)
        old = v.blob
        const mtime = extra.mtimeMs === undefined ? { mtimeMs: now, mtimeNs: 0 } : { mtimeMs: extra.mtimeMs, mtimeNs: extra.mtimeNs ?? 0 }
        // A change time from the writer (the time of its last write) never moves ctime back.
        const ctimeMs = extra.ctimeMs === undefined ? now : Math.max(v.ctimeMs, extra.ctimeMs)
        out = { ...v, ...extra, ...mtime, blob: blob.name, size: blob.size, dataVersion: v.dataVersion + 1, ctimeMs }
        this.blobs.keep(fid.volume, blob)
        this.put(fid.volume, out!, u)
        this.addUsage(fid.volume, blob.size - v.size, 0)
        u.within?.(out)
      })
    } catch (err) {
      await this.blobs.remove(fid.volume, blob.name)
      throw err
    }
    await this.freeBlob(fid.volume, old)
    return toStatus(fid.volume, out!)
  }

  private checkQuota (volume: number, delta: number): void {
    const vol = this.volume(volume)
    if (delta > 0 && vol.quota > 0 && vol.usage + delta > vol.quota) {
      throw quotaExceeded(`volume ${vol.name} is over its quota of ${vol.quota} bytes (uses ${vol.usage}, needs ${delta} more)`)
    }
  }

  /** Runs inside a write transaction. */
  /** An object taken whole from another server (a move) keeps its vnode: new objects here are numbered past it. */
  private numberedPast (volume: number, vnode: number): void {
    const vol = this.volume(volume)
    if (!vol.replica && vnode >= vol.nextVnode) this.volumes.put(volume, { ...vol, nextVnode: vnode + 1 })
  }

  private addUsage (volume: number, bytes: number, files: number): void {
    const vol = this.volume(volume)
    this.volumes.put(volume, { ...vol, usage: Math.max(0, vol.usage + bytes), files: vol.files + files })
  }

  /** Runs inside a write transaction: bumps a directory's version and times. */
  private touchDir (volume: number, dir: VnodeRecord, u: Update, change: Partial<VnodeRecord> = {}): VnodeRecord {
    const now = Date.now()
    const next = { ...dir, ...change, dataVersion: dir.dataVersion + 1, mtimeMs: now, mtimeNs: 0, ctimeMs: now }
    this.put(volume, next, u)
    return next
  }

  /**
   * Runs inside a write transaction: writes a changed vnode. In a replicated volume the
   * change counts as one more update by this member (its slot of the version vector)
   * under the update's id, and so does the volume's version.
   */
  private put (volume: number, rec: VnodeRecord, u: Update): void {
    if (rec.conflict) throw conflict(`object ${volume}.${rec.vnode}.${rec.unique} is in server/server conflict: repair it first`, { kind: 'update/update' })
    this.stamp(volume, rec, u)
    this.vnodes.put([volume, rec.vnode], rec)
  }

  /** A replicated volume's object counts an update made here: its vector, last update and history, and the volume's vector. */
  private stamp (volume: number, rec: VnodeRecord, u: Update): void {
    const vol = this.volumes.get(volume)
    const r = vol?.replica
    if (!vol || !r) return
    rec.vv = { ...rec.vv, [r.self]: (rec.vv?.[r.self] ?? 0) + 1 }
    u.sid ??= `${r.self}:${Date.now()}:${++this.unnumbered}`
    rec.sid = u.sid
    rec.history = [...(rec.history ?? []), u.sid].slice(-HISTORY_KEPT)
    u.touched?.push(rec.vnode)
    this.volumes.put(volume, { ...vol, replica: { ...r, vv: { ...r.vv, [r.self]: (r.vv[r.self] ?? 0) + 1 } } })
  }

  private dirFor (fid: Fid): VnodeRecord {
    const d = this.get(fid)
    if (d.type !== 'dir') throw notDir('not a directory')
    return d
  }

  async create (dirFid: Fid, name: string, obj: NewObject, u: Update = {}): Promise<{ status: VnodeStatus, dir: VnodeStatus }> {
    let made: VnodeRecord | null = null
    let dirOut: VnodeRecord | null = null
    const now = Date.now()
    await this.tx(() => {
      const dir = this.dirFor(dirFid)
      if (this.dirents.get([dirFid.volume, dir.vnode, name])) throw exists(`${name} exists`)
      const vol = this.volume(dirFid.volume)
      const { vnode, unique, next } = this.newFid(vol, u.fid)
      this.volumes.put(vol.id, { ...vol, nextVnode: next, files: vol.files + 1 })
      const isDirectory = obj.type === 'dir'
      made = {
        vnode, unique, type: obj.type, mode: obj.mode & 0o7777, uid: obj.uid, gid: obj.gid, nlink: isDirectory ? 2 : 1,
        size: isDirectory ? DIR_SIZE : Buffer.byteLength(obj.target ?? ''), atimeMs: now, mtimeMs: now, ctimeMs: now,
        dataVersion: 1, parent: dir.vnode,
      }
      if (obj.target !== undefined) made.target = obj.target
      if (obj.rdev !== undefined) made.rdev = obj.rdev
      if (obj.owner !== undefined) made.owner = obj.owner
      // A new directory starts with its parent's ACL, as in AFS.
      if (isDirectory && dir.acl) made.acl = dir.acl
      this.put(vol.id, made, u)
      this.dirents.put([vol.id, dir.vnode, name], [vnode, unique, obj.type])
      dirOut = this.touchDir(vol.id, this.vnodes.get([vol.id, dir.vnode])!, u, isDirectory ? { nlink: dir.nlink + 1 } : {})
      u.within?.(made)
    })
    return { status: toStatus(dirFid.volume, made!), dir: toStatus(dirFid.volume, dirOut!) }
  }

  async link (dirFid: Fid, name: string, target: Fid, u: Update = {}): Promise<{ status: VnodeStatus, dir: VnodeStatus }> {
    if (target.volume !== dirFid.volume) throw crossVolume('hard links stay within a volume')
    let linked: VnodeRecord | null = null
    let dirOut: VnodeRecord | null = null
    await this.tx(() => {
      const dir = this.dirFor(dirFid)
      const v = this.get(target)
      if (v.type === 'dir' || v.type === 'mount') throw permission('cannot hard-link a directory')
      if (v.nlink >= MAX_LINKS) throw tooManyLinks(`it has ${v.nlink} names already, the most a file may have`)
      if (this.dirents.get([dirFid.volume, dir.vnode, name])) throw exists(`${name} exists`)
      linked = { ...v, nlink: v.nlink + 1, ctimeMs: Date.now() }
      this.put(target.volume, linked!, u)
      this.dirents.put([dirFid.volume, dir.vnode, name], [v.vnode, v.unique, v.type])
      dirOut = this.touchDir(dirFid.volume, this.vnodes.get([dirFid.volume, dir.vnode])!, u)
      u.within?.(linked)
    })
    return { status: toStatus(dirFid.volume, linked!), dir: toStatus(dirFid.volume, dirOut!) }
  }

  /** Removes a name (rmdir when `directory`); returns the parent and the object's fid and new status (null when gone). */
  async remove (dirFid: Fid, name: string, directory: boolean, u: Update = {}, expect: Expect = {}): Promise<{ dir: VnodeStatus, fid: Fid, status: VnodeStatus | null }> {
    let dirOut: VnodeRecord | null = null
    let fid: Fid | null = null
    let after: VnodeRecord | null = null
    let freed: string | undefined
    await this.tx(() => {
      const dir = this.dirFor(dirFid)
      const e = this.dirents.get([dirFid.volume, dir.vnode, name])
      if (!e) throw notFound(`${name} does not exist`)
      fid = { volume: dirFid.volume, vnode: e[0], unique: e[1] }
      if (expect.ifFid && !sameFid(expect.ifFid, fid)) throw conflict(`${name} names another object on the server now`, { kind: 'update/remove' })
      const v = this.get(fid)
      checkExpected(v, expect, 'update/remove')
      if (directory && v.type !== 'dir') throw notDir(`${name} is not a directory`)
      if (!directory && v.type === 'dir') throw isDir(`${name} is a directory`)
      if (directory && !this.isEmptyDir(fid)) throw notEmpty(`${name} is not empty`)
      this.dirents.remove([dirFid.volume, dir.vnode, name])
      dirOut = this.touchDir(dirFid.volume, dir, u, directory ? { nlink: dir.nlink - 1 } : {})
      ;({ after, freed } = this.unlinkVnode(fid, v, u))
      u.within?.(after)
    })
    await this.freeBlob(dirFid.volume, freed)
    return { dir: toStatus(dirFid.volume, dirOut!), fid: fid!, status: after ? toStatus(dirFid.volume, after) : null }
  }

  /** Runs inside a write transaction: drops one name of `v`; deletes it with its last name. */
  private unlinkVnode (fid: Fid, v: VnodeRecord, u: Update): { after: VnodeRecord | null, freed?: string } {
    if (v.type !== 'dir' && v.nlink > 1) {
      const after = { ...v, nlink: v.nlink - 1, ctimeMs: Date.now() }
      this.put(fid.volume, after, u)
      return { after }
    }
    this.vnodes.remove([fid.volume, fid.vnode])
    const r = this.volumes.get(fid.volume)?.replica
    if (r) {
      this.tombstones.put([fid.volume, fid.vnode], { unique: fid.unique, vv: { ...v.vv, [r.self]: (v.vv?.[r.self] ?? 0) + 1 } })
      u.touched?.push(fid.vnode)
    }
    this.addUsage(fid.volume, -(v.type === 'file' ? v.size : 0), -1)
    return { after: null, freed: v.blob }
  }

  private isEmptyDir (fid: Fid): boolean {
    for (const _ of this.dirents.getKeys({ start: [fid.volume, fid.vnode, ''], end: [fid.volume, fid.vnode + 1, ''], limit: 1 })) return false
    return true
  }

  async rename (fromDir: Fid, fromName: string, toDir: Fid, toName: string, u: Update = {}): Promise<RenameReply> {
    if (fromDir.volume !== toDir.volume) throw crossVolume('rename across volumes')
    const vol = fromDir.volume
    const out: RenameReply = { fromDir: null!, toDir: null!, moved: null!, replaced: null }
    let freed: string | undefined
    await this.tx(() => {
      const src = this.dirFor(fromDir)
      const e = this.dirents.get([vol, src.vnode, fromName])
      if (!e) throw notFound(`${fromName} does not exist`)
      const movedFid = { volume: vol, vnode: e[0], unique: e[1] }
      const moved = this.get(movedFid)
      const dst = fromDir.vnode === toDir.vnode ? src : this.dirFor(toDir)
      if (fromDir.vnode === toDir.vnode && fromName === toName) {
        Object.assign(out, { fromDir: toStatus(vol, src), toDir: toStatus(vol, src), moved: toStatus(vol, moved) })
        u.within?.(moved)
        return
      }
      if (moved.type === 'dir') this.checkNotInside(vol, movedFid.vnode, dst.vnode)
      const existing = this.dirents.get([vol, dst.vnode, toName])
      if (existing) freed = this.replaceTarget(out, vol, dst, toName, existing, moved, u)
      const isDirMove = moved.type === 'dir' && src.vnode !== dst.vnode
      this.dirents.remove([vol, src.vnode, fromName])
      this.dirents.put([vol, dst.vnode, toName], e)
      // (A file's parent is the directory whose ACL governs it: the one it was last put in.)
      const movedOut = { ...moved, ctimeMs: Date.now(), parent: dst.vnode }
      this.put(vol, movedOut, u)
      out.moved = toStatus(vol, movedOut)
      const srcNow = this.vnodes.get([vol, src.vnode])!
      const srcOut = this.touchDir(vol, srcNow, u, isDirMove ? { nlink: srcNow.nlink - 1 } : {})
      const dstNow = src.vnode === dst.vnode ? srcOut : this.vnodes.get([vol, dst.vnode])!
      const dstOut = src.vnode === dst.vnode ? srcOut : this.touchDir(vol, dstNow, u, isDirMove ? { nlink: dstNow.nlink + 1 } : {})
      out.fromDir = toStatus(vol, srcOut)
      out.toDir = toStatus(vol, dstOut)
      u.within?.(movedOut)
    })
    await this.freeBlob(vol, freed)
    return out
  }

  /** Runs inside a write transaction: rename onto an existing name. */
  private replaceTarget (out: RenameReply, vol: number, dst: VnodeRecord, toName: string, existing: DirentValue, moved: VnodeRecord, u: Update): string | undefined {
    const fid = { volume: vol, vnode: existing[0], unique: existing[1] }
    if (fid.vnode === moved.vnode) return undefined
    const target = this.get(fid)
    if (target.type === 'dir' && moved.type !== 'dir') throw isDir(`${toName} is a directory`)
    if (target.type !== 'dir' && moved.type === 'dir') throw notDir(`${toName} is not a directory`)
    if (target.type === 'dir' && !this.isEmptyDir(fid)) throw notEmpty(`${toName} is not empty`)
    this.dirents.remove([vol, dst.vnode, toName])
    if (target.type === 'dir') this.vnodes.put([vol, dst.vnode], { ...this.vnodes.get([vol, dst.vnode])!, nlink: dst.nlink - 1 })
    const { after, freed } = this.unlinkVnode(fid, target, u)
    out.replaced = { fid, status: after ? toStatus(vol, after) : null }
    return freed
  }

  private checkNotInside (vol: number, movedVnode: number, dstVnode: number): void {
    for (let v = dstVnode, hops = 0; hops < 100_000; hops++) {
      if (v === movedVnode) throw invalid('cannot move a directory into itself')
      const rec = this.vnodes.get([vol, v])
      if (!rec || rec.parent === v) return
      v = rec.parent
    }
  }

  async setattr (fid: Fid, change: AttrChange, u: Update = {}): Promise<VnodeStatus> {
    const v = this.get(fid)
    if (change.size !== undefined && change.size !== v.size) {
      if (v.type !== 'file') throw isDir('only files can be truncated')
      this.checkQuota(fid.volume, change.size - v.size)
      const blob = await this.blobs.write(fid.volume, `${fid.vnode}.${fid.unique}`, this.blobs.prefix(fid.volume, v.blob, v.size, change.size), change.size)
      const { size: _, ...rest } = change
      return await this.replaceBlob(fid, blob, this.attrFields(rest), u)
    }
    let out: VnodeRecord | null = null
    await this.tx(() => {
      const cur = this.get(fid)
      out = { ...cur, ...this.attrFields(change), ctimeMs: Date.now() }
      this.put(fid.volume, out!, u)
      u.within?.(out)
    })
    return toStatus(fid.volume, out!)
  }

  /** Sets a directory's ACL (`afs fs setacl`). */
  async setAcl (fid: Fid, acl: Acl, u: Update = {}): Promise<VnodeStatus> {
    let out: VnodeRecord | null = null
    await this.tx(() => {
      const cur = this.get(fid)
      if (cur.type !== 'dir') throw notDir('an ACL is a directory\'s')
      out = { ...cur, acl, ctimeMs: Date.now() }
      this.put(fid.volume, out!, u)
      u.within?.(out)
    })
    return toStatus(fid.volume, out!)
  }

  /** The record of directory `vnode` of `volume`, if there is one (for ACL checks). */
  dirRecord (volume: number, vnode: number): VnodeRecord | undefined {
    const r = this.vnodes.get([volume, vnode])
    return r?.type === 'dir' ? r : undefined
  }

  /**
   * Sets (`value`) or removes (null) an extended attribute: `create` only makes a new one
   * (EEXIST), `replace` only changes one (ENODATA), as setxattr's flags say.
   */
  async setxattr (fid: Fid, name: string, value: Uint8Array | null, mode: XattrMode, u: Update = {}): Promise<VnodeStatus> {
    let out: VnodeRecord | null = null
    await this.tx(() => {
      const cur = this.get(fid)
      if (value && !takesXattr(cur.type, name)) throw notPermitted(`${name}: user attributes are kept on files and directories only`)
      const xattrs = { ...cur.xattrs }
      const had = Object.hasOwn(xattrs, name)
      if (mode === 'create' && had) throw exists(`attribute ${name} exists`)
      if (mode === 'replace' && !had) throw noData(`no attribute ${name}`)
      if (value) xattrs[name] = value
      else delete xattrs[name]
      if (xattrBytes(xattrs) > MAX_XATTR_TOTAL_BYTES) throw noSpace(`the attributes of an object take at most ${MAX_XATTR_TOTAL_BYTES} bytes`)
      out = { ...cur, xattrs, ctimeMs: Date.now() }
      if (Object.keys(xattrs).length === 0) delete out.xattrs
      this.put(fid.volume, out, u)
      u.within?.(out)
    })
    return toStatus(fid.volume, out!)
  }

  // ---- resolution of replicated volumes ----

  /** The volume's vector here (every update this member knows of, by member). */
  volumeVector (volume: number): Record<string, number> {
    return this.volume(volume).replica?.vv ?? {}
  }

  /** Raises the volume's vector to include `vv` (after this member took every update `vv` counts). */
  async raiseVolumeVector (volume: number, vv: Record<string, number>): Promise<void> {
    await this.tx(() => {
      const vol = this.volume(volume)
      if (vol.replica) this.volumes.put(volume, { ...vol, replica: { ...vol.replica, vv: maxVv(vol.replica.vv, vv) } })
    })
  }

  /** Every object's version vector, a page at a time in vnode order (for a member comparing its replica with this one). */
  vectors (volume: number, after: number, limit: number): Array<{ vnode: number, unique: number, type: ObjectType, vv: Record<string, number>, conflict?: boolean }> {
    const out = []
    for (const { key, value } of this.vnodes.getRange({ start: [volume, after + 1], end: [volume + 1, 0], limit })) {
      out.push({ vnode: key[1], unique: value.unique, type: value.type, vv: value.vv ?? {}, ...(value.conflict ? { conflict: true } : {}) })
    }
    return out
  }

  /** The vector an object had when it was removed here, if it was. */
  tombstone (fid: Fid): Record<string, number> | null {
    const t = this.tombstones.get([fid.volume, fid.vnode])
    return t && t.unique === fid.unique ? t.vv : null
  }

  /** Raises an object's vector to count what `vv` counts (members found to hold the same updates, counted differently). */
  async setVector (fid: Fid, vv: Record<string, number>, dataVersion = 0): Promise<void> {
    await this.tx(() => {
      const v = this.get(fid)
      this.vnodes.put([fid.volume, fid.vnode], { ...v, vv: maxVv(v.vv ?? {}, vv), dataVersion: Math.max(v.dataVersion, dataVersion) })
    })
  }

  /** Marks an object in server/server conflict (members changed it apart): it refuses updates until repaired. */
  async markConflict (fid: Fid, on: boolean): Promise<void> {
    await this.tx(() => {
      const v = this.get(fid)
      const next = { ...v }
      if (on) next.conflict = true
      else delete next.conflict
      this.vnodes.put([fid.volume, fid.vnode], next)
    })
  }

  /**
   * Resolution: takes another member's version of a file-like object whole (its status
   * with its vector, and for a file its bytes), making it if this member lacks it.
   */
  async installObject (status: VnodeStatus, body: AsyncIterable<Buffer> | null, parent: number, expect: Record<string, number> | null = null): Promise<void> {
    const fid = status.fid
    const blob = body && status.type === 'file' ? await this.blobs.write(fid.volume, `${fid.vnode}.${fid.unique}`, body, status.size) : null
    let old: string | undefined
    try {
      await this.tx(() => {
        const cur = this.vnodes.get([fid.volume, fid.vnode])
        if (cur && cur.unique !== fid.unique) throw conflict(`vnode ${fid.vnode} holds another object here`)
        unchanged(cur, expect)
        old = cur?.blob
        const rec = fromStatus(status, cur?.parent ?? parent)
        if (blob) {
          rec.blob = blob.name
          this.blobs.keep(fid.volume, blob)
        } else if (status.type === 'file' && cur?.blob) { rec.blob = cur.blob; old = undefined }
        this.vnodes.put([fid.volume, fid.vnode], rec)
        this.numberedPast(fid.volume, fid.vnode)
        if (!cur) this.addUsage(fid.volume, status.type === 'file' ? status.size : 0, 1)
        else this.addUsage(fid.volume, (status.type === 'file' ? status.size : 0) - (cur.type === 'file' ? cur.size : 0), 0)
        this.tombstones.remove([fid.volume, fid.vnode])
      })
    } catch (err) {
      if (blob) await this.blobs.remove(fid.volume, blob.name)
      throw err
    }
    if (blob) await this.freeBlob(fid.volume, old)
  }

  /**
   * Resolution: takes another member's version of a directory — its status and its
   * entries. An entry it lacks goes as `fate` says: 'moved' (the object lives on under
   * another name there: the name goes, the object stays), 'removed' (a removal this
   * member had not seen), 'keep' (changed here since: kept, and the directory here is a
   * version of its own, newer than the one taken, for the others to take in turn). An entry only it has is made here as a stub if this member lacks the
   * object (an empty version with an empty vector, resolved in its turn). Returns the
   * names kept against the other's version.
   */
  async installDir (status: VnodeStatus, entries: Array<[string, Fid, ObjectType]>, fate: (fid: Fid) => 'moved' | 'removed' | 'keep', stub: (fid: Fid, type: ObjectType) => VnodeRecord, expect: Record<string, number> | null = null): Promise<string[]> {
    const fid = status.fid
    const kept: string[] = []
    const freed: string[] = []
    await this.tx(() => {
      const cur = this.vnodes.get([fid.volume, fid.vnode])
      if (cur && (cur.unique !== fid.unique || cur.type !== 'dir')) throw conflict(`vnode ${fid.vnode} holds another object here`)
      unchanged(cur, expect)
      const want = new Map(entries.map(([n, f, t]) => [n, { f, t }]))
      for (const { key, value } of this.dirents.getRange({ start: [fid.volume, fid.vnode, ''], end: [fid.volume, fid.vnode + 1, ''] })) {
        const name = key[2]
        const w = want.get(name)
        if (w && w.f.vnode === value[0] && w.f.unique === value[1]) { want.delete(name); continue }
        const child = { volume: fid.volume, vnode: value[0], unique: value[1] }
        const v = this.vnodes.get([fid.volume, value[0]])
        const f = fate(child)
        if (f === 'keep' || (f === 'removed' && v?.type === 'dir' && !this.isEmptyDir(child))) { kept.push(name); if (w) want.delete(name); continue }
        this.dirents.remove([fid.volume, fid.vnode, name])
        if (f === 'removed' && v && v.unique === child.unique) {
          const { freed: gone } = this.unlinkVnode(child, v, {})
          if (gone) freed.push(gone)
        }
      }
      // (Link counts of objects that gained or lost names come with their own resolution.)
      for (const [name, { f, t }] of want) {
        this.dirents.put([fid.volume, fid.vnode, name], [f.vnode, f.unique, t])
        if (this.vnodes.get([fid.volume, f.vnode])) continue
        this.vnodes.put([fid.volume, f.vnode], stub(f, t))
        this.numberedPast(fid.volume, f.vnode)
        this.addUsage(fid.volume, 0, 1)
        this.tombstones.remove([fid.volume, f.vnode])
      }
      const rec = fromStatus(status, cur?.parent ?? fid.vnode)
      // Entries kept beside the version taken make a version of its own, newer than every
      // other member's: they take it in turn (with the kept entries) instead of dropping them.
      if (kept.length) { this.stamp(fid.volume, rec, {}); rec.dataVersion++ }
      this.vnodes.put([fid.volume, fid.vnode], rec)
      if (!cur) this.addUsage(fid.volume, 0, 1)
    })
    for (const f of freed) await this.freeBlob(fid.volume, f)
    return kept
  }

  private attrFields (c: AttrChange): Partial<VnodeRecord> {
    const out: Partial<VnodeRecord> = {}
    if (c.mode !== undefined) out.mode = c.mode & 0o7777
    if (c.uid !== undefined) out.uid = c.uid
    if (c.gid !== undefined) out.gid = c.gid
    if (c.atimeMs !== undefined) { out.atimeMs = c.atimeMs; out.atimeNs = c.atimeNs ?? 0 }
    if (c.mtimeMs !== undefined) { out.mtimeMs = c.mtimeMs; out.mtimeNs = c.mtimeNs ?? 0 }
    return out
  }
}

/** Throws CONFLICT (with the server's version) unless `v` is at the expected version. */
function checkExpected (v: VnodeRecord, expect: Expect, kind: 'update/update' | 'update/remove'): void {
  if (expect.ifVersion === undefined || v.dataVersion === expect.ifVersion) return
  throw conflict(`changed on the server (version ${v.dataVersion}, expected ${expect.ifVersion})`, { kind, serverVersion: v.dataVersion })
}

/** `vv` with `n` more updates of each of `members`. */
function addTo (vv: Record<string, number> | undefined, members: string[], n: number): Record<string, number> {
  const out = { ...vv }
  for (const m of members) out[m] = (out[m] ?? 0) + n
  return out
}

/** A vnode record holding `s` (another member's status), under directory `parent`. */
function fromStatus (s: VnodeStatus, parent: number): VnodeRecord {
  const rec: VnodeRecord = {
    vnode: s.fid.vnode, unique: s.fid.unique, type: s.type, mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, nlink: s.nlink,
    size: s.size, atimeMs: s.atimeMs, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs, dataVersion: s.dataVersion, parent, vv: s.vv ?? {}, sid: s.sid,
  }
  if (s.history) rec.history = s.history
  if (s.atimeNs) rec.atimeNs = s.atimeNs
  if (s.mtimeNs) rec.mtimeNs = s.mtimeNs
  if (s.target !== undefined) rec.target = s.target
  if (s.rdev !== undefined) rec.rdev = s.rdev
  if (s.xattrs) rec.xattrs = s.xattrs
  if (s.conflict) rec.conflict = true
  if (s.acl) rec.acl = s.acl
  if (s.owner !== undefined) rec.owner = s.owner
  return rec
}

/** Resolution installs a version only over the one it was chosen against: an update that came since makes it wait (BUSY). */
function unchanged (cur: VnodeRecord | undefined, expect: Record<string, number> | null): void {
  if (expect === null || !cur) return
  if (compareVv(cur.vv, expect) !== 'equal') throw new AfsError('BUSY', `object ${cur.vnode} changed here while it was resolved`)
}
