// Advisory locks through the mount (fcntl's byte ranges and flock's whole files), AFS
// style: taken on the volume's server while it answers, where every client sees them,
// and held as a lease this cache manager renews. While the server cannot be reached a
// lock is taken on this machine only, and the log says so. Responsibilities:
//   1. lock, unlock and test for the FUSE adapter: on the server, or locally
//   2. renew the leases of the servers it holds locks on; notice locks a server dropped
//   3. name the write lock a store is made under (the server refuses it once that lock is gone)
//   4. list the locks held, for afs status
import { AfsError, LockTable, fidKey, makeLog, parseFid, wouldBlock, type Fid, type HeldLock, type LockFamily, type LockKind, type LockRequest } from '@afs-ts/common'
import type { Cell } from './cell.ts'
import type { FsObject } from './fs-object.ts'
import type { ServerLink } from './server-link.ts'
import type { VolumeCalls } from './volume.ts'

const log = makeLog('locks')
/** The client these tables hold locks for: this machine (the server knows it by its client id). */
const ME = 'this machine'
/** Leases are renewed this often (the server's lease is longer: 10 s by default). */
const RENEW_MS = 3_000

export interface LockAsk { family: LockFamily, owner: string, kind: LockKind, start: number, end: number }
/** A lock in the way, as F_GETLK describes it. */
export interface Blocker { kind: LockKind, start: number, end: number, holder: string }

/** What the lock table needs of the cache manager: the cells, and whether a volume's server answers. */
export interface LockHost {
  cells: Map<string, Cell>
  reachable (cell: Cell, volume: number): boolean
}

export class Locks {
  /** Locks this machine holds on servers, as the servers hold them (same merge and split rules). */
  private readonly onServers = new LockTable(Infinity)
  /** Locks taken while the server could not be reached: this machine's only. */
  private readonly local = new LockTable(Infinity)
  /** fid key → the cell holding locks on it. */
  private readonly cellOf = new Map<string, string>()
  /**
   * fid key → the generation of a write lock a server dropped (its lease ran out): the next
   * store of the file still names it, so that the server refuses it rather than let it
   * overwrite what a new holder wrote.
   */
  private readonly lost = new Map<string, number>()
  private readonly renewal: NodeJS.Timeout

  constructor (private readonly host: LockHost) {
    this.renewal = setInterval(() => { void this.renew() }, RENEW_MS)
    this.renewal.unref()
  }

  close (): void { clearInterval(this.renewal) }

  /** Takes a lock; `wait`: until it is free (F_SETLKW, flock without LOCK_NB), else WOULD_BLOCK. */
  async lock (cell: Cell, o: FsObject, ask: LockAsk, wait: boolean): Promise<void> {
    const fid = o.status.fid
    const req = this.request(fid, ask)
    if (!this.host.reachable(cell, fid.volume)) {
      log.warn(`${o.key}: ${ask.kind} lock taken on this machine only (the server is unreachable): other clients do not see it`)
      if (wait) await this.local.wait(req)
      else this.take(this.local, req)
      return
    }
    const reply = await this.link(cell, fid).call('lock', { fid, ...wire(ask), kind: ask.kind, wait }, wait ? 0 : undefined)
    this.cellOf.set(req.fid, cell.name)
    this.onServers.acquire(req, Date.now(), reply.generation)
    if (log.debugging) log.debug(`${o.key}: ${ask.family} ${ask.kind} lock [${ask.start}, ${ask.end}) for ${ask.owner}, generation ${reply.generation}`)
  }

  async unlock (cell: Cell, o: FsObject, ask: Omit<LockAsk, 'kind'>): Promise<void> {
    const fid = o.status.fid
    const req = this.request(fid, { ...ask, kind: 'write' })
    this.local.release(req)
    if (!this.onServers.heldBy(ME).some(l => l.fid === req.fid && l.owner === ask.owner && l.family === ask.family)) return
    this.onServers.release(req)
    try {
      await this.link(cell, fid).call('unlock', { fid, ...wire(ask) })
    } catch (err) {
      // Unreachable: the lease runs out on the server and frees it there.
      log.warn(`${o.key}: could not unlock on the server (${(err as Error).message}); it goes when the lease runs out`)
    }
  }

