// The client modification log (Coda's CML): every mutation made while a volume is
// disconnected, durable on disk (its own LMDB, synced on every commit) before the
// operation returns. It keeps itself small with the cancellation rules below, and is
// replayed in order by the reintegrator. Records being replayed are frozen: never
// cancelled or rewritten.
import { open as openLmdb, type Database, type RootDatabase } from 'lmdb'
import { join } from 'node:path'
import { directories, fidKey, isCreate, isLocalFid, makeLog, madeType, subject, withFidReplaced, withFidsMapped, type CmlRecordBody, type Fid } from '@afs-ts/common'
import { normalizeConflict, type ConflictRecord, type Resolution } from './repair/conflict.ts'
import { mergeAttrs } from './fs-object.ts'
import type { SavedCell } from './cell.ts'

export { directories, isCreate, isLocalFid, madeType, subject, withFidReplaced }

const log = makeLog('cml')
/** Replayed records whose removal is written in one transaction (well under the server's 1,000 kept results). */
const DONE_BATCH = 64
const DONE_BATCH_MS = 50
/** Sequence numbers reserved on disk at a time for changes sent to servers (none is used twice across a crash). */
const SEQ_BLOCK = 1000

export interface CmlRecord {
  seq: number
  cell: string
  /** ms epoch when the change was made. */
  time: number
  frozen: boolean
  /**
   * Logged after the same change, under the same number, was sent to a server that
   * stopped answering: it may be there already (the server knows it by the number).
   */
  maybeApplied?: boolean
  /** The local user whose process made the change, and the cell user their token named then: it is replayed as them. */
  by?: number
  user?: string
  body: CmlRecordBody
}

/** Who makes the change being logged: the acting local user, and the cell user of their token. */
export type Author = (cell: string) => { by?: number, user?: string }

/**
 * Cancellation rules, applied when a record is appended (Coda's cmlent cancellations).
 * Each row: when the new record is `incoming`, which earlier, unfrozen records on the
 * same object it cancels, and whether the new record itself is dropped too.
 *
 * | incoming         | cancels earlier                                   | keeps itself |
 * |------------------|---------------------------------------------------|--------------|
 * | store            | store; setattr that only set times                | yes          |
 * | setattr          | setattr (its attributes are folded into the new)  | yes          |
 * | remove / rmdir   | of an object created in the log whose create is   | no           |
 * |                  | not being replayed: its create and every record   |              |
 * |                  | about it (store, setattr, rename, …)              |              |
 * | remove / rmdir   | of any other object, its last name: its stores,   | yes          |
 * |                  | setattrs and xattrs                               |              |
 *
 * An object whose create is frozen (on its way to the server), already replayed, or
 * logged after a server stopped answering the same create (`maybeApplied`) may exist on
 * the server: its remove is logged like any other, never cancelled away. A record that
 * may be applied already is never cancelled or folded into another either: its replay
 * is how the server's answer to it (the version it made) reaches the records after it.
 */
export const CANCELLATION_RULES = [
  { incoming: 'store', cancels: 'store, setattr of times only', keepsItself: true },
  { incoming: 'setattr', cancels: 'setattr (folded into the new one)', keepsItself: true },
  { incoming: 'remove|rmdir', cancels: 'the whole history of an object born in the log (unless its create is being replayed)', keepsItself: false },
  { incoming: 'remove|rmdir', cancels: 'stores, setattrs and xattrs of the object losing its last name', keepsItself: true },
] as const

