// The reintegrator (Coda's reintegration daemon). Responsibilities:
//   1. when a cell's servers are back (and on `afs reconnect`, `afs sync`), replay its
//      log in order, in chunks that are frozen first, with progress in status and log;
//      consecutive records of one unreplicated volume and one user go in batches (one
//      request, applied in one transaction on the server)
//   2. map local fids to the server fids their creates received, and carry each
//      record's base version forward as earlier records of the same object apply
//   3. flag conflicts — keep both versions on disk, mark the object — and go on with
//      the rest of the log; never drop a change (a change the server already has is none)
//   4. stop at the first unreachable server and resume later: the server applies each
//      record once, so a replay cut anywhere resumes without duplicates
import { createReadStream } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import {
  AfsError, MAX_BATCH_BYTES, MAX_BATCH_INLINE_BYTES, MAX_BATCH_RECORDS, isUnreachable, makeLog, namesGiven, sameFid,
  type CmlRecordBody, type Fid, type ReplayBatchReply, type ReplayReply, type VnodeStatus,
} from '@afs-ts/common'
import type { ContainerStore } from './container-file.ts'
import type { LocalObjects } from './local-objects.ts'
import type { ObjectCache } from './object-cache.ts'
import type { Ancestors } from './repair/ancestors.ts'
import type { ConflictKeeper } from './repair/conflict-keeper.ts'
import type { Resolvers } from './repair/resolvers.ts'
import type { WholeFiles } from './whole-file.ts'
import type { Cell } from './cell.ts'
import { isCreate, isLocalFid, type CmlRecord, type ClientModifyLog } from './cml.ts'
import type { FsObject } from './fs-object.ts'
import { objectKey, type FsObjectTable } from './fs-object-table.ts'
import { uploadGate } from './upload-gate.ts'
import { NO_USER, actingAs, type TokenTable } from './tokens.ts'
import type { Volume } from './volume.ts'

const log = makeLog('reintegrator')
/** Records frozen and replayed per chunk. */
export const REINTEGRATION_CHUNK = 256

/** `waitingFor`: the local user (and cell user) whose token is needed to go on: their changes wait for `afs login`. */
export interface ReintegrationReport { cell: string, at: number, applied: number, conflicts: number, done: boolean, error?: string, waitingFor?: { uid: number, user: string } }

/** A record whose user has no good token: reintegration waits for them to log in again (nothing is dropped). */
class NeedsLogin extends Error {
  constructor (readonly uid: number, readonly user: string, why: string) {
    super(`uid ${uid} must log in again as ${user} (afs login ${user}): ${why}; their changes wait in the log`)
  }
}
export interface Progress { done: number, total: number }

type Outcome = 'applied' | 'conflict' | 'absorbed'
/** Records replayed in one request: `at`, each one's place in its chunk; `next`, the place after the last. */
interface Batch { volume: Volume, items: Array<{ r: CmlRecord, record: CmlRecordBody, data?: Buffer, at: number }>, next: number }

/** What reintegration needs of the cache manager. */
export interface ReintegratorDeps {
  readonly objects: Pick<ObjectCache, 'afterReintegration'>
  readonly table: FsObjectTable
  readonly cml: ClientModifyLog
  readonly containers: Pick<ContainerStore, 'path' | 'remove'>
  readonly local: Pick<LocalObjects, 'replace' | 'settle'>
  readonly conflicts: Pick<ConflictKeeper, 'absorb' | 'flag'>
  readonly ancestors: Pick<Ancestors, 'drop'>
  readonly files: Pick<WholeFiles, 'stored'>
  readonly tokens: Pick<TokenTable, 'get'>
  readonly resolvers: Pick<Resolvers, 'run'>
}

export class Reintegrator {
  private readonly running = new Map<string, Promise<ReintegrationReport>>()
  readonly progress = new Map<string, Progress>()
  readonly last = new Map<string, ReintegrationReport>()
  /** Since start: runs, records applied, conflicts found (for the metrics). */
  readonly totals = { runs: 0, applied: 0, conflicts: 0 }

  constructor (private readonly d: ReintegratorDeps) {}

  /**
   * Replays the cell's log unless that is pointless now; resolves with the run's report.
   * In write-back mode only a trickle runs: the records older than `olderThanMs`.
   */
  run (cell: Cell, trickle?: { olderThanMs: number }): Promise<ReintegrationReport | null> {
    const going = this.running.get(cell.name)
    if (going) return going
    if (!this.d.cml.hasRecordsFor(cell.name) || (cell.writeBack && !trickle) || !cell.anyLink().connected) return Promise.resolve(null)
    cell.reintegrating = true
    const p = this.replay(cell, trickle ? Date.now() - trickle.olderThanMs : Infinity).finally(() => {
      this.running.delete(cell.name)
      this.progress.delete(cell.name)
      cell.reintegrating = false
    })
    this.running.set(cell.name, p)
    return p
  }

