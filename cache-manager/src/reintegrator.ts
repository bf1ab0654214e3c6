// The reintegrator (Coda's reintegration daemon). Responsibilities:
//   1. when a cell's servers are back (and on `afs reconnect`, `afs sync`), replay its
//      log in order, in chunks that are frozen first, with progress in status and log
//   2. map local fids to the server fids their creates received, and carry each
//      record's base version forward as earlier records of the same object apply
//   3. flag conflicts — keep both versions on disk, mark the object — and go on with
//      the rest of the log; never drop a change
//   4. stop at the first unreachable server and resume later: the server applies each
//      record once, so a replay cut anywhere resumes without duplicates
import { createReadStream, createWriteStream } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import { copyFile, mkdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { AfsError, makeLog, type CmlRecordBody, type DirReply, type ConflictKind, type Fid, type ReplayReply } from '@afs-ts/common'
import type { CacheManager } from './cache-manager.ts'
import type { Cell } from './cell.ts'
import { isLocalFid, type CmlRecord, type ConflictRecord } from './cml.ts'
import type { FsObject } from './fs-object.ts'
import { objectKey } from './fs-object-table.ts'
import { isUnreachable } from './server-link.ts'

const log = makeLog('reintegrator')
/** Records frozen and replayed per chunk. */
export const REINTEGRATION_CHUNK = 100

export interface ReintegrationReport { cell: string, at: number, applied: number, conflicts: number, done: boolean, error?: string }
export interface Progress { done: number, total: number }

export class Reintegrator {
  private readonly running = new Map<string, Promise<ReintegrationReport>>()
  readonly progress = new Map<string, Progress>()
  readonly last = new Map<string, ReintegrationReport>()

  constructor (private readonly cm: CacheManager) {}

  isRunning (cell: string): boolean {
    return this.running.has(cell)
  }

  /**
   * Replays the cell's log unless that is pointless now; resolves with the run's report.
   * In write-back mode only a trickle runs: the records older than `olderThanMs`.
   */
  run (cell: Cell, trickle?: { olderThanMs: number }): Promise<ReintegrationReport | null> {
    const going = this.running.get(cell.name)
    if (going) return going
    if (!this.cm.cml.hasRecordsFor(cell.name) || (this.cm.writeBack && !trickle) || !cell.anyLink().connected) return Promise.resolve(null)
    const p = this.replay(cell, trickle ? Date.now() - trickle.olderThanMs : Infinity).finally(() => { this.running.delete(cell.name); this.progress.delete(cell.name) })
    this.running.set(cell.name, p)
    return p
  }

  private async replay (cell: Cell, madeBefore: number): Promise<ReintegrationReport> {
    const records = this.cm.cml.all().filter(r => r.cell === cell.name && r.time <= madeBefore)
    const report: ReintegrationReport = { cell: cell.name, at: Date.now(), applied: 0, conflicts: 0, done: false }
    const progress = { done: 0, total: records.length }
    this.progress.set(cell.name, progress)
    log.info(`reintegrating ${records.length} records of cell ${cell.name}`)
    try {
      for (let i = 0; i < records.length; i += REINTEGRATION_CHUNK) {
        const chunk = records.slice(i, i + REINTEGRATION_CHUNK).filter(r => this.cm.cml.get(r.seq))
        await this.cm.cml.freeze(chunk)
        for (const { seq } of chunk) {
          // Read it again: an earlier record of the same object may have moved its base.
          const r = this.cm.cml.get(seq)
          if (!r) continue
          const outcome = await this.replayOne(cell, r)
          if (outcome === 'applied') report.applied++
          else if (outcome === 'conflict') report.conflicts++
          progress.done++
        }
        log.info(`reintegration of ${cell.name}: ${progress.done}/${progress.total} records`)
      }
      report.done = !this.cm.cml.hasRecordsFor(cell.name) && madeBefore === Infinity
      if (report.done) await this.cm.afterReintegration(cell)
    } catch (err) {
      report.error = (err as Error).message
      log.warn(`reintegration of ${cell.name} stopped after ${progress.done}/${progress.total}: ${report.error}`)
    }
    this.last.set(cell.name, report)
    log.info(`reintegration of ${cell.name}: ${report.applied} applied, ${report.conflicts} conflicts${report.done ? '' : ', more to do'}`)
    return report
  }

  /**
   * Replays one record: applied, flagged as a new conflict, or absorbed into the conflict
   * its object is already in (its local version is kept there). Throws when the server
   * is unreachable.
   */
  private async replayOne (cell: Cell, r: CmlRecord): Promise<'applied' | 'conflict' | 'absorbed'> {
    const o = this.cm.table.get(objectKey(cell.name, r.body.fid))
    if (o?.conflict) {
      this.cm.cml.done(r.seq)
      return 'absorbed'
    }
    const body = this.mapped(r.body)
    const link = await cell.readyLinkFor(body.fid.volume)
    let reply: ReplayReply
    try {
      if (body.op === 'store') {
        const path = this.cm.containers.path(objectKey(cell.name, r.body.fid))
        const size = (await stat(path)).size
        reply = await link.upload('replay', { seq: r.seq, record: { ...body, size } }, createReadStream(path, { highWaterMark: 1 << 20 })) as ReplayReply
      } else {
        reply = await link.call('replay', { seq: r.seq, record: body }) as ReplayReply
      }
    } catch (err) {
      if (isUnreachable(err)) throw err
      await this.flag(cell, r, body, err)
      this.cm.cml.done(r.seq)
      return 'conflict'
    }
    const created = (body.op === 'create' || body.op === 'mkdir' || body.op === 'symlink') && reply.status ? { local: r.body.fid, server: reply.status.fid } : undefined
    const rebase = reply.status && !created && 'base' in body ? { fid: body.fid, from: body.base, to: reply.status.dataVersion } : undefined
    this.cm.cml.done(r.seq, { created, rebase })
    if (body.op === 'store' && reply.status) this.cm.stored(cell, r.body.fid, reply.status)
    return 'applied'
  }

  /** A record with every local fid replaced by the server fid its create received. */
  private mapped (b: CmlRecordBody): CmlRecordBody {
    const m = (f: Fid) => this.cm.cml.mapped(f)
    switch (b.op) {
      case 'create': case 'mkdir': case 'symlink': return { ...b, dir: m(b.dir) }
      case 'store': case 'setattr': return { ...b, fid: m(b.fid) }
      case 'remove': case 'rmdir': return { ...b, dir: m(b.dir), fid: m(b.fid) }
      case 'rename': return { ...b, fromDir: m(b.fromDir), toDir: m(b.toDir), fid: m(b.fid) }
      case 'link': return { ...b, dir: m(b.dir), fid: m(b.fid) }
      default: { const never: never = b; return never }
    }
  }

  /** Keeps both versions of a conflicted object on disk and marks it. */
  private async flag (cell: Cell, r: CmlRecord, body: CmlRecordBody, err: unknown): Promise<void> {
    const e = AfsError.from(err)
    const kind: ConflictKind = (e.data as { kind?: ConflictKind } | undefined)?.kind ?? 'update/remove'
    const id = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`
    const where = this.locate(cell, r.body.fid)
    const dir = 'dir' in body ? body.dir : 'toDir' in body ? body.toDir : where.dir
    const name = 'name' in body ? body.name : 'toName' in body ? body.toName : where.name
    const key = objectKey(cell.name, r.body.fid)
    const dirPath = await ensureConflictDir(this.cm.opts.cacheDir)
    let localCopy: string | null = null
    const o = this.cm.table.get(key)
    if (o && o.cachedVersion !== null && o.status.type === 'file') {
      localCopy = join(dirPath, `${id}.local`)
      await copyFile(this.cm.containers.path(key), localCopy)
    }
    // A name/name conflict: the server's version is the other object now at that name.
    const serverFid = kind === 'name/name' && dir && name !== null ? await this.serverFidAt(cell, dir, name) : body.fid
    const serverCopy = serverFid ? await this.fetchServerCopy(cell, serverFid, join(dirPath, `${id}.server`)) : null
    // A name from the record itself beats a lookup: the object may have left every listing.
    const path = dir && name !== null && 'name' in body ? joinPath(this.locate(cell, dir).path, name) : where.path
    const c: ConflictRecord = { id, cell: cell.name, kind, path, dir, name, fid: r.body.fid, time: Date.now(), message: e.message, localCopy, serverCopy }
    await this.cm.cml.addConflict(c)
    if (o) { o.conflict = { kind, id }; void this.cm.table.save(o) }
    log.warn(`conflict (${kind}) on ${path}: ${e.message}; local version kept${localCopy ? ` in ${localCopy}` : ''}`)
  }

  /** Fetches the server's version of a file into `dest` (for a conflict); null if there is none. */
  private async fetchServerCopy (cell: Cell, fid: Fid, dest: string): Promise<string | null> {
    if (isLocalFid(fid)) return null
    try {
      const { body } = await (await cell.readyLinkFor(fid.volume)).download('fetchData', { fid })
      await pipeline(body, createWriteStream(dest))
      return dest
    } catch {
      return null
    }
  }

  /** Where an object is in its cell, from cached listings (best effort): its path, directory and name. */
  private locate (cell: Cell, fid: Fid): { path: string, dir: Fid | null, name: string | null } {
    const parents = new Map<string, [FsObject, string]>()
    for (const o of this.cm.table.values()) {
      if (o.cell !== cell.name || !o.entries) continue
      for (const [n, d] of o.entries) parents.set(objectKey(cell.name, d.fid), [o, n])
    }
    const first = parents.get(objectKey(cell.name, fid))
    const parts: string[] = []
    let key = objectKey(cell.name, fid)
    for (let hops = 0; hops < 1000; hops++) {
      const up = parents.get(key)
      if (!up) break
      parts.unshift(up[1])
      key = up[0].key
    }
    return { path: `/${cell.name}/${parts.join('/')}`, dir: first ? first[0].status.fid : null, name: first ? first[1] : null }
  }

  private async serverFidAt (cell: Cell, dir: Fid, name: string): Promise<Fid | null> {
    try {
      const link = await cell.readyLinkFor(dir.volume)
      let after: string | undefined
      for (;;) {
        const page = await link.call('fetchDir', after === undefined ? { fid: dir } : { fid: dir, after }) as DirReply
        const hit = page.entries.find(e => e[0] === name)
        if (hit) return hit[1]
        if (!page.more || page.entries.length === 0) return null
        after = page.entries[page.entries.length - 1][0]
      }
    } catch { return null }
  }
}

function joinPath (dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`
}

export function conflictDir (cacheDir: string): string {
  return join(cacheDir, 'conflicts')
}

export async function ensureConflictDir (cacheDir: string): Promise<string> {
  const d = conflictDir(cacheDir)
  await mkdir(d, { recursive: true })
  return d
}
