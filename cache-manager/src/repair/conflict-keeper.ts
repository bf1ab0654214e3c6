// Keeping conflicts (the part of Coda's repair that happens at reintegration).
// Responsibilities:
//   1. when a replayed record does not apply, keep what each side has at the path —
//      local contents, the server's object and contents — and the common ancestor
//   2. mark the local object so it shows as a dangling symlink until repaired
//   3. read the server's side again when it changed after the conflict was found
import { createWriteStream } from 'node:fs'
import { copyFile, mkdir, rm } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { randomBytes } from 'node:crypto'
import {
  AfsError, isSpecial, makeLog, parseFid, rootFid, sameFid,
  type CmlRecordBody, type ConflictKind, type Fid, type LookupReply, type VnodeStatus,
} from '@afs-ts/common'
import type { ContainerStore } from '../container-file.ts'
import type { ObjectCache } from '../object-cache.ts'
import type { Ancestors } from './ancestors.ts'
import type { Cell } from '../cell.ts'
import { isLocalFid, type ClientModifyLog, type CmlRecord } from '../cml.ts'
import type { FsObject } from '../fs-object.ts'
import { objectKey, type FsObjectTable } from '../fs-object-table.ts'
import { fingerprint, nothingThere, type Ancestor, type ConflictRecord, type LocalSide, type ServerSide } from './conflict.ts'

const log = makeLog('conflicts')
type Parents = Map<string, [FsObject, string]>

/** What keeping conflicts needs of the cache manager. */
export interface ConflictKeeperDeps {
  readonly objects: Pick<ObjectCache, 'cell'>
  readonly table: FsObjectTable
  readonly cml: ClientModifyLog
  readonly containers: Pick<ContainerStore, 'path'>
  readonly ancestors: Pick<Ancestors, 'take'>
  readonly opts: { cacheDir: string }
  readonly clientId: string
}

export class ConflictKeeper {
  readonly dir: string

  constructor (private readonly d: ConflictKeeperDeps) {
    this.dir = join(d.opts.cacheDir, 'conflicts')
  }

  /**
   * Keeps both versions of the object a record (`body`: with server fids) could not
   * change, and marks it. When the server already has exactly what the change made (the
   * same change made on both sides), there is no conflict: returns the server object's
   * status instead. (One of ours applied before its reply was lost never gets here: the
   * server knows it by its number.)
   */
  async flag (cell: Cell, r: CmlRecord, body: CmlRecordBody, err: unknown): Promise<ConflictRecord | { same: VnodeStatus }> {
    await mkdir(this.dir, { recursive: true })
    const e = AfsError.from(err)
    // A missing object or directory: the server removed what the change needed.
    const kind: ConflictKind = (e.data as { kind?: ConflictKind } | undefined)?.kind ?? (e.code === 'NOT_FOUND' ? 'remove/update' : 'update/remove')
    const id = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`
    const key = objectKey(cell.name, r.body.fid)
    const parents = this.parents(cell)
    const where = this.locate(cell, r.body.fid, parents)
    const dir = 'dir' in body ? body.dir : 'toDir' in body ? body.toDir : where.dir
    const name = 'name' in body ? body.name : 'toName' in body ? body.toName : where.name
    // A name from the record itself beats a lookup: the object may have left every listing.
    const path = dir && name !== null && ('name' in body || 'toName' in body) ? joinPath(this.locate(cell, dir, parents).path, name) : where.path
    const o = this.d.table.get(key)
    const local = await this.localSide(r, o, join(this.dir, `${id}.local`))
    withChange(local, body) // the cached status may be the server's again by now: the record says what was set
    const { side: server, status } = dir && name !== null ? await this.readServer(cell, dir, name, join(this.dir, `${id}.server`)) : { side: nothingThere(), status: null }
    if (status && sameChange(kind, body, local, server)) {
      for (const f of [local.copy, server.copy]) if (f) await rm(f, { force: true })
      log.info(`${path}: the server has this change already (${kind}); no conflict`)
      return { same: status }
    }
    if (body.op === 'rename') server.movedTo = await this.places(cell, body.fid)
    const base = 'base' in body && body.op === 'store' ? await this.ancestor(key, body.base, join(this.dir, `${id}.base`)) : null
    const c: ConflictRecord = {
      id, cell: cell.name, kind, path, dir, name, fid: r.body.fid, time: Date.now(), message: e.message,
      local, server, base, localCopy: local.copy, serverCopy: server.copy,
    }
    await this.d.cml.addConflict(c)
    if (o) { o.conflict = { kind, id }; void this.d.table.save(o) }
    log.warn(`conflict (${kind}) on ${path}: ${e.message}; local version kept${local.copy ? ` in ${local.copy}` : ''}`)
    return c
  }

  /**
   * A file written through a handle opened before its conflict was found, and closed
   * after: the conflict's local side takes those bytes too (the record they are logged
   * in may be absorbed into the conflict).
   */
  async keepLater (o: FsObject): Promise<void> {
    const c = o.conflict && this.d.cml.conflict(o.conflict.id)
    if (!c || o.status.type !== 'file') return
    const dest = join(this.dir, `${c.id}.local`)
    await copyFile(this.d.containers.path(o.key), dest)
    const local = { ...c.local, type: 'file' as const, copy: dest, mtimeMs: o.localMtimeMs || c.local.mtimeMs, ...await fingerprint(dest) }
    await this.d.cml.addConflict({ ...c, local, localCopy: dest })
    log.info(`${c.path}: later writes kept in its conflict's local version`)
  }

