// Objects born in the log (local fids, Coda's "local fake fids"). Responsibilities:
//   1. when a create reaches the server, replace the local fid by the server's wherever
//      the cache has it — the object, the listings that name it, its container — so the
//      object stays cached as what it now is (Coda's ReplaceLocalFakeFid)
//   2. after a restart, finish replacements a crash cut short
//   3. after damaged cache metadata was set aside, rebuild from the log the objects and
//      names it holds, and show the log's changes in listings fetched from a server
// A container keeps its old name too until the log's record of the replacement is on
// disk (`settle`), so a crash at any point leaves a container where the log looks.
import { link, rename, rm, stat } from 'node:fs/promises'
import { makeLog, parseFid, sameFid, TYPE_BITS, type Fid, type ObjectType, type VnodeStatus } from '@afs-ts/common'
import { directories, isCreate, isLocalFid, madeType, type ClientModifyLog } from './cml.ts'
import type { ContainerStore } from './container-file.ts'
import { newObject, withAttrs, withXattr, type Dirent, type FsObject } from './fs-object.ts'
import { objectKey, type FsObjectTable } from './fs-object-table.ts'
import type { ReadFdCache } from './read-fd-cache.ts'

const log = makeLog('cache-manager')

/** What replacing and rebuilding local objects needs of the cache manager. */
export interface LocalObjectsDeps {
  table: FsObjectTable
  containers: ContainerStore
  readFds: ReadFdCache
  cml: ClientModifyLog
}

export class LocalObjects {
  /** Container names left behind by replacements, removed once the log has recorded them. */
  private stale: string[] = []

  constructor (private readonly d: LocalObjectsDeps) {}

  /**
   * The create of `local` reached the server as `server`: the cached object, its
   * container and the listings that name it (at `names`, or anywhere in those
   * directories when not there) now use the server fid.
   */
  async replace (cell: string, local: Fid, server: VnodeStatus, names: Array<{ dir: Fid, name: string }>): Promise<void> {
    const from = objectKey(cell, local)
    const to = objectKey(cell, server.fid)
    const o = this.d.table.get(from)
    if (!o) {
      // Removed since, but a store of it is still on its way: its container goes with the log.
      if (this.d.cml.referencesKey(to)) await this.linkContainer(from, to)
      return
    }
    const other = this.d.table.get(to)
    if (other && other !== o) this.d.table.delete(to) // looked up by its new fid meanwhile: ours has the data
    if (o.cachedVersion !== null && !await this.linkContainer(from, to)) {
      o.cachedVersion = null // its container is gone (a damaged cache): the server has the data now
      o.cachedBytes = 0
      o.dirty = false
    }
    const status = { ...o.status, fid: server.fid, dataVersion: server.dataVersion }
    if (o.cachedVersion !== null && !o.dirty) o.cachedVersion = server.dataVersion
    // A directory just made on the server is empty: ours lists what the log still adds to it.
    if (o.entries) o.listedVersion = server.dataVersion
    this.d.table.rekey(o, status)
    this.d.readFds.rekey(from, to)
    const map = (f: Fid) => sameFid(f, local) ? server.fid : f
    const byDir = new Map<FsObject, string[]>()
    for (const { dir, name } of names) {
      const p = this.d.table.get(objectKey(cell, this.d.cml.mapped(dir)))
      if (p?.entries) byDir.set(p, [...byDir.get(p) ?? [], name])
    }
    for (const [p, at] of byDir) {
      // (A whole listing is looked through only when none of those names holds it: a large directory's creates stay cheap.)
      if (!at.map(name => this.remapEntry(p, name, map)).includes(true)) this.remapEntries(p, map)
    }
  }

  /** Renames the fid the listing's entry `name` names, as `map` says; whether it did. */
  private remapEntry (p: FsObject, name: string, map: (f: Fid) => Fid): boolean {
    const e = p.entries?.get(name)
    if (!e) return false
    const fid = map(e.fid)
    if (fid === e.fid) return false
    const moved = { fid, type: e.type }
    p.entries!.set(name, moved)
    this.d.table.saveEntry(p, name, moved)
    return true
  }

  /** Renames the fids a cached listing names, as `map` says. */
  private remapEntries (p: FsObject, map: (f: Fid) => Fid): void {
    for (const name of p.entries?.keys() ?? []) this.remapEntry(p, name, map)
  }

  /** Gives a container its new name, keeping the old one until `settle`; false when there is none. */
  private async linkContainer (from: string, to: string): Promise<boolean> {
    const src = this.d.containers.path(from)
    const dest = this.d.containers.path(to)
    try {
      await link(src, dest)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT') return await exists(dest) // a replacement a crash cut short
      if (code !== 'EEXIST') throw err
      if (!await sameFile(src, dest)) { await rename(src, dest); return true }
    }
    this.stale.push(src)
    return true
  }

  /** Removes the old names of replaced containers. Only after the log recorded the replacements (cml.flushDone). */
  async settle (): Promise<void> {
    const names = this.stale.splice(0)
    for (const n of names) await rm(n, { force: true })
  }

