// Repairing conflicts (Coda's repair tool, done by the cache manager for `afs repair`).
// Responsibilities:
//   1. put the chosen version at the conflicted path on the server like any other
//      update — every change conditional on the server still having what the
//      conflict recorded, so two repairs at once cannot both win
//   2. only then close the conflict: the object is a normal file again, its cached
//      copy and listing dropped so the next access reads the server's
//   3. keep each resolution (and the files of both versions) in a history that can
//      be inspected and undone
import { copyFile, readFile, rm, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { basename, extname, join } from 'node:path'
import {
  AfsError, conflict, fetchWholeDir, exists, invalid, isText, makeLog, notFound, sameFid, nameSchema, volumeOffline,
  type Fid, type ObjectType,
} from '@afs-ts/common'
import type { CacheSpace } from '../cache-space.ts'
import type { ObjectCache } from '../object-cache.ts'
import type { Ancestors } from './ancestors.ts'
import type { ConflictKeeper } from './conflict-keeper.ts'
import type { Cell } from '../cell.ts'
import { isLocalFid, type ClientModifyLog } from '../cml.ts'
import { dropListing } from '../fs-object.ts'
import { objectKey, type FsObjectTable } from '../fs-object-table.ts'
import { contentHash, nothingThere, type ConflictRecord, type Resolution, type Side, type ServerSide } from './conflict.ts'
import { mergeTexts } from './merge.ts'
import { Placement } from './placement.ts'

const log = makeLog('repair')
/** Resolutions kept in the history (with their files) for inspection and undo. */
export const HISTORY_KEPT = 200

export type Choice =
  | { keep: 'local' | 'server' | 'both', as?: string }
  | { merge: string }
  | { mergeAuto: true }
  | { discardLocal: true }

/** An entry of a directory conflict: on which side, and what it is on each. */
export interface DirEntryView { name: string, where: 'here' | 'server' | 'both' | 'both, different objects', here: ObjectType | null, server: ObjectType | null }

/** What repairs need of the cache manager. */
export interface RepairerDeps {
  readonly objects: Pick<ObjectCache, 'cell' | 'forget' | 'object' | 'serialize'>
  readonly table: FsObjectTable
  readonly cml: ClientModifyLog
  readonly conflicts: Pick<ConflictKeeper, 'dir' | 'lookup' | 'refresh' | 'serverSide'>
  readonly ancestors: Pick<Ancestors, 'drop'>
  readonly space: Pick<CacheSpace, 'evict'>
}

/** A resolved conflict, as kept in the history. */
export class Repairer {
  private readonly placement: Placement

  constructor (private readonly d: RepairerDeps) {
    this.placement = new Placement(d)
  }

  /** A conflict by id or by its path (`/<cell>/...`). */
  find (ref: string): ConflictRecord {
    const c = this.d.cml.conflict(ref) ?? this.d.cml.conflicts().find(x => x.path === ref)
    if (!c) throw notFound(`no conflict at ${ref} (afs repair list shows them)`)
    return c
  }

  /** Resolves a conflict; one repair of a conflict at a time (a resolver and the user may race). */
  async resolve (c: ConflictRecord, choice: Choice, by = 'user'): Promise<Resolution> {
    return await this.d.objects.serialize(`repair:${c.id}`, async () => {
      const now = this.d.cml.conflict(c.id)
      if (!now) throw notFound(`${c.path}: that conflict was resolved already (afs repair history)`)
      return await this.resolveOpen(now, choice, by)
    })
  }

  private async resolveOpen (kept: ConflictRecord, choice: Choice, by: string): Promise<Resolution> {
    // A conflict kept by an earlier version does not say which object the server has there.
    const c = kept.server.type !== 'none' && !kept.server.fid ? await this.d.conflicts.refresh(kept) : kept
    const cell = this.d.objects.cell(c.cell)
    if (!('discardLocal' in choice)) this.requireServer(cell, c)
    if (!c.dir || c.name === null) throw invalid(`${c.path}: where the object was is unknown; copy ${c.localCopy ?? 'nothing'} out by hand and discard the local version`)
    const dir = this.d.cml.mapped(c.dir)
    if (isLocalFid(dir) && !('discardLocal' in choice) && !('keep' in choice && choice.keep === 'server')) {
      const parent = c.path.slice(0, c.path.lastIndexOf('/'))
      if (this.d.cml.conflicts().some(x => sameFid(x.fid, dir))) throw invalid(`${c.path}: its directory was made here and is in conflict itself; resolve ${parent} first`)
      throw invalid(`${c.path}: its directory ${parent}, made here, was not kept on the server; copy ${c.local.copy ?? 'what you need'} out by hand, then discard-local`)
    }
    const keeping = 'keep' in choice ? choice.keep : null
    let done: { action: string, result: Resolution['result'] }
    let want: Side = c.local
    try {
      if ('discardLocal' in choice) {
        done = { action: 'dropped the local version; the server\'s stays', result: null }
      } else if (keeping === 'server') {
        await this.checkUnchanged(c)
        done = { action: 'kept the server\'s version; dropped the local one', result: null }
      } else if (keeping === 'both') {
        done = await this.keepBoth(cell, c, dir, 'keep' in choice ? choice.as : undefined)
      } else {
        if (!keeping) want = { ...c.local, type: 'file', size: null, sha256: null, copy: 'merge' in choice ? await this.adopt(c, choice.merge) : await this.autoMerge(c) }
        const result = await this.placement.put(cell, c, dir, c.name, want, c.server)
        done = { action: keeping ? 'put the local version on the server' : `put the ${'merge' in choice ? (by === 'user' ? 'hand-merged' : 'resolver\'s') : 'merged'} version on the server`, result: result && { path: c.path, name: c.name, ...result } }
      }
    } catch (err) {
      const e = AfsError.from(err)
      if (e.code === 'NOT_EMPTY') throw invalid(`${c.path}: the server's directory has entries (afs repair show lists them); remove them first, or keep the server's`)
      // Someone else changed the path since the conflict was found (another repair, perhaps).
      // (Keeping the server's version or both sides checks and says so itself.)
      if (keeping === 'server' || keeping === 'both' || (e.code !== 'CONFLICT' && e.code !== 'EXISTS')) throw err
      const fresh = await this.changed(c, want)
      // An earlier attempt cut short after the server took it, or the same choice made elsewhere.
      const there = fresh.server.fid ? { path: c.path, name: c.name, fid: fresh.server.fid, type: fresh.server.type as ObjectType, dataVersion: fresh.server.dataVersion! } : null
      done = { action: 'the chosen version was on the server already', result: there }
    }
    const r: Resolution = { id: c.id, path: c.path, kind: c.kind, choice: choiceName(choice), by, at: Date.now(), ...done, conflict: c }
    await this.close(cell, c, dir, r)
    log.info(`repaired ${c.path} (${c.kind}): ${r.action}${by === 'user' ? '' : ` [${by}]`}`)
    return r
  }

  /**
   * Undoes a resolution from the history: what the server had at the path before it
   * goes back (only if the repair's result is still there), and the conflict is open again.
   */
  async undo (id: string): Promise<ConflictRecord> {
    const r = this.resolution(id)
    if (!r) throw notFound(`no resolution ${id} in the history (afs repair history lists them)`)
    if (r.undoneAt) throw invalid(`the resolution of ${r.path} was undone already`)
    const c = r.conflict
    if (this.d.cml.conflicts().some(x => x.path === c.path)) throw invalid(`${c.path} is in conflict again; resolve that first`)
    if (c.kind === 'rename' && r.result) throw invalid(`${c.path}: a repaired rename cannot be undone by itself; both versions are in ${this.d.conflicts.dir}`)
    const cell = this.d.objects.cell(c.cell)
    this.requireServer(cell, c)
    const dir = this.d.cml.mapped(c.dir!)
    if (r.result || r.choice === 'local' || r.choice === 'merge' || r.choice === 'merge-auto') {
      const now: ServerSide = r.result
        ? { type: r.result.type, fid: r.result.fid, dataVersion: r.result.dataVersion, size: null, sha256: null, mtimeMs: null, copy: null }
        : nothingThere()
      const name = r.result?.name ?? c.name!
      const back: Side = r.choice === 'both' ? nothingThere() : c.server
      try {
        await this.placement.put(cell, c, dir, name, back, now)
      } catch (err) {
        const e = AfsError.from(err)
        if (e.code !== 'CONFLICT' && e.code !== 'EXISTS' && e.code !== 'NOT_FOUND') throw err
        throw conflict(`${r.result?.path ?? c.path} changed on the server after the repair; undoing it would lose that change, so nothing was done (${e.message})`)
      }
    }
    await this.d.cml.reopenConflict(r, c)
    const fresh = await this.d.conflicts.refresh(c)
    if (!isLocalFid(c.fid) && c.local.type !== 'none') {
      const o = await this.d.objects.object(cell, c.fid).catch(() => null)
      if (o) { o.conflict = { kind: c.kind, id: c.id }; void this.d.table.save(o) }
    }
    this.invalidateListings(cell, c, dir)
    log.info(`undid the repair of ${c.path}: in conflict again`)
    return fresh
  }

  /** The latest resolution of the conflict `id` in the history. */
  resolution (id: string): Resolution | undefined {
    return this.d.cml.history().reverse().find(x => x.id === id)
  }

  /** A repair goes through the server: not while it is unreachable (or the user disconnected). */
  private requireServer (cell: Cell, c: ConflictRecord): void {
    if (cell.route(c.fid.volume).connected) return
    throw volumeOffline(`${c.path}: its server is not reachable now (afs status); the conflict and both versions stay until it is`)
  }

  /** Keeps the server's version at the path and puts the local one beside it under a new name. */
  private async keepBoth (cell: Cell, c: ConflictRecord, dir: Fid, as?: string): Promise<{ action: string, result: Resolution['result'] }> {
    if (c.local.type === 'none') return { action: 'kept the server\'s version (the local change removed the object: nothing to keep beside it)', result: null }
    if (as !== undefined && !nameSchema.safeParse(as).success) throw invalid(`--as ${JSON.stringify(as)}: a name is 1-255 bytes without / or NUL, and not . or ..`)
    const none = nothingThere()
    for (let n = 1; n < 100; n++) {
      const name = as ?? besideName(c.name!, c.local.changedAt, n)
      try {
        const result = await this.placement.put(cell, c, dir, name, c.local, none)
        const path = `${c.path.slice(0, c.path.length - c.name!.length)}${name}`
        return { action: 'kept the server\'s version at the path and the local one beside it', result: result && { path, name, ...result } }
      } catch (err) {
        if (AfsError.from(err).code !== 'EXISTS') throw err
        if (as !== undefined) throw exists(`--as ${as}: that name is taken in ${c.path.slice(0, c.path.lastIndexOf('/')) || '/'}; choose another`)
      }
    }
    throw exists(`no free name beside ${c.path}`)
  }

  /**
   * The server's side is no longer what the conflict recorded: reads it again. Throws
   * to say so, unless it now is exactly what was wanted (then returns the fresh conflict).
   */
  private async changed (c: ConflictRecord, want: Side): Promise<ConflictRecord> {
    const fresh = await this.d.conflicts.refresh(c)
    const same = fresh.server.type === want.type && (want.type !== 'file' || fresh.server.sha256 === await contentHash(want))
    if (same) return fresh
    const now = fresh.server.type === 'none' ? 'nothing is there now' : `it holds version ${fresh.server.dataVersion} now`
    throw conflict(`${c.path} changed on the server since the conflict was found (${now}): nothing was changed here or there; look again with afs repair show`)
  }

  /** Keeping the server's version: only if it is still the one the user saw. */
  private async checkUnchanged (c: ConflictRecord): Promise<void> {
    const cell = this.d.objects.cell(c.cell)
    const now = await this.d.conflicts.lookup(cell, this.d.cml.mapped(c.dir!), c.name!)
    const fid = now?.fid ?? null
    const same = (fid === null) === (c.server.fid === null) && (fid === null || sameFid(fid, c.server.fid!)) &&
      (c.server.type !== 'file' || now?.status?.dataVersion === c.server.dataVersion)
    if (!same) await this.changed(c, nothingThere())
  }

  /** A hand-merged file, copied into the conflict's folder first (the user may delete theirs). */
  private async adopt (c: ConflictRecord, file: string): Promise<string> {
    if (c.local.type !== 'file' && c.server.type !== 'file') throw invalid(`${c.path}: --merge takes a file, and neither side is one`)
    const dest = join(this.d.conflicts.dir, `${c.id}.merged`)
    try { await copyFile(file, dest) } catch (err) { throw invalid(`cannot take ${file} as the merged version: ${(err as Error).message}`) }
    return dest
  }

  /** A three-way merge of the two versions against their common ancestor; refuses when the changes overlap. */
  private async autoMerge (c: ConflictRecord): Promise<string> {
    const m = await this.mergePreview(c)
    if (!m.ok) throw invalid(`${c.path}: cannot merge by itself: ${m.reason}`)
    const dest = join(this.d.conflicts.dir, `${c.id}.merged`)
    await writeFile(dest, m.text)
    return dest
  }

  /** For a directory conflict: each entry, where it is, and for one on both sides whether it is the same object. */
  async entries (c: ConflictRecord): Promise<DirEntryView[] | null> {
    if (c.local.type !== 'dir' && c.server.type !== 'dir') return null
    const here = new Map(c.local.type === 'dir' ? [...this.d.table.get(objectKey(c.cell, c.fid))?.entries ?? []] : [])
    const there = new Map<string, { fid: Fid, type: ObjectType }>()
    if (c.server.type === 'dir' && c.server.fid) {
      const volume = this.d.objects.cell(c.cell).route(c.server.fid.volume)
      for (const [name, fid, type] of (await fetchWholeDir(volume, c.server.fid)).entries) there.set(name, { fid, type })
    }
    const names = [...new Set([...here.keys(), ...there.keys()])].sort()
    return names.map(name => {
      const h = here.get(name)
      const t = there.get(name)
      const where = !t ? 'here' : !h ? 'server' : sameFid(this.d.cml.mapped(h.fid), t.fid) ? 'both' : 'both, different objects'
      return { name, where, here: h?.type ?? null, server: t?.type ?? null }
    })
  }

  /** Whether --merge-auto would succeed, and its result. */
  async mergePreview (c: ConflictRecord): Promise<{ ok: true, text: string } | { ok: false, reason: string, overlaps?: Array<{ line: number, local: string[], server: string[] }> }> {
    if (c.local.type !== 'file' || c.server.type !== 'file' || !c.local.copy || !c.server.copy) return { ok: false, reason: 'both sides must be files with contents' }
    if (!c.base) return { ok: false, reason: 'no common ancestor was kept (the file was new, larger than 64 MiB, or opened before the volume went offline)' }
    const [l, b, s] = await Promise.all([readFile(c.local.copy), readFile(c.base.copy), readFile(c.server.copy)])
    if (![l, b, s].every(isText)) return { ok: false, reason: 'not a text file' }
    const m = mergeTexts(l.toString('utf8'), b.toString('utf8'), s.toString('utf8'))
    if (!m.clean) return { ok: false, reason: `${m.overlaps.length} change(s) overlap (first near line ${m.overlaps[0].line} of the ancestor)`, overlaps: m.overlaps }
    return { ok: true, text: m.text }
  }

  /** After the chosen version is on the server: the conflict closes and the object is a normal one again. */
  private async close (cell: Cell, c: ConflictRecord, dir: Fid, r: Resolution): Promise<void> {
    await this.d.cml.closeConflict(c.id, r, HISTORY_KEPT, old => this.dropFiles(old.conflict))
    const o = this.d.table.get(objectKey(cell.name, c.fid))
    if (o && o.conflict?.id === c.id) {
      o.conflict = null
      o.dirty = false
      o.loggedGen = o.writeGen
      o.baseVersion = null
      o.cbExpiresAt = 0
      if (isLocalFid(o.status.fid)) await this.d.objects.forget(o)
      else await this.d.space.evict(o)
    }
    await this.d.ancestors.drop(objectKey(cell.name, c.fid))
    this.invalidateListings(cell, c, dir)
  }

  /** The conflicted path's directory is listed from the server again (the conflict no longer overlays it). */
  private invalidateListings (cell: Cell, c: ConflictRecord, dir: Fid): void {
    for (const d of [c.dir!, dir]) {
      const p = this.d.table.get(objectKey(cell.name, d))
      if (!p) continue
      dropListing(p)
      p.cbExpiresAt = 0
      void this.d.table.save(p)
    }
  }

  private async dropFiles (c: ConflictRecord): Promise<void> {
    for (const suffix of ['local', 'server', 'base', 'merged', 'moved']) await rm(join(this.d.conflicts.dir, `${c.id}.${suffix}`), { force: true })
  }
}

function choiceName (c: Choice): string {
  if ('keep' in c) return c.keep
  if ('merge' in c) return 'merge'
  if ('mergeAuto' in c) return 'merge-auto'
  return 'discard-local'
}

/** `notes.conflict-20261125-231733-host.txt`: clear, sortable, and unique with `n`. */
export function besideName (name: string, time: number, n: number): string {
  const ext = extname(name)
  const stem = ext && ext !== name ? basename(name, ext) : name
  const when = new Date(time).toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15)
  const host = hostname().split('.')[0].replace(/[^A-Za-z0-9_-]/g, '') || 'here'
  const tail = `.conflict-${when}-${host}${n > 1 ? `-${n}` : ''}${ext}`
  let head = stem
  while (Buffer.byteLength(head + tail) > 255) head = head.slice(0, -1)
  return head + tail
}
