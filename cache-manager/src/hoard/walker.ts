// The hoard walker (Coda's hoard walk). Responsibilities:
//   1. expand the hoard database's entries (children, descendants, with or without
//      ones created later) into objects, most important entries first
//   2. fetch missing or stale status and data and refresh callbacks, so those objects
//      are present and fresh when the servers go away
//   3. hand the cache manager each object's hoard priority, for eviction
//   4. stay out of the way: a few fetches at a time, yielding to the event loop, never
//      holding the mount; interruptible; periodic, after reconnection, after profile changes
import { AfsError, makeLog } from '@afs-ts/common'
import type { CacheSpace } from '../cache-space.ts'
import type { ObjectCache } from '../object-cache.ts'
import type { WholeFiles } from '../whole-file.ts'
import type { Vfs } from '../vfs.ts'
import { actingAs } from '../tokens.ts'
import type { Cell } from '../cell.ts'
import { hasData, type FsObject } from '../fs-object.ts'
import type { HoardDb, HoardEntry } from './hoard-db.ts'

const log = makeLog('hoard')
/** Objects visited between yields to the event loop. */
const YIELD_EVERY = 16
/** Whole-file fetches a walk keeps going at once: enough to hide latency, few enough to leave the link to users. */
export const WALK_FETCHES_IN_FLIGHT = 4

export interface WalkFailure { path: string, reason: string }
export interface WalkReport { at: number, ms: number, entries: number, objects: number, fetched: number, bytes: number, failures: WalkFailure[], interrupted: boolean }
export interface WalkProgress { entries: number, entriesDone: number, objects: number, fetched: number, bytes: number }

/** Why a hoarded object is not in the cache, in words a user understands. */
export function reasonOf (err: unknown): string {
  const e = AfsError.from(err)
  switch (e.code) {
    case 'TOO_LARGE': return 'too large for the cache'
    case 'NO_SPACE': return 'the cache is full of higher-priority or open files'
    case 'VOLUME_OFFLINE': case 'CONNECTION': case 'TIMEOUT': return 'server unreachable'
    case 'NOT_FOUND': return 'no longer exists'
    case 'PERMISSION': return 'no permission'
    default: return e.message
  }
}

interface Target { path: string, cell: Cell, obj: FsObject }

/** What the hoard walk needs of the cache manager. */
export interface HoardWalkerDeps {
  readonly objects: Pick<ObjectCache, 'entries' | 'object'>
  readonly files: Pick<WholeFiles, 'ensureData'>
  readonly space: Pick<CacheSpace, 'hoardPriorities' | 'hoardFetchPriority'>
}

export class HoardWalker {
  progress: WalkProgress | null = null
  last: WalkReport | null = null
  private running: Promise<WalkReport> | null = null
  private next: Promise<WalkReport> | null = null
  private abort: AbortController | null = null
  private timer: NodeJS.Timeout | null = null

  constructor (private readonly d: HoardWalkerDeps, private readonly vfs: Vfs, private readonly db: HoardDb) {}

  /** Walks every `intervalMs` from now on (and once soon). */
  start (intervalMs: number): void {
    // Walks of their own run as the user the cache manager runs as (its tokens); one asked for by `afs hoard walk`, as its caller.
    const own = () => { void actingAs(process.getuid?.() ?? 0, async () => await this.walk()) }
    this.timer = setInterval(own, intervalMs)
    this.timer.unref()
    setTimeout(own, 1000).unref()
  }

  close (): void {
    if (this.timer) clearInterval(this.timer)
    this.abort?.abort()
  }

  /** A walk now; if one is under way, a fresh one right after it (the database may have changed). */
  walk (): Promise<WalkReport> {
    if (this.running) {
      this.next ??= this.running.catch(() => {}).then(() => { this.next = null; return this.walk() })
      return this.next
    }
    const abort = new AbortController()
    this.abort = abort
    this.running = this.run(abort.signal).finally(() => { this.running = null; this.abort = null; this.progress = null })
    return this.running
  }

  cancel (): void {
    this.abort?.abort()
  }

  private async run (signal: AbortSignal): Promise<WalkReport> {
    const started = Date.now()
    const entries = merge(this.db.list())
    const report: WalkReport = { at: started, ms: 0, entries: entries.length, objects: 0, fetched: 0, bytes: 0, failures: [], interrupted: false }
    const progress: WalkProgress = { entries: entries.length, entriesDone: 0, objects: 0, fetched: 0, bytes: 0 }
    this.progress = progress
    const priorities = new Map<string, number>()
    const inflight = new Set<Promise<void>>()
    for (const entry of entries) {
      if (signal.aborted) break
      for await (const t of this.expand(entry, report)) {
        if (signal.aborted) break
        priorities.set(t.obj.key, Math.max(priorities.get(t.obj.key) ?? 0, entry.priority))
        // Hoarded objects count as hoarded before they are fetched: eviction spares them for this walk.
        this.d.space.hoardPriorities.set(t.obj.key, priorities.get(t.obj.key)!)
        const p: Promise<void> = this.visit(t, report).finally(() => {
          inflight.delete(p)
          progress.objects = report.objects
          progress.fetched = report.fetched
          progress.bytes = report.bytes
        })
        inflight.add(p)
        if (inflight.size >= WALK_FETCHES_IN_FLIGHT) await Promise.race(inflight)
        if (report.objects % YIELD_EVERY === 0) await new Promise(resolve => setImmediate(resolve))
      }
      await Promise.all(inflight) // an entry is done before a lower-priority one starts
      progress.entriesDone++
    }
    await Promise.all(inflight)
    report.interrupted = signal.aborted
    if (!report.interrupted) this.d.space.hoardPriorities = priorities
    report.ms = Date.now() - started
    this.last = report
    log.info(`hoard walk: ${report.objects} objects, ${report.fetched} fetched (${report.bytes} bytes), ${report.failures.length} missing, ${report.ms} ms${report.interrupted ? ', interrupted' : ''}`)
    return report
  }

