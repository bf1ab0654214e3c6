// Server/server conflicts of replicated volumes, as the cache manager shows and repairs
// them for `afs repair`. Every member's version is copied here (to be shown and diffed,
// and so that a repair cut off midway leaves each version on this disk as well as on its
// member); the repairs themselves are the servers': every member takes one member's
// version, or a merged file the user made.
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import { fetchWholeDir, fidKey, invalid, type Fid, type ObjectType, type VnodeStatus } from '@afs-ts/common'
import type { Cell } from '../cell.ts'
import type { FsObject } from '../fs-object.ts'
import type { FsObjectTable } from '../fs-object-table.ts'
import type { ObjectCache } from '../object-cache.ts'
import type { ConflictKeeper } from './conflict-keeper.ts'
import { fingerprint } from './conflict.ts'

/** Versions larger than this are not copied here to be shown (their sizes and hashes still are). */
const COPY_MAX_BYTES = 64 * 1024 * 1024

/** One member's version of an object in server/server conflict. */
export interface ReplicaVersion {
  server: string
  reachable: boolean
  vv: Record<string, number> | null
  type: ObjectType | null
  size: number | null
  mtimeMs: number | null
  /** The client whose update made this version. */
  by: string | null
  sha256: string | null
  /** A copy of its bytes on this disk (files), or null. */
  copy: string | null
  /** Its entries (directories). */
  entries?: string[]
  error?: string
}

export interface ReplicaRepairDeps {
  readonly objects: Pick<ObjectCache, 'cell'>
  readonly table: Pick<FsObjectTable, 'values'>
  readonly conflicts: Pick<ConflictKeeper, 'locate'>
}

export class ReplicaRepair {
  /** `dir`: where the members' versions are copied. */
  constructor (private readonly d: ReplicaRepairDeps, private readonly dir: string) {}

  /** Cached objects the servers marked in server/server conflict, with every member's version as it is now (not copied). */
  async list (): Promise<Array<{ kind: 'server/server', path: string, fid: string, type: ObjectType, versions: ReplicaVersion[] }>> {
    const out = []
    for (const o of this.d.table.values()) {
      if (!o.status.conflict || o.unlinked) continue
      const cell = this.d.objects.cell(o.cell)
      out.push({ kind: 'server/server' as const, path: this.d.conflicts.locate(cell, o.status.fid).path, fid: fidKey(o.status.fid), type: o.status.type, versions: await this.versions(cell, o.status.fid, false) })
    }
    return out
  }

  /** An object's server/server conflict: every member's version, each copied here. */
  async show (cell: Cell, obj: FsObject): Promise<{ kind: 'server/server', path: string, fid: string, type: ObjectType, versions: ReplicaVersion[] }> {
    this.needConflict(obj)
    return { kind: 'server/server', path: this.d.conflicts.locate(cell, obj.status.fid).path, fid: fidKey(obj.status.fid), type: obj.status.type, versions: await this.versions(cell, obj.status.fid, true) }
  }

  /** Every member takes member `keep`'s version. */
  async keep (cell: Cell, obj: FsObject, keep: string): Promise<void> {
    this.needConflict(obj)
    await this.versions(cell, obj.status.fid, true)
    await cell.route(obj.status.fid.volume).call('repairReplica', { fid: obj.status.fid, keep })
    obj.cbExpiresAt = 0
    await this.forget(obj.status.fid)
  }

  /** Every member takes the file `merged` (the user's merge of the versions) as the object's one version. */
  async merge (cell: Cell, obj: FsObject, merged: string): Promise<void> {
    this.needConflict(obj)
    if (obj.status.type !== 'file') throw invalid('--merge takes a file in place of a file: a directory in server/server conflict is repaired with --keep-replica HOST:PORT')
    const st = await stat(merged).catch(() => { throw invalid(`${merged}: no such file`) })
    if (!st.isFile()) throw invalid(`${merged} is not a regular file`)
    await this.versions(cell, obj.status.fid, true)
    const volume = await cell.volumeById(obj.status.fid.volume)
    await volume.preferred.upload('repairReplica', { fid: obj.status.fid, merged: { size: st.size, mtimeMs: Date.now() } }, () => createReadStream(merged))
    obj.cbExpiresAt = 0
    await this.forget(obj.status.fid)
  }

  private needConflict (obj: FsObject): void {
    if (!obj.status.conflict) throw invalid('that object is in no server/server conflict (afs repair list shows them)')
  }

  /** Each member's version, asked of that member; `copy`: the bytes of each file copied here. */
  private async versions (cell: Cell, fid: Fid, copy: boolean): Promise<ReplicaVersion[]> {
    const volume = await cell.volumeById(fid.volume)
    const dir = join(this.dir, fidKey(fid))
    if (copy) await mkdir(dir, { recursive: true })
    return await Promise.all(volume.vsg.map(async (link): Promise<ReplicaVersion> => {
      const v: ReplicaVersion = { server: link.address, reachable: false, vv: null, type: null, size: null, mtimeMs: null, by: null, sha256: null, copy: null }
      try {
        const { status } = await link.call('fetchStatus', { fid })
        Object.assign(v, describeStatus(status), { reachable: true })
        if (status.type === 'dir') {
          v.entries = (await fetchWholeDir(link, fid)).entries.map(([name]) => name).sort()
        } else if (copy && status.type === 'file' && status.size <= COPY_MAX_BYTES) {
          const path = join(dir, link.address.replace(/[^0-9A-Za-z.-]/g, '_'))
          const { body } = await link.download('fetchData', { fid })
          await pipeline(Readable.from(body), createWriteStream(path))
          v.copy = path
          v.sha256 = (await fingerprint(path)).sha256
        }
      } catch (err) {
        v.error = (err as Error).message
      }
      return v
    }))
  }

  /** Drops the copies of a repaired object's versions. */
  async forget (fid: Fid): Promise<void> {
    await rm(join(this.dir, fidKey(fid)), { recursive: true, force: true })
  }
}

function describeStatus (s: VnodeStatus): Partial<ReplicaVersion> {
  return { vv: s.vv ?? null, type: s.type, size: s.size, mtimeMs: s.mtimeMs, by: s.sid?.split(':')[0] ?? null }
}

