// Reintegration on the server (Coda's ViceReintegrate): applies one record of a
// client's modification log at a time, in the client's order. Responsibilities:
//   1. apply a record only when the object still has the version the change was based
//      on; otherwise answer CONFLICT with its kind, changing nothing
//   2. apply each record exactly once: the last applied sequence number of every client
//      is written in the same transaction as the change, so a replay cut by a crash or a
//      lost reply resumes without applying a record twice
import type { Database } from 'lmdb'
import {
  conflict, notFound, type CmlRecordBody, type ConflictKind, type Fid, type ReplayReply, type VnodeStatus, sameFid,
} from '@afs-ts/common'
import type { InboundStream } from '@afs-ts/common'
import type { VolumeStore, Within } from './volume-store.ts'
import { toStatus } from './vnode.ts'

interface Applied { seq: number, status: VnodeStatus | null }
/** Results of this many of a client's latest records are kept, for replies lost on the way. */
const RESULTS_KEPT = 1000

export class Replayer {
  private readonly applied: Database<Applied, string>
  private readonly results: Database<VnodeStatus | null, [string, number]>

  constructor (private readonly store: VolumeStore) {
    this.applied = store.root.openDB({ name: 'replayed' })
    this.results = store.root.openDB({ name: 'replay-results' })
  }

  /** Applies `record` for `client` unless it already was; returns the fids whose callbacks must break. */
  async apply (client: string, seq: number, record: CmlRecordBody, body: InboundStream | null): Promise<{ reply: ReplayReply, changed: Fid[] }> {
    const last = this.applied.get(client)
    if (last && last.seq >= seq) return { reply: { seq, status: this.results.get([client, seq]) ?? null, duplicate: true }, changed: [] }
    let status: VnodeStatus | null = null
    const volume = record.fid.volume
    const mark: Within = rec => {
      status = rec ? toStatus(volume, rec) : null
      this.applied.put(client, { seq, status })
      this.results.put([client, seq], status)
      this.results.remove([client, seq - RESULTS_KEPT])
    }
    const changed = await this.perform(client, record, body, mark)
    return { reply: { seq, status, duplicate: false }, changed }
  }

  private async perform (client: string, r: CmlRecordBody, body: InboundStream | null, mark: Within): Promise<Fid[]> {
    const s = this.store
    switch (r.op) {
      case 'create': case 'mkdir': case 'symlink': {
        const there = s.lookup(r.dir, r.name)
        // Two clients made the same directory: one directory, with both sides' entries in it.
        if (there && r.op === 'mkdir' && s.get(there).type === 'dir') { await s.record(() => mark(s.get(there))); return [] }
        if (there) throw conflicted('name/name', `${r.name} was created on the server too`)
        const type = r.op === 'create' ? 'file' : r.op === 'mkdir' ? 'dir' : 'symlink'
        const mode = r.op === 'symlink' ? 0o777 : r.mode
        await s.create(r.dir, r.name, { type, mode, uid: r.uid, gid: r.gid, target: r.op === 'symlink' ? r.target : undefined, creator: client }, mark)
        return [r.dir]
      }
      case 'store': {
        this.checkBase(r.fid, r.base, 'remove/update')
        if (!body) throw conflicted('update/update', 'store without data')
        // The base is checked again inside the transaction: a store may land in between.
        await s.store(r.fid, body, r.size, r.mtimeMs, mark, { ifVersion: r.base ?? undefined })
        return [r.fid]
      }
      case 'setattr': {
        this.checkBase(r.fid, r.base, 'remove/update')
        await s.setattr(r.fid, r.attrs, mark)
        return [r.fid]
      }
      case 'remove': case 'rmdir': {
        const now = s.lookup(r.dir, r.name)
        if (!now) { await s.record(mark); return [] } // removed on both sides: nothing to do
        if (!sameFid(now, r.fid)) throw conflicted('update/remove', `${r.name} names another object on the server now`)
        this.checkBase(r.fid, r.base, 'update/remove', true)
        await s.remove(r.dir, r.name, r.op === 'rmdir', mark, { ifFid: r.fid, ifVersion: r.op === 'remove' ? r.base ?? undefined : undefined })
        return [r.dir, r.fid]
      }
      case 'rename': {
        const now = s.lookup(r.fromDir, r.fromName)
        if (!now || !sameFid(now, r.fid)) throw conflicted('rename', `${r.fromName} was renamed or removed on the server`)
        this.checkBase(r.fid, r.base, 'rename', true)
        const target = s.lookup(r.toDir, r.toName)
        if (target && !sameFid(target, r.fid)) throw conflicted('rename', `${r.toName} was created on the server too`)
        await s.rename(r.fromDir, r.fromName, r.toDir, r.toName, mark)
        return [r.fromDir, r.toDir, r.fid]
      }
      case 'link': {
        if (s.lookup(r.dir, r.name)) throw conflicted('name/name', `${r.name} was created on the server too`)
        await s.link(r.dir, r.name, r.fid, mark)
        return [r.dir, r.fid]
      }
      default: { const never: never = r; throw notFound(`unknown record ${JSON.stringify(never)}`) }
    }
  }

  /** The object must still be at version `base` (a null base: the client made it, nothing to check). */
  private checkBase (fid: Fid, base: number | null, missing: ConflictKind, directoryOk = false): void {
    let v
    try { v = this.store.get(fid) } catch { throw conflicted(missing, 'the object was removed on the server') }
    if (base === null || (directoryOk && v.type === 'dir')) return
    if (v.dataVersion !== base) throw conflicted(missing === 'remove/update' ? 'update/update' : missing, `changed on the server (version ${v.dataVersion}, the change was based on ${base})`, v.dataVersion)
  }
}

function conflicted (kind: ConflictKind, message: string, serverVersion?: number) {
  return conflict(`${kind} conflict: ${message}`, { kind, serverVersion })
}
