// Reintegration on the server (Coda's ViceReintegrate): applies the records of a
// client's modification log in the client's order, one at a time or a batch of them in
// one transaction. Responsibilities:
//   1. apply a record only when the object still has the version the change was based
//      on; otherwise answer CONFLICT with its kind, changing nothing
//   2. apply each of a client's changes exactly once, whichever way it comes: every
//      change a client numbers (a replayed record, or a connected request carrying the
//      number its record would have, Coda's StoreId) is remembered with its result in the
//      same transaction as the change, so a replay cut by a crash or a lost reply — or
//      of a request whose sender gave up waiting and logged it — answers with that
//      result instead of applying the change twice
import type { Database } from 'lmdb'
import {
  AfsError, badRequest, conflict, fidKey, isCreate, notFound, rebased, stale, subject, withFidsMapped, sameFid,
  type CmlRecordBody, type ConflictKind, type Fid, type ReplayBatchReply, type ReplayReply, type VnodeStatus,
} from '@afs-ts/common'
import type { InboundStream } from '@afs-ts/common'
import type { WrittenBlob } from './blob-store.ts'
import type { Update, VolumeStore, Within } from './volume-store.ts'
import { newObject, toStatus } from './vnode.ts'
import { ownerNow } from './access.ts'

/** Results of a client's changes are kept for this many of its numbers below its newest. */
const RESULTS_KEPT = 1000

/** A store's new contents: streamed in with the request, or a blob written already (a batch's). */
type Contents = InboundStream | { written: WrittenBlob }

/** A record of a batch, with its file's bytes when it is a store. */
export interface BatchItem { seq: number, record: CmlRecordBody, data?: Uint8Array }

/** What the file server does around each record of a batch. */
export interface BatchHooks {
  /** Throws when the asker may not make this change (the record as it will be applied). */
  check (record: CmlRecordBody): void
  /** The update context of record `seq`. */
  update (seq: number): Update
  /** After a record was applied (or found applied before). */
  applied (record: CmlRecordBody, reply: ReplayReply, u: Update): void
}

/** A client's numbered change: its number, and the number of the removal a replacing rename also stands for. */
export interface Numbered { client: string, seq: number, removeSeq?: number }

export class Replayer {
  /** Per client: every number at or below this is settled (applied, or never to be). */
  private readonly floors: Database<{ seq: number }, string>
  private readonly results: Database<VnodeStatus | null, [string, number]>
  private readonly busy = new Map<string, Promise<unknown>>()

  constructor (private readonly store: VolumeStore) {
    this.floors = store.root.openDB({ name: 'replayed' })
    this.results = store.root.openDB({ name: 'replay-results' })
  }

  /** Applies `record` for `client` unless it already was; returns the fids whose callbacks must break. */
  async apply (client: string, seq: number, record: CmlRecordBody, body: Contents | null, u: Update = {}): Promise<{ reply: ReplayReply, changed: Fid[] }> {
    return await this.applyRecord(client, seq, record, body, u, false)
  }

  /** `held`: the caller holds the record's number (a batch does), so nothing else applies it meanwhile. */
  private async applyRecord (client: string, seq: number, record: CmlRecordBody, body: Contents | null, u: Update, held: boolean): Promise<{ reply: ReplayReply, changed: Fid[] }> {
    const r = await this.once({ client, seq }, record.fid.volume, u, v => this.perform(record, body, v), held)
    if ('duplicate' in r) return { reply: { seq, status: r.duplicate, duplicate: true }, changed: [] }
    return { reply: { seq, status: r.status, duplicate: false }, changed: r.done }
  }