export class ClientModifyLog {
  private readonly db: RootDatabase
  private readonly records: Database<CmlRecord, number>
  private readonly meta: Database<number, string>
  private readonly fidMap: Database<Fid, string>
  private readonly conflictDb: Database<ConflictRecord, string>
  /** Resolved conflicts, keyed by [time, id], oldest first. */
  private readonly resolutions: Database<Resolution, [number, string]>
  /** What the cache knew of each cell, kept here too: the log must be replayable after the cache metadata is lost. */
  private readonly cells: Database<SavedCell, string>
  /** In-memory mirror of the records, in order, and an index by object. */
  private readonly bySeq = new Map<number, CmlRecord>()
  private readonly byObject = new Map<string, Set<number>>()
  /** Records naming a fid as a directory ("cell:fid" → seqs). */
  private readonly byDirectory = new Map<string, Set<number>>()
  private readonly perCell = new Map<string, number>()
  /** Open conflicts, by id (a mirror of the conflicts database). */
  private readonly open = new Map<string, ConflictRecord>()
  private nextLocalVnode: number | undefined
  /** The next sequence number, and the first one not yet reserved on disk. */
  private nextSeq: number
  private reservedSeq: number
  private reserving: Promise<unknown> = Promise.resolve()
  /** The highest sequence number indexed (bySeq is kept in sequence order). */
  private highestSeq = 0
  /** Local fid → server fid, for mappings not yet committed. */
  private readonly mappedFids = new Map<string, Fid>()
  private pendingDone: Array<() => void> = []
  private doneTimer: NodeJS.Timeout | null = null

  constructor (cacheDir: string, private readonly author: Author = () => ({})) {
    // Durable: a record is on disk (flushed, not just committed) before the mutation it logs returns success.
    this.db = openLmdb({ path: join(cacheDir, 'cml.lmdb'), compression: false })
    this.records = this.db.openDB({ name: 'records', keyEncoding: 'uint32' })
    this.meta = this.db.openDB({ name: 'meta' })
    this.fidMap = this.db.openDB({ name: 'fidmap' })
    this.conflictDb = this.db.openDB({ name: 'conflicts' })
    this.resolutions = this.db.openDB({ name: 'resolutions' })
    this.cells = this.db.openDB({ name: 'cells' })
    for (const { value } of this.records.getRange()) this.index(value)
    this.nextSeq = this.reservedSeq = this.meta.get('nextSeq') ?? 1
    for (const { value } of this.conflictDb.getRange()) this.open.set(value.id, normalizeConflict(value))
  }

  async close (): Promise<void> {
    await this.flushDone()
    await this.db.close()
  }

  all (): CmlRecord[] {
    return [...this.bySeq.values()]
  }

  get (seq: number): CmlRecord | undefined {
    return this.bySeq.get(seq)
  }

  get size (): number {
    return this.bySeq.size
  }

  hasRecordsFor (cell: string): boolean {
    return (this.perCell.get(cell) ?? 0) > 0
  }

  /** Records and bytes of data waiting for the servers of `cell` (or all cells). */
  pending (cell?: string, volume?: number): { records: number, bytes: number } {
    let records = 0
    let bytes = 0
    for (const r of this.bySeq.values()) {
      if ((cell && r.cell !== cell) || (volume !== undefined && r.body.fid.volume !== volume)) continue
      records++
      if (r.body.op === 'store') bytes += r.body.size
    }
    return { records, bytes }
  }

  savedCell (servers: string[]): SavedCell | undefined {
    return this.cells.get(servers.join(','))
  }

  async saveCell (servers: string[], cell: SavedCell): Promise<void> {
    await this.cells.put(servers.join(','), cell)
  }

  /**
   * A number for a change about to be sent to a server (Coda's StoreId): the sequence
   * number its record takes if the server stops answering and the change is logged.
   */
  async reserve (): Promise<number> {
    const seq = this.takeSeq()
    await this.reserving
    return seq
  }

  private takeSeq (): number {
    const seq = this.nextSeq++
    if (this.nextSeq > this.reservedSeq) {
      this.reservedSeq = this.nextSeq + SEQ_BLOCK
      const upTo = this.reservedSeq
      this.reserving = this.meta.put('nextSeq', upTo).then(() => this.db.flushed)
    }
    return seq
  }

