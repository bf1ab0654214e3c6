// Placing a version at a path on the server, for repairs: every change conditional on
// the server still holding what the caller saw there (`was`), so a repair never
// overwrites a change it did not see.
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { invalid, type Fid, type LocateReply, type VnodeStatus } from '@afs-ts/common'
import type { ConflictKeeper } from './conflict-keeper.ts'
import type { Cell } from '../cell.ts'
import { isLocalFid, type ClientModifyLog } from '../cml.ts'
import { contentHash, type ConflictRecord, type Placed, type ServerSide, type Side } from './conflict.ts'

/** What putting a version back on the server needs of the cache manager. */
export interface PlacementDeps {
  readonly cml: Pick<ClientModifyLog, 'mapFid'>
  readonly conflicts: Pick<ConflictKeeper, 'serverSide' | 'dir'>
}

/** An object a repair put on the server. */
export class Placement {
  constructor (private readonly d: PlacementDeps) {}

  /**
   * Makes `dir`/`name` on the server hold `want`, provided it still holds `was` (as the
   * conflict recorded it). Returns the object left there.
   */
  async put (cell: Cell, c: ConflictRecord, dir: Fid, name: string, want: Side, was: ServerSide): Promise<Placed | null> {
    const out = await this.place(cell, c, dir, name, want, was)
    // The side's extended attributes go with it.
    if (out && want.xattrs) {
      const volume = cell.route(out.fid.volume)
      for (const [attr, value] of Object.entries(want.xattrs)) await volume.call('setxattr', { fid: out.fid, name: attr, value: Buffer.from(value, 'base64'), mode: 'either' })
    }
    return out
  }

  private async place (cell: Cell, c: ConflictRecord, dir: Fid, name: string, want: Side, was: ServerSide): Promise<Placed | null> {
    const volume = cell.route(dir.volume)
    if (want.type === 'file' && !want.copy) throw invalid(`${c.path}: no local contents were kept (the local change was to attributes only); keep the server's version`)
    if (c.kind === 'rename' && name === c.name && want.type !== 'none' && was.type === 'none') {
      const moved = await this.moveBack(cell, c, dir, name, want)
      if (moved) return moved
    }
    if (want.type === 'file' && was.type === 'file') return await this.store(cell, was.fid!, want, was.dataVersion!)
    if (want.type === 'dir' && was.type === 'dir') { await this.d.cml.mapFid(c.fid, was.fid!); return { fid: was.fid!, type: 'dir', dataVersion: was.dataVersion! } }
    if (was.type !== 'none') {
      await volume.call(was.type === 'dir' ? 'rmdir' : 'remove', { dir, name, ifFid: was.fid!, ifVersion: was.type === 'dir' ? undefined : was.dataVersion! })
    }
    const owner = { mode: c.local.mode ?? 0o644, uid: c.local.uid ?? 0, gid: c.local.gid ?? 0 }
    switch (want.type) {
      case 'none': return null
      case 'file': {
        const made = await volume.call('create', { dir, name, ...owner })
        return await this.store(cell, made.status.fid, want, made.status.dataVersion)
      }
      case 'symlink': {
        const made = await volume.call('symlink', { dir, name, target: want.target ?? '', uid: owner.uid, gid: owner.gid })
        return placed(made.status)
      }
      case 'dir': {
        // The directory's entries made here are conflicts of their own, resolved into it one by one.
        const made = await volume.call('mkdir', { dir, name, ...owner })
        await this.d.cml.mapFid(c.fid, made.status.fid)
        return placed(made.status)
      }
      case 'fifo': case 'socket': case 'chardev': case 'blockdev': {
        const made = await volume.call('mknod', { dir, name, type: want.type, rdev: want.rdev ?? 0, ...owner })
        return placed(made.status)
      }
      default: throw invalid(`${c.path}: a ${want.type} cannot be put back by afs repair`)
    }
  }

  /** Stores a file's contents into `fid`, only if it is still at `version`. */
  private async store (cell: Cell, fid: Fid, want: Side, version: number): Promise<Placed> {
    const size = (await stat(want.copy!)).size
    const r = await cell.route(fid.volume).upload('store', { fid, size, mtimeMs: want.mtimeMs ?? Date.now(), ifVersion: version },
      () => createReadStream(want.copy!, { highWaterMark: 1 << 20 }))
    return placed(r.status)
  }

  /** Keeping the local side of a rename: the server's object moves to the local name (and takes the wanted contents). */
  private async moveBack (cell: Cell, c: ConflictRecord, dir: Fid, name: string, want: Side): Promise<Placed | null> {
    if (isLocalFid(c.fid)) return null
    const volume = cell.route(dir.volume)
    let places: LocateReply['places']
    try { places = (await volume.call('locate', { fid: c.fid })).places } catch { return null }
    if (places.length !== 1) return null
    const r = await volume.call('rename', { fromDir: places[0].dir, fromName: places[0].name, toDir: dir, toName: name })
    if (want.type !== 'file' || !want.copy) return placed(r.moved)
    const now = await this.d.conflicts.serverSide(cell, dir, name, join(this.d.conflicts.dir, `${c.id}.moved`))
    if (now.fid === null || now.sha256 === await contentHash(want)) return placed(r.moved)
    return await this.store(cell, now.fid, want, now.dataVersion!)
  }
}

function placed (s: VnodeStatus): Placed {
  return { fid: s.fid, type: s.type, dataVersion: s.dataVersion }
}