  /** A later record of a conflicted object, absorbed into its conflict: its local side takes the change. */
  async absorb (o: FsObject, body: CmlRecordBody): Promise<void> {
    const c = o.conflict && this.d.cml.conflict(o.conflict.id)
    if (!c || (body.op !== 'xattr' && body.op !== 'setattr')) return
    const local = { ...c.local, ...(c.local.xattrs ? { xattrs: { ...c.local.xattrs } } : {}) }
    withChange(local, body)
    await this.d.cml.addConflict({ ...c, local })
  }

  /** Reads the server's side of `c` again (it changed since); returns the updated conflict. */
  async refresh (c: ConflictRecord): Promise<ConflictRecord> {
    if (!c.dir || c.name === null) return c
    const cell = this.d.objects.cell(c.cell)
    const copy = join(this.dir, `${c.id}.server`)
    await rm(copy, { force: true })
    const server = await this.serverSide(cell, this.d.cml.mapped(c.dir), c.name, copy)
    if (c.server.movedTo) server.movedTo = await this.places(cell, c.fid)
    const fresh = { ...c, server, serverCopy: server.copy }
    await this.d.cml.addConflict(fresh)
    return fresh
  }

  private async localSide (r: CmlRecord, o: FsObject | undefined, dest: string): Promise<LocalSide> {
    const side: LocalSide = {
      type: 'none', size: null, sha256: null, mtimeMs: null, copy: null, op: r.body.op, changedAt: r.time,
      client: `${hostname()} (${this.d.clientId.slice(0, 8)})`,
    }
    if (r.body.op === 'remove' || r.body.op === 'rmdir' || !o) return side
    const s = o.status
    Object.assign(side, { type: s.type, mtimeMs: o.localMtimeMs || s.mtimeMs, mode: s.mode & 0o7777, uid: s.uid, gid: s.gid })
    if (s.type === 'symlink') side.target = s.target
    if (s.rdev) side.rdev = s.rdev
    if (s.xattrs) side.xattrs = base64(s.xattrs)
    if (s.type === 'file' && o.cachedVersion !== null) {
      try {
        await copyFile(this.d.containers.path(o.key), dest)
      } catch (err) {
        // Any other failure (a full disk) stops the replay here, to be tried again: the record stays.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
        log.error(`conflict on ${o.key}: its container is gone, no local contents to keep`)
        return side
      }
      Object.assign(side, await fingerprint(dest), { copy: dest })
    }
    return side
  }

  /** What the server has at `dir`/`name`: the object, and a copy of a file's contents in `dest`. */
  async serverSide (cell: Cell, dir: Fid, name: string, dest: string): Promise<ServerSide> {
    return (await this.readServer(cell, dir, name, dest)).side
  }

  private async readServer (cell: Cell, dir: Fid, name: string, dest: string): Promise<{ side: ServerSide, status: VnodeStatus | null }> {
    const none = { side: nothingThere(), status: null }
    const found = await this.lookup(cell, dir, name)
    if (!found?.fid || !found.status) return none
    const fid = found.fid
    const volume = cell.route(fid.volume)
    let status = found.status
    let copy: string | null = null
    try {
      if (status.type === 'file') {
        const { result, body } = await volume.download('fetchData', { fid })
        await pipeline(body, createWriteStream(dest))
        status = result.status
        copy = dest
      }
    } catch (err) {
      if (AfsError.from(err).code === 'NOT_FOUND') return none // removed meanwhile
      throw err
    }
    const side: ServerSide = { type: status.type, fid, dataVersion: status.dataVersion, size: status.size, sha256: null, mtimeMs: status.mtimeMs, copy }
    if (copy) side.sha256 = (await fingerprint(copy)).sha256
    if (status.target !== undefined) side.target = status.target
    if (status.rdev) side.rdev = status.rdev
    if (status.xattrs) side.xattrs = base64(status.xattrs)
    return { side, status }
  }

  private async ancestor (key: string, version: number | null, dest: string): Promise<Ancestor | null> {
    if (version === null || !await this.d.ancestors.take(key, version, dest)) return null
    return { dataVersion: version, copy: dest, ...await fingerprint(dest) }
  }