  /**
   * Appends a record, applying the cancellation rules; resolves once it is on disk.
   * `sent`: the number under which the same change went to a server that did not answer.
   */
  async append (cell: string, body: CmlRecordBody, opts: { lastName?: boolean, sent?: number } = {}): Promise<number> {
    // A change begun before its object's create was replayed names the fid the server gave it.
    body = this.mappedBody(body)
    const seq = opts.sent ?? this.takeSeq()
    const maybeApplied = opts.sent !== undefined
    const gone: CmlRecord[] = []
    let added: CmlRecord | null = null
    await this.db.transaction(() => {
      const earlier = this.unfrozenAbout(cell, subject(body))
      const drop = (r: CmlRecord) => { this.records.remove(r.seq); gone.push(r) }
      const lastName = (body.op === 'remove' || body.op === 'rmdir') && opts.lastName !== false
      if (lastName && this.bornUnreplayed(cell, body.fid)) {
        earlier.forEach(drop)
        return // born and died in the log: nothing reaches the server
      }
      const cancellable = earlier.filter(r => !r.maybeApplied)
      // Its contents and attributes go with it.
      if (lastName) for (const r of cancellable) if (r.body.op === 'store' || r.body.op === 'setattr' || r.body.op === 'xattr') drop(r)
      if (body.op === 'store') {
        for (const r of cancellable) if (r.body.op === 'store' || (r.body.op === 'setattr' && onlyTimes(r.body.attrs))) drop(r)
      }
      if (body.op === 'setattr' && !maybeApplied) {
        for (const r of cancellable) {
          if (r.body.op !== 'setattr') continue
          body = { ...body, base: r.body.base, attrs: mergeAttrs(r.body.attrs, body.attrs) }
          drop(r)
        }
      }
      if (this.nextLocalVnode !== undefined) this.meta.put('nextLocalVnode', this.nextLocalVnode)
      const { by, user } = this.author(cell)
      added = { seq, cell, time: Date.now(), frozen: false, body, ...(maybeApplied ? { maybeApplied: true } : {}), ...(by !== undefined ? { by } : {}), ...(user !== undefined ? { user } : {}) }
      this.records.put(seq, added)
    })
    await this.reserving
    await this.db.flushed // commits resolve before their fsync (overlappingSync)
    if (log.debugging) log.debug(`${cell}: ${added ? `logged ${seq} ${body.op} ${JSON.stringify(body).slice(0, 200)}${maybeApplied ? ' (sent, maybe applied)' : ''}` : `${body.op} not logged`}${gone.length ? `, cancelling ${gone.map(r => `${r.seq} ${r.body.op}`).join(', ')}` : ''}`)
    for (const r of gone) this.unindex(r)
    if (added) this.index(added)
    return seq
  }

  /** Whether `fid` was made by a create still in the log and not yet on its way to the server. */
  private bornUnreplayed (cell: string, fid: Fid): boolean {
    if (!isLocalFid(fid)) return false
    for (const s of this.byObject.get(`${cell}:${fidKey(fid)}`) ?? []) {
      const r = this.bySeq.get(s)!
      if (isCreate(r.body)) return !r.frozen && !r.maybeApplied
    }
    return false
  }

  private index (r: CmlRecord): void {
    this.bySeq.set(r.seq, r)
    // A change logged under the number it was sent with goes before those logged meanwhile.
    if (r.seq < this.highestSeq) {
      const sorted = [...this.bySeq.values()].sort((a, b) => a.seq - b.seq)
      this.bySeq.clear()
      for (const x of sorted) this.bySeq.set(x.seq, x)
    }
    this.highestSeq = Math.max(this.highestSeq, r.seq)
    this.indexRefs(r, addTo)
    this.perCell.set(r.cell, (this.perCell.get(r.cell) ?? 0) + 1)
  }

  private unindex (r: CmlRecord): void {
    this.bySeq.delete(r.seq)
    this.indexRefs(r, removeFrom)
    this.perCell.set(r.cell, (this.perCell.get(r.cell) ?? 1) - 1)
  }

  /** `r` replaced by `n` (the same seq, other fids), keeping its place in the order. */
  private reindex (r: CmlRecord, n: CmlRecord): void {
    this.indexRefs(r, removeFrom)
    this.bySeq.set(n.seq, n)
    this.indexRefs(n, addTo)
  }

  private indexRefs (r: CmlRecord, change: (index: Map<string, Set<number>>, key: string, seq: number) => void): void {
    change(this.byObject, `${r.cell}:${fidKey(subject(r.body))}`, r.seq)
    for (const d of directories(r.body)) change(this.byDirectory, `${r.cell}:${fidKey(d)}`, r.seq)
  }