  /** The first lock in the way of `ask` (F_GETLK), or null. */
  async test (cell: Cell, o: FsObject, ask: LockAsk): Promise<Blocker | null> {
    const fid = o.status.fid
    const here = this.local.test(this.request(fid, ask))
    if (here) return { kind: here.kind, start: here.start, end: here.end, holder: 'this machine' }
    if (!this.host.reachable(cell, fid.volume)) return null
    const r = await this.link(cell, fid).call('testLock', { fid, ...wire(ask), kind: ask.kind })
    return r.blocker && { kind: r.blocker.kind, start: r.blocker.start, end: r.blocker.end ?? Infinity, holder: r.blocker.holder }
  }

  /**
   * The generation of the write lock a store of `fid` is made under, if any (the server
   * fences it): one held on the server, or one lost since (then it is forgotten: the store
   * it fences is refused and kept in the log).
   */
  writeGeneration (fid: Fid): number | undefined {
    const key = fidKey(fid)
    let best = this.lost.get(key)
    this.lost.delete(key)
    for (const l of this.onServers.heldBy(ME)) if (l.fid === key && l.kind === 'write') best = Math.max(best ?? 0, l.generation)
    return best
  }

  /** Every lock held, for afs status. */
  list (): Array<{ fid: string, family: LockFamily, kind: LockKind, start: number, end: number | null, where: 'server' | 'local' }> {
    const show = (l: HeldLock, where: 'server' | 'local') => ({ fid: l.fid, family: l.family, kind: l.kind, start: l.start, end: l.end === Infinity ? null : l.end, where })
    return [...this.onServers.heldBy(ME).map(l => show(l, 'server')), ...this.local.heldBy(ME).map(l => show(l, 'local'))]
  }

  /** The file's last handle closed: a lost lock no longer fences anything of it. */
  closed (fid: Fid): void {
    this.lost.delete(fidKey(fid))
  }

  /** Renews the lease on each server this machine holds locks on (one call each); forgets locks a server no longer has. */
  private async renew (): Promise<void> {
    const byLink = new Map<ServerLink, HeldLock[]>()
    for (const l of this.onServers.heldBy(ME)) {
      const cell = this.host.cells.get(this.cellOf.get(l.fid) ?? '')
      if (!cell) continue
      const link = cell.route(parseFid(l.fid).volume).preferred
      byLink.set(link, [...byLink.get(link) ?? [], l])
    }
    for (const [link, mine] of byLink) {
      if (!link.connected) continue
      try {
        const r = await link.call('renewLocks', {})
        this.reconcile(mine, r.locks)
      } catch (err) {
        if (!(err instanceof AfsError)) throw err
        log.warn(`could not renew the lock lease on ${link.address}: ${err.message}`)
      }
    }
  }

  /** Of `mine`, the server holds only `held`: the others went with a lease that ran out. */
  private reconcile (mine: HeldLock[], held: Array<{ fid: string, generation: number }>): void {
    const there = new Set(held.map(h => `${h.fid}#${h.generation}`))
    for (const l of mine) {
      if (there.has(`${l.fid}#${l.generation}`)) continue
      log.error(`lost the ${l.kind} lock on ${l.fid} (its lease ran out on the server): others may have taken it`)
      if (l.kind === 'write') this.lost.set(l.fid, Math.max(l.generation, this.lost.get(l.fid) ?? 0))
      this.onServers.release({ ...l })
    }
  }

  private take (table: LockTable, req: LockRequest): void {
    const r = table.acquire(req)
    if ('blocked' in r) throw wouldBlock(`${req.kind} lock held by another process on this machine`)
  }

  private request (fid: Fid, ask: LockAsk): LockRequest {
    return { fid: fidKey(fid), client: ME, owner: ask.owner, family: ask.family, kind: ask.kind, start: ask.start, end: ask.end }
  }

  private link (cell: Cell, fid: Fid): VolumeCalls {
    return cell.route(fid.volume)
  }
}

function wire (ask: Omit<LockAsk, 'kind'>) {
  return { owner: ask.owner, family: ask.family, start: ask.start, end: ask.end === Infinity ? null : ask.end }
}
