// A table of advisory locks: the server's (AFS keeps whole-file locks there; these are
// fcntl's byte ranges too, and flock's whole-file locks, a family of their own), held as
// leases the holding client renews — a client that dies or is cut off loses its locks
// when its lease runs out; and a cache manager's, for locks it holds or took offline.
//
// Operations:
//   acquire(req)          → the lock granted (with the file's next generation), or the lock in its way
//   wait(req)             → resolves when the lock is granted; rejects when withdrawn
//   release(req)          → frees an owner's locks over a range (flock: its lock)
//   test(req)             → the first lock in the way (F_GETLK), or null
//   renew(client)         → extends a client's lease; expire → the locks of leases run out go
//   cancelWaits/dropClient → a client's waits end (its connection went) / and its locks go
// Invariants:
//   - no two granted locks of one family on one file conflict: locks of different owners
//     over overlapping ranges where either is a write lock
//   - an owner's POSIX locks never overlap each other (a new one replaces the part of the
//     old it covers, as fcntl does); an owner has at most one flock lock per file
//   - each grant takes the file's next generation, a fencing token: a lock granted after
//     another expired carries a higher one
//   - a waiter watches only the lock in its way (its predecessor), and is looked at again
//     only when that lock goes or shrinks: a release wakes the waiters it held up, not all
import { busy, invalid } from './errors.ts'

export type LockKind = 'read' | 'write'
export type LockFamily = 'posix' | 'flock'

export interface LockRequest {
  fid: string
  client: string
  /** The lock owner within the client (fcntl: the process's files; flock: the open file). */
  owner: string
  family: LockFamily
  kind: LockKind
  /** Bytes [start, end); end Infinity: to the end of the file, however long. flock: [0, Infinity). */
  start: number
  end: number
}

export interface HeldLock extends LockRequest { generation: number }

interface Waiter { req: LockRequest, resolve: (l: HeldLock) => void, reject: (err: Error) => void }

/** A client's lease lasts this long unless renewed. */
export const LOCK_LEASE_MS = 10_000

export class LockTable {
  /** fid → its granted locks. */
  private readonly locks = new Map<string, HeldLock[]>()
  /** fid → its last generation. */
  private readonly generations = new Map<string, number>()
  /** The lock each waiter waits on → its waiters, in arrival order. */
  private readonly waiting = new Map<HeldLock, Waiter[]>()
  /** client → lease expiry (ms epoch). */
  private readonly leases = new Map<string, number>()

  constructor (readonly leaseMs = LOCK_LEASE_MS) {}

  /**
   * Grants `req` if nothing is in its way; otherwise returns the lock in its way. A table
   * mirroring another's grants takes their `generation`.
   */
  acquire (req: LockRequest, now = Date.now(), generation?: number): { granted: HeldLock } | { blocked: HeldLock } {
    check(req)
    const inWay = this.test(req)
    if (inWay) return { blocked: inWay }
    return { granted: this.grant(req, now, generation) }
  }

  /** Like acquire, but waits for the locks in the way to go. */
  async wait (req: LockRequest, now = Date.now()): Promise<HeldLock> {
    const r = this.acquire(req, now)
    if ('granted' in r) return r.granted
    return await new Promise<HeldLock>((resolve, reject) => this.enqueue(r.blocked, { req, resolve, reject }))
  }

  /** The first lock of another owner in the way of `req`, or null. */
  test (req: LockRequest): HeldLock | null {
    for (const l of this.locks.get(req.fid) ?? []) {
      if (l.family !== req.family || sameOwner(l, req)) continue
      if (overlaps(l, req) && (l.kind === 'write' || req.kind === 'write')) return l
    }
    return null
  }

  /** Frees `req`'s owner's locks over its range (its flock lock: the whole one). */
  release (req: Omit<LockRequest, 'kind'>): void {
    const list = this.locks.get(req.fid)
    if (!list) return
    const kept: HeldLock[] = []
    const changed: HeldLock[] = []
    for (const l of list) {
      if (l.family !== req.family || !sameOwner(l, req) || !overlaps(l, req)) { kept.push(l); continue }
      changed.push(l)
      // The parts outside the range stay, with the same generation.
      if (l.start < req.start) kept.push({ ...l, end: req.start })
      if (l.end > req.end) kept.push({ ...l, start: req.end })
    }
    this.store(req.fid, kept)
    this.wake(changed)
  }

  /** Every lock a client holds (for status and renewals). */
  heldBy (client: string): HeldLock[] {
    const out: HeldLock[] = []
    for (const list of this.locks.values()) for (const l of list) if (l.client === client) out.push(l)
    return out
  }