  /** Records of `cell` naming `fid` (as their object or as a directory), oldest first. */
  mentioning (cell: string, fid: Fid): CmlRecord[] {
    const k = `${cell}:${fidKey(fid)}`
    const seqs = new Set([...this.byObject.get(k) ?? [], ...this.byDirectory.get(k) ?? []])
    return [...seqs].sort((a, b) => a - b).map(s => this.bySeq.get(s)!)
  }

  /** Records of `cell` that change entries of directory `dir`, oldest first. */
  changingDirectory (cell: string, dir: Fid): CmlRecord[] {
    return [...this.byDirectory.get(`${cell}:${fidKey(dir)}`) ?? []].sort((a, b) => a - b).map(s => this.bySeq.get(s)!)
  }

  /** Unfrozen records of `cell` about `fid`, oldest first. */
  private unfrozenAbout (cell: string, fid: Fid): CmlRecord[] {
    const seqs = this.byObject.get(`${cell}:${fidKey(fid)}`)
    if (!seqs) return []
    return [...seqs].sort((a, b) => a - b).map(s => this.bySeq.get(s)!).filter(r => !r.frozen)
  }

  /** Freezes records about to be replayed: cancellation no longer touches them. */
  async freeze (records: CmlRecord[]): Promise<void> {
    await this.db.transaction(() => {
      for (const r of records) this.records.put(r.seq, { ...r, frozen: true })
    })
    for (const r of records) { r.frozen = true; this.bySeq.get(r.seq)!.frozen = true }
  }

  /**
   * Drops a replayed record. For a create, remembers the server fid of its local fid;
   * when the record moved an object to a new version, later records on it are now
   * based on that version (`rebase`).
   */
  done (seq: number, after: { created?: { local: Fid, server: Fid }, rebase?: { fid: Fid, from: number | null, to: number } } = {}): void {
    const r = this.bySeq.get(seq)
    const rebased: CmlRecord[] = []
    const rb = after.rebase
    if (r && rb) {
      for (const s of this.byObject.get(`${r.cell}:${fidKey(subject(r.body))}`) ?? []) {
        const later = this.bySeq.get(s)!
        if (s === seq || !('base' in later.body) || later.body.base !== rb.from) continue
        rebased.push({ ...later, body: { ...later.body, base: rb.to } as CmlRecordBody })
      }
    }
    if (r) this.unindex(r)
    for (const n of rebased) this.bySeq.set(n.seq, n)
    // The object the create made exists on the server now: later records name its server fid.
    const renamed: CmlRecord[] = []
    if (r && after.created) {
      const { local, server } = after.created
      this.mappedFids.set(fidKey(local), server)
      for (const later of this.mentioning(r.cell, local)) {
        const body = withFidReplaced(later.body, local, server)
        if (!body) continue
        const n = { ...later, body }
        this.reindex(later, n)
        renamed.push(n)
      }
    }
    // Written in batches, not awaited: commits stay in order, and a record replayed again
    // after a crash is recognised by the server, which also still has its result.
    this.pendingDone.push(() => {
      this.records.remove(seq)
      if (after.created) this.fidMap.put(fidKey(after.created.local), after.created.server)
      // Only records still on disk: one cancelled meanwhile stays gone.
      for (const n of [...rebased, ...renamed]) if (this.records.doesExist(n.seq)) this.records.put(n.seq, this.bySeq.get(n.seq) ?? n)
    })
    if (this.pendingDone.length >= DONE_BATCH) void this.flushDone()
    else this.doneTimer ??= setTimeout(() => { void this.flushDone() }, DONE_BATCH_MS)
  }

  /** Writes the replayed records' removals queued by done(). */
  async flushDone (): Promise<void> {
    if (this.doneTimer) clearTimeout(this.doneTimer)
    this.doneTimer = null
    const ops = this.pendingDone.splice(0)
    if (ops.length === 0) return
    await this.db.transaction(() => { for (const op of ops) op() })
      .catch(err => { log.error(`CML: recording replayed records failed: ${(err as Error).message}`) })
  }