  /**
   * Applies `client`'s records of `volume` in order, each as apply() does, until one
   * fails. A record may name the local fid of a create earlier in the batch (it gets the
   * fid the create made) and be based on the version an earlier record of its object
   * replaced (it is based on the new one): the rules the client follows between single
   * replays. The stores' blobs are written first, all at once, so their syncs overlap;
   * then all records apply in one transaction, with one commit. The batch holds its
   * numbers meanwhile: a connected request standing for one of them waits for it.
   */
  async applyBatch (client: string, volume: number, items: BatchItem[], hooks: BatchHooks): Promise<ReplayBatchReply & { changed: Fid[] }> {
    for (const it of items) {
      if (it.record.fid.volume !== volume) throw badRequest(`record ${it.seq} is not of volume ${volume}`)
      if ((it.record.op === 'store') !== (it.data !== undefined)) throw badRequest(`record ${it.seq}: a batch's stores, and only they, carry their bytes`)
      if (it.record.op === 'store' && it.data?.byteLength !== it.record.size) throw badRequest(`record ${it.seq}: ${it.data?.byteLength} bytes, ${it.record.size} declared`)
    }
    const blobs = await Promise.allSettled(items.map(async it => it.data && it.record.op === 'store'
      ? await this.store.blobs.write(volume, `${it.record.fid.vnode}.${it.record.fid.unique}`, [Buffer.from(it.data.buffer, it.data.byteOffset, it.data.byteLength)], it.data.byteLength)
      : null))
    const unused = new Set(blobs.flatMap(b => b.status === 'fulfilled' && b.value ? [b.value.name] : []))
    const made = new Map<string, Fid>()
    const replaced: Array<{ fid: Fid, from: number | null, to: number }> = []
    const out: ReplayBatchReply & { changed: Fid[] } = { results: [], failed: null, changed: [] }
    const release = await this.hold(items.map(it => `${client}:${it.seq}`))
    try {
      await this.store.inOneTransaction(async () => {
        for (const [i, it] of items.entries()) {
          let record = withFidsMapped(it.record, f => made.get(fidKey(f)) ?? f)
          for (const r of replaced) record = rebased(record, r.fid, r.from, r.to) ?? record
          const blob = blobs[i]
          try {
            if (blob.status === 'rejected') throw blob.reason
            hooks.check(record)
            const u = hooks.update(it.seq)
            const { reply, changed } = await this.applyRecord(client, it.seq, record, blob.value ? { written: blob.value } : null, u, true)
            if (blob.value && !reply.duplicate) unused.delete(blob.value.name)
            out.results.push(reply)
            out.changed.push(...changed)
            hooks.applied(record, reply, u)
            if (!reply.status) continue
            if (isCreate(it.record)) made.set(fidKey(it.record.fid), reply.status.fid)
            else if ('base' in record) replaced.push({ fid: subject(record), from: record.base, to: reply.status.dataVersion })
          } catch (err) {
            out.failed = { seq: it.seq, error: AfsError.from(err).toWire() }
            break
          }
        }
      })
    } finally {
      release()
      for (const name of unused) await this.store.blobs.remove(volume, name)
    }
    return out
  }

  /**
   * Takes the numbers `keys` (client:seq) once no change of them is under way; returns
   * the function that lets them go. A change of one of them arriving meanwhile waits.
   */
  private async hold (keys: string[]): Promise<() => void> {
    for (let going = keys.flatMap(k => this.busy.get(k) ?? []); going.length > 0; going = keys.flatMap(k => this.busy.get(k) ?? [])) {
      await Promise.allSettled(going)
    }
    let release!: () => void
    const held = new Promise<void>(resolve => { release = resolve })
    for (const k of keys) this.busy.set(k, held)
    return () => {
      for (const k of keys) this.busy.delete(k)
      release()
    }
  }

  /**
   * A connected request the client numbered: applied once, like a replayed record. A
   * number already applied (its record replayed first) is refused and changes nothing.
   */
  async connected<T> (n: Numbered, volume: number, u: Update, change: (u: Update) => Promise<T>): Promise<T> {
    const r = await this.once(n, volume, u, change)
    if ('duplicate' in r) throw stale(`change ${n.seq} of this client was applied already (replayed from its log)`)
    return r.done
  }

  /** Whether the client's change numbered `seq` was applied, and with what result. */
  private applied (client: string, seq: number): { status: VnodeStatus | null } | null {
    const status = this.results.get([client, seq])
    if (status !== undefined) return { status }
    if (seq <= (this.floors.get(client)?.seq ?? 0)) return { status: null }
    return null
  }