  private async replay (cell: Cell, madeBefore: number): Promise<ReintegrationReport> {
    const records = this.d.cml.all().filter(r => r.cell === cell.name && r.time <= madeBefore)
    const report: ReintegrationReport = { cell: cell.name, at: Date.now(), applied: 0, conflicts: 0, done: false }
    const progress = { done: 0, total: records.length }
    this.progress.set(cell.name, progress)
    log.info(`reintegrating ${records.length} records of cell ${cell.name}`)
    try {
      for (let i = 0; i < records.length; i += REINTEGRATION_CHUNK) {
        const chunk = records.slice(i, i + REINTEGRATION_CHUNK).filter(r => this.d.cml.get(r.seq))
        await this.d.cml.freeze(chunk)
        const count = (r: CmlRecord, outcome: Outcome) => {
          if (log.debugging) log.debug(`${cell.name}: record ${r.seq} (${r.body.op} ${JSON.stringify(r.body).slice(0, 200)}${r.maybeApplied ? ', maybe applied' : ''}): ${outcome}`)
          if (outcome === 'applied') report.applied++
          else if (outcome === 'conflict') report.conflicts++
          progress.done++
        }
        for (let k = 0; k < chunk.length;) {
          const batch = await this.batchAt(cell, chunk, k)
          if (batch) {
            k = await this.replayBatch(cell, batch, count)
            continue
          }
          // Read it again: an earlier record of the same object may have moved its base.
          const r = this.d.cml.get(chunk[k++].seq)
          if (r) count(r, await this.replayOne(cell, r))
        }
        await this.settle()
        log.info(`reintegration of ${cell.name}: ${progress.done}/${progress.total} records`)
      }
      report.done = !this.d.cml.hasRecordsFor(cell.name) && madeBefore === Infinity
      if (report.done) this.d.objects.afterReintegration(cell)
    } catch (err) {
      report.error = (err as Error).message
      if (err instanceof NeedsLogin) report.waitingFor = { uid: err.uid, user: err.user }
      log.warn(`reintegration of ${cell.name} stopped after ${progress.done}/${progress.total}: ${report.error}`)
      await this.settle().catch(e => log.error(`reintegration of ${cell.name}: ${(e as Error).message}`))
    }
    this.last.set(cell.name, report)
    this.totals.runs++
    this.totals.applied += report.applied
    this.totals.conflicts += report.conflicts
    if (report.conflicts > 0) await this.d.resolvers.run()
    log.info(`reintegration of ${cell.name}: ${report.applied} applied, ${report.conflicts} conflicts${report.done ? '' : ', more to do'}`)
    return report
  }

  /**
   * Replays one record: applied, flagged as a new conflict, or absorbed into the conflict
   * its object is already in (its local version is kept there). Throws when the server
   * is unreachable.
   */
  private async replayOne (cell: Cell, r: CmlRecord): Promise<Outcome> {
    const o = this.d.table.get(objectKey(cell.name, r.body.fid))
    const body = this.d.cml.mappedBody(r.body)
    if (this.absorbed(cell, o, body)) {
      if (o) await this.d.conflicts.absorb(o, body)
      this.d.cml.done(r.seq)
      return 'absorbed'
    }
    const volume = cell.route(body.fid.volume)
    this.needToken(cell, r)
    return await actingAs(r.by ?? NO_USER, async () => {
      let reply: ReplayReply
      try {
        reply = await this.send(cell, volume, r, body)
      } catch (err) {
        return await this.refused(cell, r, body, err)
      }
      return await this.applied(cell, r, body, reply)
    })
  }

  /** A record is replayed as the user who made it, with their token (one who had none then: as system:anyuser). */
  private needToken (cell: Cell, r: CmlRecord): void {
    if (!this.hasToken(cell, r)) throw new NeedsLogin(r.by!, r.user!, 'no token, or an expired one')
  }

  private hasToken (cell: Cell, r: CmlRecord): boolean {
    return r.by === undefined || r.user === undefined || this.d.tokens.get(r.by, cell.name) !== undefined
  }

  /** Whether a record goes into the conflict its object is in, not to the server. */
  private absorbed (cell: Cell, o: FsObject | undefined, body: CmlRecordBody): boolean {
    return this.inConflict(o, body) || this.createConflicted(cell, body)
  }