  /** Open conflicts, by id. */
  conflicts (): ConflictRecord[] {
    return [...this.open.values()]
  }

  conflict (id: string): ConflictRecord | undefined {
    return this.open.get(id)
  }

  /** Records (or updates) an open conflict, durably. */
  async addConflict (c: ConflictRecord): Promise<void> {
    await this.conflictDb.put(c.id, c)
    await this.db.flushed
    this.open.set(c.id, c)
  }

  /**
   * Closes a conflict with its resolution, in one durable transaction, keeping the
   * latest `keep` resolutions; `onPrune` drops the files of older ones.
   */
  async closeConflict (id: string, r: Resolution, keep: number, onPrune: (old: Resolution) => Promise<void>): Promise<void> {
    const pruned: Resolution[] = []
    await this.db.transaction(() => {
      this.conflictDb.remove(id)
      this.resolutions.put([r.at, r.id], r)
      const all = [...this.resolutions.getRange()]
      for (const e of all.slice(0, Math.max(0, all.length - keep))) { this.resolutions.remove(e.key); pruned.push(e.value) }
    })
    await this.db.flushed
    this.open.delete(id)
    for (const old of pruned) await onPrune(old)
  }

  /** Resolved conflicts, oldest first. */
  history (): Resolution[] {
    return [...this.resolutions.getRange()].map(e => e.value)
  }

  /** Reopens a resolved conflict (undo): it is open again and its resolution marked undone. */
  async reopenConflict (r: Resolution, c: ConflictRecord): Promise<void> {
    await this.db.transaction(() => {
      this.conflictDb.put(c.id, c)
      this.resolutions.put([r.at, r.id], { ...r, undoneAt: Date.now() })
    })
    await this.db.flushed
    this.open.set(c.id, c)
  }

  /** Remembers that a local fid is now `server` on the server (a repair made it). */
  async mapFid (local: Fid, server: Fid): Promise<void> {
    if (!isLocalFid(local)) return
    this.mappedFids.set(fidKey(local), server)
    await this.fidMap.put(fidKey(local), server)
  }

  /** The server fid a local fid became, if its create was replayed. */
  mapped (f: Fid): Fid {
    if (!isLocalFid(f)) return f
    return this.mappedFids.get(fidKey(f)) ?? this.fidMap.get(fidKey(f)) ?? f
  }

  /** `b` with every local fid whose create was replayed replaced by its server fid. */
  mappedBody (b: CmlRecordBody): CmlRecordBody {
    return withFidsMapped(b, f => this.mapped(f))
  }

  /** A new local fid for an object created while disconnected (uniquifier 0 marks it); persisted with the record that uses it. */
  newLocalFid (volume: number): Fid {
    this.nextLocalVnode ??= this.meta.get('nextLocalVnode') ?? 1
    return { volume, vnode: this.nextLocalVnode++, unique: 0 }
  }

  /** Is the container named `key` ("cell:fid") still needed by a record? */
  referencesKey (key: string): boolean {
    return this.byObject.has(key)
  }

  /** Does any record still refer to this object (its container must stay)? */
  references (cell: string, fid: Fid): boolean {
    return this.byObject.has(`${cell}:${fidKey(fid)}`)
  }

  /** The log as one line, for tests and status: 'create a; store a'. */
  render (name: (r: CmlRecord) => string): string {
    return this.all().map(r => `${r.body.op} ${name(r)}`).join('; ')
  }
}

function addTo (index: Map<string, Set<number>>, key: string, seq: number): void {
  let set = index.get(key)
  if (!set) { set = new Set(); index.set(key, set) }
  set.add(seq)
}

function removeFrom (index: Map<string, Set<number>>, key: string, seq: number): void {
  const set = index.get(key)
  set?.delete(seq)
  if (set?.size === 0) index.delete(key)
}

function onlyTimes (attrs: Record<string, unknown>): boolean {
  return Object.keys(attrs).every(k => k === 'atimeMs' || k === 'mtimeMs' || k === 'atimeNs' || k === 'mtimeNs')
}