  /**
   * Runs `change` as numbered change `n` unless it was applied already; the change runs
   * `u.within` inside its transaction. The same number arriving twice at once (a replay
   * overtaking the request it stands for) waits for the first.
   */
  private async once<T> (n: Numbered, volume: number, u: Update, change: (u: Update) => Promise<T>, held = false): Promise<{ done: T, status: VnodeStatus | null } | { duplicate: VnodeStatus | null }> {
    const key = `${n.client}:${n.seq}`
    for (let going = held ? undefined : this.busy.get(key); going; going = this.busy.get(key)) await going.catch(() => {})
    const before = this.applied(n.client, n.seq)
    if (before) return { duplicate: before.status }
    let status: VnodeStatus | null = null
    const mark: Within = rec => {
      status = rec ? toStatus(volume, rec) : null
      this.remember(n.client, n.seq, status)
      if (n.removeSeq !== undefined) this.remember(n.client, n.removeSeq, null)
    }
    u.within = mark
    if (held) return { done: await change(u), status }
    const p = change(u)
    this.busy.set(key, p)
    try {
      const done = await p
      return { done, status }
    } finally { this.busy.delete(key) }
  }

  /** Inside a transaction: the result of a numbered change, and the old results forgotten. */
  private remember (client: string, seq: number, status: VnodeStatus | null): void {
    this.results.put([client, seq], status)
    const floor = seq - RESULTS_KEPT
    if (floor <= (this.floors.get(client)?.seq ?? 0)) return
    this.floors.put(client, { seq: floor })
    for (const k of this.results.getKeys({ start: [client, 0], end: [client, floor + 1] })) this.results.remove(k)
  }

  private async perform (r: CmlRecordBody, body: Contents | null, u: Update): Promise<Fid[]> {
    const mark = u.within!
    const s = this.store
    switch (r.op) {
      case 'create': case 'mkdir': case 'symlink': case 'mknod': {
        const there = s.lookup(r.dir, r.name)
        // Two clients made the same directory: one directory, with both sides' entries in it.
        if (there && r.op === 'mkdir' && s.get(there).type === 'dir') { await s.record(() => mark(s.get(there))); return [] }
        if (there) throw conflicted('name/name', `${r.name} was created on the server too`)
        await s.create(r.dir, r.name, newObject(r, ownerNow()), u)
        return [r.dir]
      }
      case 'store': {
        this.checkBase(r.fid, r.base, 'remove/update')
        if (!body) throw conflicted('update/update', 'store without data')
        // The base is checked again inside the transaction: a store may land in between.
        const mtime = { mtimeMs: r.mtimeMs, mtimeNs: r.mtimeNs }
        const expect = { ifVersion: r.base ?? undefined }
        if ('written' in body) await s.storeBlob(r.fid, body.written, mtime, u, expect)
        else await s.store(r.fid, body, r.size, mtime, u, expect)
        return [r.fid]
      }
      case 'setattr': {
        this.checkBase(r.fid, r.base, 'remove/update')
        await s.setattr(r.fid, r.attrs, u)
        return [r.fid]
      }
      case 'xattr': {
        this.checkBase(r.fid, r.base, 'remove/update')
        // Checked against the cache when it was made: set or removed whatever the server has now.
        await s.setxattr(r.fid, r.attr, r.value, 'either', u)
        return [r.fid]
      }
      case 'remove': case 'rmdir': {
        const now = s.lookup(r.dir, r.name)
        if (!now) { await s.record(mark); return [] } // removed on both sides: nothing to do
        if (!sameFid(now, r.fid)) throw conflicted('update/remove', `${r.name} names another object on the server now`)
        this.checkBase(r.fid, r.base, 'update/remove', true)
        await s.remove(r.dir, r.name, r.op === 'rmdir', u, { ifFid: r.fid, ifVersion: r.op === 'remove' ? r.base ?? undefined : undefined })
        return [r.dir, r.fid]
      }
      case 'rename': {
        const now = s.lookup(r.fromDir, r.fromName)
        // A rename moves a name: contents changed on the server meanwhile move with it.
        if (!now || !sameFid(now, r.fid)) throw conflicted('rename', `${r.fromName} was renamed or removed on the server`)
        const target = s.lookup(r.toDir, r.toName)
        if (target && !sameFid(target, r.fid)) throw conflicted('rename', `${r.toName} was created on the server too`)
        await s.rename(r.fromDir, r.fromName, r.toDir, r.toName, u)
        return [r.fromDir, r.toDir, r.fid]
      }
      case 'link': {
        if (s.lookup(r.dir, r.name)) throw conflicted('name/name', `${r.name} was created on the server too`)
        await s.link(r.dir, r.name, r.fid, u)
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