  /** At start: finishes replacements whose create the log had already recorded as replayed. */
  async finish (): Promise<void> {
    for (const o of [...this.d.table.values()]) {
      if (!isLocalFid(o.status.fid) || o.conflict) continue
      const server = this.d.cml.mapped(o.status.fid)
      if (isLocalFid(server)) continue
      await this.replace(o.cell, o.status.fid, { ...o.status, fid: server, dataVersion: Math.max(1, o.status.dataVersion) }, [])
      o.listedVersion = -1 // the server's directory may have gained more since
      log.info(`${o.key}: finished replacing its local fid after a restart`)
    }
    // Listings still naming a replaced local fid (their update did not reach the disk).
    for (const p of this.d.table.values()) this.remapEntries(p, f => isLocalFid(f) ? this.d.cml.mapped(f) : f)
    for (const key of await this.d.containers.list()) {
      const at = key.indexOf(':')
      let fid: Fid
      try { fid = parseFid(key.slice(at + 1)) } catch { continue }
      if (!isLocalFid(fid) || this.d.table.get(key)) continue
      const server = this.d.cml.mapped(fid)
      if (isLocalFid(server)) continue
      const dest = this.d.containers.path(objectKey(key.slice(0, at), server))
      if (await exists(dest)) await rm(this.d.containers.path(key), { force: true })
      else await rename(this.d.containers.path(key), dest)
    }
    await this.settle()
  }

  /**
   * After the cache metadata was lost: the objects the log made or changed, rebuilt from
   * its records and containers, and the directories it changed with the names it gave
   * them — so what was done offline is visible at once, even with no server.
   */
  async rebuild (): Promise<number> {
    const made: FsObject[] = []
    const records = this.d.cml.all()
    for (const r of records) {
      // Objects the log made, files whose new contents it holds, and every directory it changed.
      const b = r.body
      const own = (isLocalFid(b.fid) && b.op !== 'remove' && b.op !== 'rmdir') || b.op === 'store' ? [b.fid] : []
      for (const fid of [...own, ...directories(b)]) {
        if (this.d.table.get(objectKey(r.cell, fid))) continue
        const o = await this.rebuilt(r.cell, fid)
        this.d.table.set(o)
        made.push(o)
      }
    }
    for (const o of made) {
      if (o.entries) this.overlay(o.cell, o.status.fid, o.entries)
      void this.d.table.saveListing(o)
    }
    if (made.length > 0) log.info(`rebuilt ${made.length} objects from the modification log`)
    return made.length
  }

  /** One object as the log's records about it describe it. */
  private async rebuilt (cell: string, fid: Fid): Promise<FsObject> {
    const mentions = this.d.cml.mentioning(cell, fid)
    const about = mentions.filter(r => sameFid(r.body.fid, fid))
    const asDir = mentions.some(r => directories(r.body).some(d => sameFid(d, fid)))
    const made = about.find(r => isCreate(r.body))
    const type: ObjectType = asDir ? 'dir' : (made && madeType(made.body)) ?? 'file'
    const t = made?.time ?? about[0]?.time ?? Date.now()
    const b = made?.body
    const status: VnodeStatus = {
      fid, type, mode: TYPE_BITS[type] | (b && 'mode' in b ? b.mode : type === 'file' ? 0o644 : 0o755),
      uid: b && 'uid' in b ? b.uid : 0, gid: b && 'gid' in b ? b.gid : 0, nlink: type === 'dir' ? 2 : 1,
      size: 0, atimeMs: t, mtimeMs: t, ctimeMs: t, dataVersion: 0,
    }
    if (b?.op === 'symlink') { status.target = b.target; status.size = Buffer.byteLength(b.target) }
    if (b?.op === 'mknod' && b.rdev) status.rdev = b.rdev
    const o = newObject(objectKey(cell, fid), cell, status)
    for (const r of about) {
      if (r.body.op === 'setattr') o.status = withAttrs(o.status, r.body.attrs)
      if (r.body.op === 'xattr') o.status = withXattr(o.status, r.body.attr, r.body.value)
      if (r.body.op === 'store' && r.body.base !== null) o.status.dataVersion = r.body.base
    }
    if (type === 'dir') { o.entries = new Map(); o.listedVersion = isLocalFid(fid) ? 0 : -1 }
    if (type === 'file') {
      const size = await stat(this.d.containers.path(o.key)).then(s => s.size, () => null)
      if (size !== null) {
        o.cachedVersion = o.status.dataVersion
        o.cachedBytes = size
        o.status.size = size
        o.dirty = about.some(r => r.body.op === 'store')
        o.writeGen = o.loggedGen = o.dirty ? 1 : 0
      }
    }
    return o
  }

  /** Applies the names the log still has to give or take in `dir` to a listing of it. */
  overlay (cell: string, dir: Fid, entries: Map<string, Dirent>): void {
    const here = (f: Fid) => sameFid(this.d.cml.mapped(f), dir)
    const typeOf = (f: Fid, fallback: ObjectType): ObjectType => this.d.table.get(objectKey(cell, this.d.cml.mapped(f)))?.status.type ?? fallback
    for (const r of this.d.cml.changingDirectory(cell, dir)) {
      const b = r.body
      const fid = this.d.cml.mapped(b.fid)
      const named = (name: string) => { const e = entries.get(name); return e !== undefined && sameFid(this.d.cml.mapped(e.fid), fid) }
      switch (b.op) {
        case 'create': case 'mkdir': case 'symlink': case 'mknod':
          if (here(b.dir)) entries.set(b.name, { fid, type: madeType(b)! })
          break
        case 'link':
          if (here(b.dir)) entries.set(b.name, { fid, type: typeOf(fid, 'file') })
          break
        case 'remove': case 'rmdir':
          if (here(b.dir) && named(b.name)) entries.delete(b.name)
          break
        case 'rename': {
          const type = entries.get(b.fromName)?.type ?? typeOf(fid, 'file')
          if (here(b.fromDir) && named(b.fromName)) entries.delete(b.fromName)
          if (here(b.toDir)) entries.set(b.toName, { fid, type })
          break
        }
        case 'store': case 'setattr': case 'xattr': break
        default: { const never: never = b; return never }
      }
    }
  }
}

async function exists (path: string): Promise<boolean> {
  return await stat(path).then(() => true, () => false)
}

async function sameFile (a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([stat(a), stat(b)])
  return x.ino === y.ino && x.dev === y.dev
}