  /**
   * A record the server refused: flagged as a conflict, its bytes kept (one refused for
   * want of rights too), unless the server has that change already. Throws when the
   * server is unreachable, or the user's token is no good any more.
   */
  private async refused (cell: Cell, r: CmlRecord, body: CmlRecordBody, err: unknown): Promise<Outcome> {
    if (isUnreachable(err)) throw err
    if (err instanceof AfsError && err.code === 'UNAUTHENTICATED' && r.by !== undefined) throw new NeedsLogin(r.by, r.user ?? '?', err.message)
    const kept = await this.d.conflicts.flag(cell, r, body, err)
    if (!('same' in kept)) {
      this.d.cml.done(r.seq)
      return 'conflict'
    }
    return await this.applied(cell, r, body, { seq: r.seq, status: kept.same, duplicate: true })
  }

  /**
   * The records from `chunk[k]` on that can go to the server in one request: of one
   * unreplicated volume, made by one user, none absorbed into a conflict, stores of
   * small files (their bytes go inline, read all at once). Null when there are fewer
   * than two.
   */
  private async batchAt (cell: Cell, chunk: CmlRecord[], k: number): Promise<Batch | null> {
    const picked: Array<{ r: CmlRecord, body: CmlRecordBody, at: number }> = []
    let volume: Volume | undefined
    for (let at = k; at < chunk.length && picked.length < MAX_BATCH_RECORDS; at++) {
      const r = this.d.cml.get(chunk[at].seq)
      if (!r) continue
      const body = this.d.cml.mappedBody(r.body)
      const v = cell.route(body.fid.volume)
      if (v.provisional || v.replicated || (volume && v !== volume) || (picked.length > 0 && r.by !== picked[0].r.by)) break
      if (this.absorbed(cell, this.d.table.get(objectKey(cell.name, r.body.fid)), body) || !this.hasToken(cell, r)) break
      volume = v
      picked.push({ r, body, at })
    }
    // (A container that cannot be read: its store replays alone, and says why.)
    const containers = await Promise.all(picked.map(async p => p.body.op === 'store' ? await this.container(cell, p.r, p.body).catch(() => null) : undefined))
    let bytes = 0
    const fits = (size: number) => size <= MAX_BATCH_INLINE_BYTES && (bytes += size) <= MAX_BATCH_BYTES
    let n = containers.findIndex(c => c === null || (c !== undefined && !fits(c.size)))
    if (n < 0) n = picked.length
    if (n < 2 || !volume) return null
    // What each file holds now, in one piece: writes wait while it is read.
    const data = await Promise.all(picked.slice(0, n).map(async (p, i) => {
      const c = containers[i]
      return c ? await uploadGate(this.d.table.get(objectKey(cell.name, p.body.fid))).upload(async () => await readFile(c.path)) : undefined
    }))
    // (One that grew since its size was taken ends the batch before it.)
    bytes = 0
    const grown = data.findIndex(d => d !== undefined && !fits(d.length))
    if (grown >= 0) n = grown
    if (n < 2) return null
    const items = picked.slice(0, n).map((p, i) => {
      const d = data[i]
      return { r: p.r, record: p.body.op === 'store' && d ? { ...p.body, size: d.length } : p.body, data: d, at: p.at }
    })
    return { volume, items, next: items[items.length - 1].at + 1 }
  }

  /**
   * Sends a batch; its records that the server took (or had) are done in order, and the
   * one it refused, if any, is handled as a refused single record. Returns how far in the
   * chunk it got. A batch refused as a whole (not for want of a server or a login) is
   * replayed record by record.
   */
  private async replayBatch (cell: Cell, batch: Batch, count: (r: CmlRecord, outcome: Outcome) => void): Promise<number> {
    const { volume, items } = batch
    const first = items[0].r
    let reply: ReplayBatchReply
    try {
      reply = await actingAs(first.by ?? NO_USER, async () => await volume.call('replayBatch', {
        volume: volume.id,
        records: items.map(({ r, record, data }) => data ? { seq: r.seq, record, data } : { seq: r.seq, record }),
      }))
    } catch (err) {
      if (isUnreachable(err)) throw err
      if (err instanceof AfsError && err.code === 'UNAUTHENTICATED' && first.by !== undefined) throw new NeedsLogin(first.by, first.user ?? '?', err.message)
      log.warn(`${cell.name}: a batch of ${items.length} records was refused whole (${(err as Error).message}); replaying them one by one`)
      for (const { r } of items) {
        const now = this.d.cml.get(r.seq)
        if (now) count(now, await this.replayOne(cell, now))
      }
      return batch.next
    }
    // Each read again: a create before it in the batch mapped its fids, a store moved its base.
    const again = (seq: number) => {
      const r = this.d.cml.get(seq)
      if (!r) throw new Error(`record ${seq} left the log while it was replayed`)
      return { r, body: this.d.cml.mappedBody(r.body) }
    }
    for (const result of reply.results) {
      const { r, body } = again(result.seq)
      count(r, await this.applied(cell, r, body, result))
    }
    let done = reply.results.length
    const { failed } = reply
    if (failed) {
      const { r, body } = again(failed.seq)
      count(r, await actingAs(r.by ?? NO_USER, async () => await this.refused(cell, r, body, AfsError.fromWire(failed.error))))
      done++
    }
    if (done === 0) throw new Error(`${volume.name}: a server answered a batch of ${items.length} records with none`)
    // (The rest of the batch, not tried, goes in the next one.)
    return done < items.length ? items[done].at : batch.next
  }