  private async visit (t: Target, report: WalkReport): Promise<void> {
    report.objects++
    if (t.obj.status.type !== 'file' || hasData(t.obj)) return
    try {
      await this.d.files.ensureData(t.cell, t.obj, this.d.space.hoardFetchPriority(t.obj.key))
      if (hasData(t.obj)) { report.fetched++; report.bytes += t.obj.cachedBytes }
    } catch (err) {
      report.failures.push({ path: t.path, reason: reasonOf(err) })
    }
  }

  /** The objects an entry stands for, the entry itself first. */
  private async * expand (entry: HoardEntry, report: WalkReport): AsyncGenerator<Target> {
    let root: Target
    try {
      const r = await this.vfs.resolveObject(entry.path)
      root = { path: entry.path, ...r }
    } catch (err) {
      report.failures.push({ path: entry.path, reason: reasonOf(err) })
      return
    }
    yield root
    if (entry.expansion === 'none' || root.obj.status.type !== 'dir') return
    const deep = entry.expansion === 'd' || entry.expansion === 'd+'
    const fixed = entry.expansion === 'c' || entry.expansion === 'd'
    const allowed = fixed && entry.snapshot ? new Set(entry.snapshot) : null
    const seen: string[] = []
    const queue: Array<[Target, string]> = [[root, '']]
    while (queue.length) {
      const [dir, rel] = queue.shift()!
      let names: Map<string, { fid: { volume: number, vnode: number, unique: number } }>
      try { names = await this.d.objects.entries(dir.cell, dir.obj) } catch (err) { report.failures.push({ path: dir.path, reason: reasonOf(err) }); continue }
      const children = [...names].map(([name, d]) => ({ name, fid: d.fid, rel: rel ? `${rel}/${name}` : name }))
        .filter(c => !allowed || allowed.has(c.rel))
      // Statuses a few at a time (each may be a fetchStatus), yielded in listing order.
      for (let i = 0; i < children.length; i += WALK_FETCHES_IN_FLIGHT * 2) {
        const batch = children.slice(i, i + WALK_FETCHES_IN_FLIGHT * 2)
        const objs = await Promise.all(batch.map(c => this.d.objects.object(dir.cell, c.fid).catch((err: unknown) => err)))
        for (const [j, c] of batch.entries()) {
          const path = `${dir.path}/${c.name}`
          const obj = objs[j]
          if (!obj || obj instanceof Error || !('key' in (obj as object))) { report.failures.push({ path, reason: reasonOf(obj) }); continue }
          seen.push(c.rel)
          const t = { path, cell: dir.cell, obj: obj as FsObject }
          yield t
          if (deep && t.obj.status.type === 'dir') queue.push([t, c.rel])
        }
      }
    }
    if (fixed && !entry.snapshot) await this.db.setSnapshot(entry, seen)
  }

  /** Every hoarded object that is not in the cache, and why (without fetching anything). */
  async verify (): Promise<WalkFailure[]> {
    const missing: WalkFailure[] = []
    const lastReasons = new Map((this.last?.failures ?? []).map(f => [f.path, f.reason]))
    const report: WalkReport = { at: 0, ms: 0, entries: 0, objects: 0, fetched: 0, bytes: 0, failures: [], interrupted: false }
    for (const entry of merge(this.db.list())) {
      for await (const t of this.expand(entry, report)) {
        if (t.obj.status.type === 'file' && !hasData(t.obj)) missing.push({ path: t.path, reason: lastReasons.get(t.path) ?? 'not fetched yet (afs hoard walk)' })
      }
    }
    return [...missing, ...report.failures]
  }
}

/** One entry per path: the highest priority and the widest expansion any source asked for. */
function merge (entries: HoardEntry[]): HoardEntry[] {
  const rank = { none: 0, c: 1, 'c+': 2, d: 3, 'd+': 4 }
  const byPath = new Map<string, HoardEntry>()
  for (const e of entries) {
    const cur = byPath.get(e.path)
    if (!cur) { byPath.set(e.path, e); continue }
    byPath.set(e.path, { ...cur, priority: Math.max(cur.priority, e.priority), expansion: rank[e.expansion] > rank[cur.expansion] ? e.expansion : cur.expansion })
  }
  return [...byPath.values()].sort((a, b) => b.priority - a.priority)
}