  /** Where the server has an object now, as paths (best effort, from cached listings). */
  private async places (cell: Cell, fid: Fid): Promise<string[]> {
    if (isLocalFid(fid)) return []
    try {
      const r = await cell.route(fid.volume).call('locate', { fid })
      return r.places.map(p => joinPath(this.locate(cell, p.dir).path, p.name))
    } catch { return [] }
  }

  /** Every cached object's directory and name in a cell, from cached listings. */
  private parents (cell: Cell): Parents {
    const parents: Parents = new Map()
    for (const o of this.d.table.values()) {
      if (o.cell !== cell.name || !o.entries) continue
      for (const [n, d] of o.entries) parents.set(objectKey(cell.name, d.fid), [o, n])
    }
    return parents
  }

  /**
   * Where an object is in its cell (best effort): from cached listings, or where each
   * object on the way was last seen; its path, directory and name.
   */
  locate (cell: Cell, fid: Fid, parents = this.parents(cell)): { path: string, dir: Fid | null, name: string | null } {
    const up = (key: string): { key: string, dir: Fid, name: string } | null => {
      const p = parents.get(key)
      if (p) return { key: p[0].key, dir: p[0].status.fid, name: p[1] }
      const place = this.d.table.get(key)?.place
      return place ? { key: objectKey(cell.name, place.dir), dir: place.dir, name: place.name } : null
    }
    const first = up(objectKey(cell.name, fid))
    const parts: string[] = []
    let key = objectKey(cell.name, fid)
    for (let hops = 0; hops < 1000; hops++) {
      const u = up(key)
      if (u) { parts.unshift(u.name); key = u.key; continue }
      // A volume's root: its path goes on from the mount point that leads to it.
      const mount = this.mountPointOf(cell, key)
      if (!mount) break
      key = mount
    }
    return { path: `/${cell.name}/${parts.join('/')}`, dir: first?.dir ?? null, name: first?.name ?? null }
  }

  /** The cached mount point leading to the volume whose root is `key`, if `key` is one (not the cell's root volume's). */
  private mountPointOf (cell: Cell, key: string): string | null {
    const fid = parseFid(key.slice(cell.name.length + 1))
    const name = cell.volumes.get(fid.volume)?.name
    if (!sameFid(fid, rootFid(fid.volume)) || name === undefined || name === cell.rootVolume) return null
    for (const o of this.d.table.values()) if (o.cell === cell.name && o.status.type === 'mount' && o.status.target === name) return o.key
    return null
  }

  /** What the server has at `dir`/`name` now (null when the directory is gone). */
  async lookup (cell: Cell, dir: Fid, name: string): Promise<LookupReply | null> {
    if (isLocalFid(dir)) return null
    try {
      return await cell.route(dir.volume).call('lookup', { dir, name })
    } catch (err) {
      if (AfsError.from(err).code === 'NOT_FOUND') return null
      throw err
    }
  }
}

/** Whether the server's side is exactly what the local change made (then it is no conflict). */
function sameChange (kind: ConflictKind, body: CmlRecordBody, local: LocalSide, server: ServerSide): boolean {
  // The name already leads to the very object (renamed or hard-linked there already).
  if (body.op === 'rename' || body.op === 'link') return server.fid !== null && sameFid(server.fid, body.fid)
  // Contents compare only for a store or a create (a chmod is more than contents).
  if (!(kind === 'update/update' && body.op === 'store') && !(kind === 'name/name' && (body.op === 'create' || body.op === 'symlink' || body.op === 'mknod'))) return false
  if (local.type === 'file') return server.type === 'file' && local.sha256 !== null && local.sha256 === server.sha256
  if (local.type === 'symlink') return server.type === 'symlink' && local.target === server.target
  if (local.type !== 'none' && isSpecial(local.type)) return server.type === local.type && (local.rdev ?? 0) === (server.rdev ?? 0)
  return false
}

/** A local side with the attribute change of a record (xattr, setattr) applied. */
function withChange (side: LocalSide, body: CmlRecordBody): void {
  if (body.op === 'xattr') {
    const xattrs = { ...side.xattrs }
    if (body.value) xattrs[body.attr] = base64Of(body.value)
    else delete xattrs[body.attr]
    side.xattrs = xattrs
  }
  if (body.op === 'setattr') {
    if (body.attrs.mode !== undefined) side.mode = body.attrs.mode & 0o7777
    if (body.attrs.uid !== undefined) side.uid = body.attrs.uid
    if (body.attrs.gid !== undefined) side.gid = body.attrs.gid
  }
}

function base64Of (v: Uint8Array): string {
  return Buffer.from(v).toString('base64')
}

function base64 (x: Record<string, Uint8Array>): Record<string, string> {
  return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, base64Of(v)]))
}

function joinPath (dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`
}