  /** Whether `client` holds a write lock of generation `generation` on `fid` (fencing a write made under it). */
  holds (fid: string, client: string, generation: number): boolean {
    return (this.locks.get(fid) ?? []).some(l => l.client === client && l.kind === 'write' && l.generation === generation)
  }

  /** When a client's lease runs out (0: it has none). */
  leaseOf (client: string): number {
    return this.leases.get(client) ?? 0
  }

  /** A client's waits end (its connection went): refused, so that nothing is granted to no one. */
  cancelWaits (client: string, why = 'the client went while it waited'): void {
    for (const [lock, waiters] of this.waiting) {
      const mine = waiters.filter(w => w.req.client === client)
      if (mine.length === 0) continue
      this.waiting.set(lock, waiters.filter(w => w.req.client !== client))
      for (const w of mine) w.reject(busy(why))
    }
  }

  /** Extends a client's lease (it holds or waits for locks). */
  renew (client: string, now = Date.now()): number {
    const expiresAt = now + this.leaseMs
    this.leases.set(client, expiresAt)
    return expiresAt
  }

  /** Drops the locks of clients whose lease ran out (what they wait for, they wait for still: that ends with their connection). */
  expire (now = Date.now()): string[] {
    const lost: string[] = []
    for (const [c, at] of [...this.leases]) if (at <= now && this.dropLocks(c)) lost.push(c)
    return lost
  }

  /** A client gone for good: its locks are freed, its waits refused. */
  dropClient (client: string): void {
    this.cancelWaits(client, 'the client lost its locks (its lease ran out)')
    this.dropLocks(client)
  }

  /** Frees a client's locks; whether it held any. */
  private dropLocks (client: string): boolean {
    this.leases.delete(client)
    let any = false
    for (const [fid, list] of this.locks) {
      const gone = list.filter(l => l.client === client)
      if (gone.length === 0) continue
      any = true
      this.store(fid, list.filter(l => l.client !== client))
      this.wake(gone)
    }
    return any
  }

  private grant (req: LockRequest, now: number, given?: number): HeldLock {
    const generation = given ?? (this.generations.get(req.fid) ?? 0) + 1
    this.generations.set(req.fid, Math.max(generation, this.generations.get(req.fid) ?? 0))
    // An owner's own locks under the new one are replaced by it (fcntl); flock has one per owner.
    const mine = req.family === 'flock' ? { ...req, start: 0, end: Infinity } : req
    const before = (this.locks.get(req.fid) ?? [])
    const replaced = before.filter(l => l.family === req.family && sameOwner(l, req) && overlaps(l, mine))
    const kept = before.filter(l => !replaced.includes(l))
    for (const l of replaced) {
      if (l.start < mine.start) kept.push({ ...l, end: mine.start })
      if (l.end > mine.end) kept.push({ ...l, start: mine.end })
    }
    const held: HeldLock = { ...mine, generation }
    kept.push(held)
    this.store(req.fid, kept)
    if (!this.leases.has(req.client)) this.renew(req.client, now)
    this.wake(replaced) // a lock made weaker (write → read) may let readers in
    return held
  }

  private store (fid: string, list: HeldLock[]): void {
    if (list.length) this.locks.set(fid, list)
    else this.locks.delete(fid)
  }

  private enqueue (on: HeldLock, w: Waiter): void {
    const list = this.waiting.get(on)
    if (list) list.push(w)
    else this.waiting.set(on, [w])
  }

  /** Locks gone or shrunk: their waiters try again, in arrival order, each then waiting on what is in its way now. */
  private wake (locks: HeldLock[]): void {
    for (const l of locks) {
      const waiters = this.waiting.get(l)
      if (!waiters) continue
      this.waiting.delete(l)
      for (const w of waiters) {
        const r = this.acquire(w.req)
        if ('granted' in r) w.resolve(r.granted)
        else this.enqueue(r.blocked, w)
      }
    }
  }
}

function sameOwner (a: { client: string, owner: string }, b: { client: string, owner: string }): boolean {
  return a.client === b.client && a.owner === b.owner
}

function overlaps (a: { start: number, end: number }, b: { start: number, end: number }): boolean {
  return a.start < b.end && b.start < a.end
}

function check (req: LockRequest): void {
  if (!(req.start >= 0 && req.end > req.start)) throw invalid(`a lock covers bytes [start, end) with 0 <= start < end, not [${req.start}, ${req.end})`)
}