  /** Sends one record to the volume's server(s). */
  private async send (cell: Cell, volume: Volume, r: CmlRecord, body: CmlRecordBody): Promise<ReplayReply> {
    if (body.op === 'store') {
      const o = this.d.table.get(objectKey(cell.name, body.fid))
      return await uploadGate(o).upload(async () => {
        const { path, size } = await this.container(cell, r, body)
        return await volume.upload('replay', { seq: r.seq, record: { ...body, size } }, () => createReadStream(path, { highWaterMark: 1 << 20 }))
      })
    }
    return await volume.call('replay', { seq: r.seq, record: body })
  }

  /** A record the server took (or had): the log and the cache follow. */
  private async applied (cell: Cell, r: CmlRecord, body: CmlRecordBody, reply: ReplayReply): Promise<'applied'> {
    const created = isCreate(body) && reply.status ? { local: r.body.fid, server: reply.status.fid } : undefined
    const rebase = reply.status && !created && 'base' in body ? { fid: body.fid, from: body.base, to: reply.status.dataVersion } : undefined
    this.d.cml.done(r.seq, { created, rebase })
    if (created && reply.status) {
      // Where the object has names now: where it was made, and where later records moved or linked it.
      const names = [...namesGiven(body), ...this.d.cml.mentioning(cell.name, created.server).flatMap(x => namesGiven(x.body))]
      await this.d.local.replace(cell.name, created.local, reply.status, names)
    }
    if (body.op === 'store') await this.stored(cell, body.fid, reply.status)
    return 'applied'
  }

  /**
   * Contents and attributes changed after a conflict over them wait in that conflict (its
   * local side holds them). A conflict over one of the object's names (a link, rename or
   * remove) leaves the object itself as it is on the server: its later changes apply.
   */
  private inConflict (o: FsObject | undefined, body: CmlRecordBody): boolean {
    if (!o?.conflict) return false
    const ofObject = (op: string | undefined) => op === 'store' || op === 'setattr' || op === 'xattr'
    return ofObject(body.op) && ofObject(this.d.cml.conflict(o.conflict.id)?.local.op)
  }

  /**
   * A change to an object born in the log whose create went into a conflict (never made
   * on the server): it belongs to that conflict, which kept the object's contents.
   */
  private createConflicted (cell: Cell, body: CmlRecordBody): boolean {
    if (!isLocalFid(body.fid) || isCreate(body)) return false
    return !this.d.cml.mentioning(cell.name, body.fid).some(x => isCreate(x.body) && sameFid(x.body.fid, body.fid))
  }

  /** After a replayed store: the cache holds the server's version; what only the log needed can go. */
  private async stored (cell: Cell, fid: Fid, status: VnodeStatus | null): Promise<void> {
    if (status) this.d.files.stored(cell, fid, status)
    const key = objectKey(cell.name, fid)
    if (this.d.cml.references(cell.name, fid)) return
    void this.d.ancestors.drop(key)
    // A container kept only for this replay (its object was removed since).
    if (!this.d.table.get(key)) await this.d.containers.remove(key)
  }

  /** Makes the replayed records' removal durable, then lets replaced containers drop their old names. */
  private async settle (): Promise<void> {
    await this.d.cml.flushDone()
    await this.d.local.settle()
  }

  /** The container a store replays: under the object's server fid, or (a replacement a crash cut short) its local one. */
  private async container (cell: Cell, r: CmlRecord, body: CmlRecordBody): Promise<{ path: string, size: number }> {
    const mapped = this.d.containers.path(objectKey(cell.name, body.fid))
    try { return { path: mapped, size: (await stat(mapped)).size } } catch (err) { if (body.fid === r.body.fid) throw err }
    const path = this.d.containers.path(objectKey(cell.name, r.body.fid))
    return { path, size: (await stat(path)).size }
  }
}
