// Resolution of replicated volumes (Coda's resolution, by version vectors). A member that
// finds its replica of an object differs from another's — a client saw the members'
// statuses differ, or this member's sweep compared volume vectors with another member —
// gathers every member's version and decides:
//   equal: nothing to do; weakly equal (the same last update, counted differently, a
//   COP2 lost): the vectors are made equal; one dominates: the others take it whole,
//   server to server (a directory's entries too: an entry only the dominant has comes as
//   a stub, resolved in its turn; one it lacks goes only when it removed or moved it);
//   incomparable: a server/server conflict, marked on every member, every version kept.
import {
  AfsError, compareVv, countsAll, fetchWholeDir, isUnreachable, fidKey as key, makeLog, maxVv, parseFid, DIR_PAGE_ENTRIES,
  type ExamineReply, type Fid, type PendingReply, type ObjectType, type Peer, type VersionVector as Vv, type VnodeStatus, type VolumeEntry,
} from '@afs-ts/common'
import { HISTORY_KEPT, type VolumeStore } from './volume-store.ts'
import type { VnodeRecord } from './vnode.ts'

const log = makeLog('fileserver')
/** Objects a sweep resolves at once. */
const RESOLVING_AT_ONCE = 16
/** Every this many sweeps, objects are compared even when the volume vectors are equal. */
const SWEEPS_FULL = 10
/** Sweeps that wait for a difference to settle before comparing anyway. */
const SWEEPS_WAITED = 5
/** Vectors fetched per page when comparing replicas. */
const VECTOR_PAGE = 5_000

export type Outcome = 'equal' | 'weakly-equal' | 'resolved' | 'conflict' | 'unreachable'
/**
 * Whether version `a` holds every update version `b` holds: its vector dominates or
 * equals b's, or every update b remembers (its last few dozen) is in a's history —
 * a member that took an update after its client had given up on it counted it alone,
 * and the client's COP2 left it out; or a COP2 is still on its way. (Should a hold
 * b's recent updates but miss an older one, taking a's version loses nothing of a
 * directory: an entry only b has stays unless a removed or moved it.)
 */
export function covers (a: VnodeStatus, b: VnodeStatus): boolean {
  if (countsAll(a.vv, b.vv)) return true
  const theirs = b.history ?? []
  if (theirs.length === 0) return false
  const mine = new Set(a.history ?? [])
  return theirs.every(sid => mine.has(sid))
}

/** What resolution needs of its server. */
export interface ResolverDeps {
  readonly store: VolumeStore
  /** This server's address. */
  self (): string
  /** The sites of a volume, from the location database. */
  sites (volume: number): Promise<string[]>
  peer (address: string): Peer
  /** An object changed here by resolution: the clients holding promises on it are told. */
  changed (fid: Fid): Promise<void>
}

interface Version { address: string, status: VnodeStatus }
/** One object of a replica, as `vectors` pages list them. */
type ObjectVector = { vnode: number, unique: number, type: ObjectType, vv: Vv, conflict?: boolean }
type Step = { op: 'vvSet', fid: Fid, vv: Vv, dataVersion?: number } | { op: 'markConflict', fid: Fid, on?: boolean } | { op: 'resolvePull', fid: Fid, from: string, expect: Vv | null }

export class Resolver {
  private readonly running = new Map<string, Promise<Outcome>>()
  /** Per volume and other member: sweeps so far. */
  private readonly sweeps = new Map<string, number>()
  /** Per volume and other member: the vectors the last sweep saw differ, and how many sweeps waited. */
  private readonly rounds = new Map<string, { seen: string, waited: number }>()

  constructor (private readonly d: ResolverDeps) {}

  /** Makes the members' versions of `fid` equal, or marks them in conflict. Concurrent calls for one object share one run. */
  resolve (fid: Fid): Promise<Outcome> {
    const k = key(fid)
    let p = this.running.get(k)
    if (!p) {
      p = this.run(fid).finally(() => this.running.delete(k))
      this.running.set(k, p)
    }
    return p
  }

  private async run (fid: Fid): Promise<Outcome> {
    const sites = await this.d.sites(fid.volume)
    const versions: Version[] = []
    let unreachable = false
    await Promise.all(sites.map(async address => {
      try {
        const status = await this.statusAt(address, fid)
        if (status) versions.push({ address, status })
      } catch (err) {
        const e = AfsError.from(err)
        if (!isUnreachable(e)) throw e
        unreachable = true
      }
    }))
    if (versions.length < 2) return unreachable ? 'unreachable' : 'equal'
    const first = versions[0].status
    if (versions.every(v => compareVv(v.status.vv, first.vv) === 'equal')) return 'equal'
    let vv: Vv = {}
    for (const v of versions) vv = maxVv(vv, v.status.vv ?? {})
    // Weakly equal: each holds every update the others hold, only counted differently.
    if (versions.every(v => versions.every(w => covers(v.status, w.status)))) {
      await Promise.all(versions.map(v => this.on(v.address, { op: 'vvSet', fid, vv })))
      return 'weakly-equal'
    }
    const dominant = versions.find(v => versions.every(w => covers(v.status, w.status)))
    if (!dominant && versions.every(v => v.status.conflict)) return 'conflict' // marked already: waits for a repair
    const clash = dominant ? null : versions.every(v => v.status.type === 'dir') ? await this.mergeDirs(fid, versions, vv) : 'changed apart'
    if (!dominant && clash === null) return 'resolved'
    if (!dominant) {
      log.warn(`${key(fid)}: server/server conflict (${clash}): ${versions.map(v => `${v.address} ${JSON.stringify(v.status.vv)}`).join(' vs ')}`)
      await Promise.all(versions.map(v => this.on(v.address, { op: 'markConflict', fid })))
      return 'conflict'
    }
    const stale = versions.filter(v => !covers(v.status, dominant.status))
    await Promise.all(stale.map(v => this.on(v.address, { op: 'resolvePull', fid, from: dominant.address, expect: v.status.vv ?? {} })))
    // Every member holds the dominant's updates now: one vector counts them all.
    if (compareVv(dominant.status.vv, vv) !== 'equal') await Promise.all(versions.map(v => this.on(v.address, { op: 'vvSet', fid, vv })))
    log.info(`${key(fid)}: ${stale.map(v => v.address).join(', ')} took the version of ${dominant.address}`)
    return unreachable ? 'unreachable' : 'resolved'
  }

  /**
   * Directories changed apart: merged member by member when the changes do not clash —
   * a name only some members have was created there (kept) or removed by the others
   * after every change made to the object (dropped); an object the members hold under
   * different names was renamed on some (the names of the member whose version of the
   * object holds every other's win). A name that names other objects on different
   * members, or a removal of an object changed since, is a clash: no merge (the
   * directory becomes a conflict). Returns null when merged, else what clashed.
   */
  private async mergeDirs (fid: Fid, versions: Version[], vv: Vv): Promise<string | null> {
    const listings = await Promise.all(versions.map(async v => new Map((await this.listing(v.address, fid)).entries.map(([n, f, t]) => [n, { f, t }]))))
    if (listings.some(l => l.size > DIR_PAGE_ENTRIES)) return `more than ${DIR_PAGE_ENTRIES} entries`
    // Renames: an object whose names differ between members keeps the names of its newest version.
    const namesAt = listings.map(l => {
      const m = new Map<string, string[]>()
      for (const [n, { f }] of l) m.set(key(f), [...m.get(key(f)) ?? [], n].sort())
      return m
    })
    const stale = new Set<string>() // `name@fid` entries that a rename elsewhere took away
    for (const k of new Set(namesAt.flatMap(m => [...m.keys()]))) {
      const sets = namesAt.map(m => m.get(k))
      const texts = new Set(sets.filter(x => x !== undefined).map(x => x.join('/')))
      if (texts.size < 2) continue
      const f = parseFid(k)
      const statuses = await Promise.all(versions.map((v, i) => sets[i] ? this.statusAt(v.address, f) : Promise.resolve(null)))
      const newest = statuses.findIndex((st, i) => st !== null && statuses.every((o, j) => o === null || i === j || covers(st, o)))
      if (newest < 0) return `${sets.find(x => x)?.[0]} renamed apart`
      const keep = new Set(sets[newest])
      for (const names of sets) for (const n of names ?? []) if (!keep.has(n)) stale.add(`${n}@${k}`)
    }
    const merged: Array<[string, Fid, ObjectType]> = []
    for (const name of new Set(listings.flatMap(l => [...l.keys()]))) {
      const there = listings.map(l => { const x = l.get(name); return x && !stale.has(`${name}@${key(x.f)}`) ? x : undefined })
      const present = there.filter(e => e !== undefined)
      if (present.length === 0) continue
      let e = present[0]
      if (present.some(x => key(x.f) !== key(e.f))) {
        // One create made twice (its first member stopped answering, the client made it on the next): the one that went on is kept.
        const twin = await this.sameCreate(versions, there)
        if (!twin) return `${name} names different objects`
        merged.push([name, twin.f, twin.t])
        continue
      }
      if (present.length === there.length) { merged.push([name, e.f, e.t]); continue }
      // Present under this name on some members only, but the object is on the others elsewhere: renamed here (the rename won above).
      if (versions.every((_, i) => there[i] !== undefined || namesAt[i].has(key(e.f)))) { merged.push([name, e.f, e.t]); continue }
      // Lacking on some: a move or removal there wins only over no change since (its version covers every version present).
      const statuses = await Promise.all(versions.filter((_, i) => there[i] !== undefined).map(v => this.statusAt(v.address, e.f)))
      const lacking = versions.filter((_, i) => there[i] === undefined)
      const elsewhere = (await Promise.all(lacking.map(v => this.statusAt(v.address, e.f)))).filter((s): s is VnodeStatus => s !== null)
      if (elsewhere.length) {
        if (elsewhere.some(m => statuses.every(st => st === null || covers(m, st)))) continue // moved away there, after every change here
        return `${name} moved on some members, changed on others`
      }
      const tombs = await Promise.all(lacking.map(v => this.tombstoneAt(v.address, e.f)))
      const removed = tombs.filter((t): t is Vv => t !== null)
      if (removed.length === 0) { merged.push([name, e.f, e.t]); continue }
      if (!removed.every(t => statuses.every(st => st === null || countsAll(t, st.vv)))) return `${name} removed on some members, changed on others`
    }
    const newest = versions.reduce((a, b) => b.status.mtimeMs > a.status.mtimeMs ? b : a).status
    const sid = `merge:${key(fid)}:${Date.now()}`
    const status: VnodeStatus = {
      ...newest, vv, sid, history: [...new Set(versions.flatMap(v => v.status.history ?? []))].slice(-(HISTORY_KEPT - 1)).concat(sid),
      dataVersion: Math.max(...versions.map(v => v.status.dataVersion)) + 1,
      nlink: 2 + merged.filter(([, , t]) => t === 'dir').length,
    }
    await Promise.all(versions.map(v => v.address === this.d.self()
      ? this.installMerged(status, merged, v.status.vv ?? {})
      : this.d.peer(v.address).call('resolveMerge', { expect: v.status.vv ?? {}, status: { ...status, type: 'dir', vv, sid }, entries: merged })))
    log.info(`${key(fid)}: directory changed apart on ${versions.map(v => v.address).join(', ')}: merged (${merged.length} entries)`)
    return null
  }

  /**
   * Objects one name stands for on different members: when they all began with the same
   * update (one create, applied under two fids), the one whose history holds every
   * other's is that create's object; else (or when it is unclear) null.
   */
  private async sameCreate (versions: Version[], there: Array<{ f: Fid, t: ObjectType } | undefined>): Promise<{ f: Fid, t: ObjectType } | null> {
    const candidates = new Map<string, { e: { f: Fid, t: ObjectType }, status: VnodeStatus }>()
    for (let i = 0; i < versions.length; i++) {
      const e = there[i]
      if (!e || candidates.has(key(e.f))) continue
      const status = await this.statusAt(versions[i].address, e.f)
      if (!status?.history?.length) return null
      candidates.set(key(e.f), { e, status })
    }
    const all = [...candidates.values()]
    if (new Set(all.map(c => c.status.history![0])).size !== 1) return null
    const winner = all.find(c => all.every(o => covers(c.status, o.status)))
    return winner?.e ?? null
  }

  /** This member takes a merged directory: its entries are exactly `entries`; the others went (removed elsewhere, or moved). */
  async installMerged (status: VnodeStatus, entries: Array<[string, Fid, ObjectType]>, expect: Vv | null): Promise<void> {
    const keep = new Set(entries.map(([, f]) => key(f)))
    await this.d.store.installDir(status, entries, f => keep.has(key(f)) ? 'moved' : 'removed', (f, t) => stub(f, t, status.fid.vnode), expect)
    await this.d.changed(status.fid)
  }

  /** A directory's entries on one member, and its status as of the last page (here, or asked of it). */
  private async listing (address: string, fid: Fid): Promise<{ entries: Array<[string, Fid, ObjectType]>, status: VnodeStatus }> {
    if (address === this.d.self()) return { entries: this.d.store.listAll(fid), status: this.d.store.status(fid) }
    return await fetchWholeDir(this.d.peer(address), fid)
  }

  private async statusAt (address: string, fid: Fid): Promise<VnodeStatus | null> {
    try {
      return address === this.d.self() ? this.d.store.status(fid) : (await this.d.peer(address).call('fetchStatus', { fid })).status
    } catch (err) {
      if (AfsError.from(err).code === 'NOT_FOUND') return null
      throw err
    }
  }

  private async tombstoneAt (address: string, fid: Fid): Promise<Vv | null> {
    return address === this.d.self() ? this.d.store.tombstone(fid) : (await this.d.peer(address).call('tombstone', { fid })).vv
  }

  /**
   * Repairs a server/server conflict: every member takes member `keep`'s version, then
   * all hold that one version, unmarked, under one vector (the one counting every
   * member's updates). Every member must answer.
   */
  async repair (fid: Fid, keep: string): Promise<void> {
    const sites = await this.d.sites(fid.volume)
    if (!sites.includes(keep)) throw new AfsError('INVALID', `${keep} is not a member of this volume (${sites.join(', ')})`)
    const versions = await this.versions(fid)
    const missing = versions.filter(v => !v.status)
    if (missing.length) throw new AfsError('UNAVAILABLE', `a repair needs every member: ${missing.map(v => `${v.server} (${v.error ?? 'no such object'})`).join(', ')}`)
    const kept = versions.find(v => v.server === keep)!.status!
    if (!kept.conflict) throw new AfsError('INVALID', `${key(fid)} is in no server/server conflict`)
    let vv: Vv = {}
    for (const v of versions) vv = maxVv(vv, v.status!.vv ?? {})
    await Promise.all(versions.filter(v => v.server !== keep).map(v => this.on(v.server, { op: 'resolvePull', fid, from: keep, expect: v.status!.vv ?? {} })))
    await Promise.all(versions.map(v => this.on(v.server, { op: 'markConflict', fid, on: false })))
    // A data version none of the members had: a client caching another member's version of the same number refetches.
    const dataVersion = Math.max(...versions.map(v => v.status!.dataVersion)) + 1
    await Promise.all(versions.map(v => this.on(v.server, { op: 'vvSet', fid, vv, dataVersion })))
    log.info(`${key(fid)}: server/server conflict repaired with the version of ${keep}`)
  }

  /**
   * Repairs a server/server conflict with a file the user merged from the versions: this
   * member takes it as a new version (still marked, so that a repair cut off here leaves
   * the conflict open), then every other member takes this member's, as `repair` does.
   */
  async repairWith (fid: Fid, body: AsyncIterable<Buffer>, merged: { size: number, mtimeMs: number }): Promise<void> {
    const sites = await this.d.sites(fid.volume)
    if (!sites.includes(this.d.self())) throw new AfsError('INVALID', `${this.d.self()} is not a member of volume ${fid.volume}: send the merge to one (${sites.join(', ')})`)
    const versions = await this.versions(fid)
    const missing = versions.filter(v => !v.status)
    if (missing.length) throw new AfsError('UNAVAILABLE', `a repair needs every member: ${missing.map(v => `${v.server} (${v.error ?? 'no such object'})`).join(', ')}`)
    const mine = versions.find(v => v.server === this.d.self())!.status!
    if (!mine.conflict) throw new AfsError('INVALID', `${key(fid)} is in no server/server conflict`)
    if (mine.type !== 'file') throw new AfsError('INVALID', `${key(fid)} is a ${mine.type}: only a file takes a merged version`)
    const sid = `repair:${key(fid)}:${Date.now()}`
    const status: VnodeStatus = {
      ...mine, size: merged.size, mtimeMs: merged.mtimeMs, ctimeMs: Date.now(), sid,
      history: [...new Set(versions.flatMap(v => v.status!.history ?? []))].slice(-(HISTORY_KEPT - 1)).concat(sid),
    }
    delete status.mtimeNs
    await this.d.store.installObject(status, body, fid.vnode, mine.vv ?? {})
    await this.repair(fid, this.d.self())
  }

  /** Each member's version of `fid` (null where it is missing or the member does not answer). */
  private async versions (fid: Fid): Promise<Array<{ server: string, status: VnodeStatus | null, error?: string }>> {
    const sites = await this.d.sites(fid.volume)
    return await Promise.all(sites.map(async server => {
      try {
        return { server, status: await this.statusAt(server, fid) }
      } catch (err) {
        return { server, status: null, error: (err as Error).message }
      }
    }))
  }

  /** A resolution step on one member: here, or asked of it. */
  private async on (address: string, step: Step): Promise<void> {
    if (address === this.d.self()) await this.step(step)
    else { const { op, ...args } = step; await this.d.peer(address).call(op, args as never) }
  }

  /** A resolution step on this member; the clients holding promises on what it changed are told. */
  async step (s: Step): Promise<void> {
    if (s.op === 'vvSet') await this.d.store.setVector(s.fid, s.vv, s.dataVersion)
    else if (s.op === 'markConflict') await this.d.store.markConflict(s.fid, s.on ?? true)
    else await this.pull(s.fid, s.from, s.expect)
    if (s.op !== 'vvSet' || s.dataVersion !== undefined) await this.d.changed(s.fid)
  }

  /**
   * This member takes `from`'s version of `fid` whole — unless its own version changed
   * since it was found stale (`expect`: its vector then; an update that came meanwhile
   * would be overwritten): then the next resolution decides again.
   */
  private async pull (fid: Fid, from: string, expect: Vv | null): Promise<void> {
    const peer = this.d.peer(from)
    const { status } = await peer.call('fetchStatus', { fid })
    if (status.type === 'file') {
      const { result, body } = await peer.download('fetchData', { fid })
      await this.d.store.installObject(result.status, body, fid.vnode, expect)
      return
    }
    if (status.type !== 'dir') { await this.d.store.installObject(status, null, fid.vnode, expect); return }
    const { entries, status: listed } = await this.listing(from, fid)
    if (listed.dataVersion !== status.dataVersion) throw new AfsError('BUSY', `${key(fid)} changed on ${from} while it was read`)
    // Entries this member has and the dominant lacks: dropped only when the dominant has the object elsewhere, or removed it after every change made here.
    const theirs = new Set(entries.map(([, f]) => key(f)))
    const fates = new Map<string, 'moved' | 'removed' | 'keep'>()
    for (const [, f] of this.d.store.listAll(fid)) fates.set(key(f), theirs.has(key(f)) ? 'moved' : await this.fateThere(from, f))
    const kept = await this.d.store.installDir(listed, entries, f => fates.get(key(f)) ?? 'keep', (f, t) => stub(f, t, fid.vnode), expect)
    if (kept.length) log.warn(`${key(fid)}: kept ${kept.join(', ')} that ${from} does not have (not removed there after every change here): the other members take them from here`)
  }

  /** What became of `fid` on another member: it has it under another name, it removed it after every change made here, or neither (keep it). */
  private async fateThere (address: string, fid: Fid): Promise<'moved' | 'removed' | 'keep'> {
    if (await this.statusAt(address, fid)) return 'moved'
    const vv = await this.tombstoneAt(address, fid)
    let mine: Vv | undefined
    try { mine = this.d.store.get(fid).vv } catch { return 'removed' }
    return vv !== null && countsAll(vv, mine) ? 'removed' : 'keep'
  }

  /**
   * Compares this member's replica of `volume` with `other`'s: equal volume vectors cost
   * one request; otherwise every object whose vectors differ is resolved (directories
   * first, for the stubs of what they gained). Returns how many objects it resolved.
   */
  async sweep (volume: number, other: string): Promise<{ resolved: number, conflicts: number }> {
    const theirs = await this.d.peer(other).call('vectors', { volume, after: 0, limit: 0 })
    const mineNow = this.d.store.volumeVector(volume)
    const k = `${volume}@${other}`
    // Equal volume vectors say the replicas are equal; every so often the objects are compared all the same.
    const sweeps = (this.sweeps.get(k) ?? 0) + 1
    this.sweeps.set(k, sweeps)
    if (compareVv(mineNow, theirs.volumeVv) === 'equal' && sweeps % SWEEPS_FULL !== 0) { this.rounds.delete(k); return { resolved: 0, conflicts: 0 } }
    if (compareVv(mineNow, theirs.volumeVv) !== 'equal' && !this.settled(k, JSON.stringify([mineNow, theirs.volumeVv]))) return { resolved: 0, conflicts: 0 }
    const [mine, there] = await Promise.all([this.replica(volume, this.d.self()), this.replica(volume, other)])
    const differ = [...there.objects.values()]
      .filter(v => compareVv(mine.objects.get(v.vnode)?.vv, v.vv) !== 'equal')
      .map(v => ({ fid: { volume, vnode: v.vnode, unique: v.unique }, type: v.type }))
    differ.sort((a, b) => Number(b.type === 'dir') - Number(a.type === 'dir') || a.fid.vnode - b.fid.vnode)
    let resolved = 0
    let conflicts = 0
    const one = async (fid: Fid): Promise<void> => {
      const out = await this.resolve(fid).catch(err => { log.warn(`${key(fid)}: resolution failed: ${(err as Error).message}`); return 'unreachable' as const })
      if (out === 'conflict') conflicts++
      else if (out !== 'unreachable') resolved++
    }
    // Directories one at a time, first (their stubs are what the objects under them resolve into); then the rest, several at once.
    const dirs = differ.filter(d => d.type === 'dir')
    for (const { fid } of dirs) await one(fid)
    const rest = differ.filter(d => d.type !== 'dir')
    let next = 0
    await Promise.all(Array.from({ length: Math.min(RESOLVING_AT_ONCE, rest.length) }, async () => {
      while (next < rest.length) await one(rest[next++].fid)
    }))
    if (resolved === differ.length) await this.d.store.raiseVolumeVector(volume, theirs.volumeVv)
    return { resolved, conflicts }
  }

  /**
   * Whether a difference is worth comparing object by object now: it stayed as it was
   * since the last sweep (updates and their COP2 still on their way make passing
   * differences), or sweeps have waited long enough while updates kept coming.
   */
  private settled (k: string, seen: string): boolean {
    const last = this.rounds.get(k)
    if (last && (last.seen === seen || last.waited >= SWEEPS_WAITED)) { this.rounds.delete(k); return true }
    this.rounds.set(k, { seen, waited: (last?.waited ?? 0) + 1 })
    return false
  }

  /** Every member of a volume, compared: reachable, its vector, objects, objects differing from another member's, conflicts. */
  async examine (volume: VolumeEntry): Promise<ExamineReply> {
    const seen = await this.replicas(volume)
    const replicas = seen.map(r => {
      if (!('objects' in r)) return { server: r.server, reachable: false, version: null, vector: null, objects: null, pending: null, conflicts: null, error: r.error }
      let pending = 0
      for (const [vnode, { vv }] of r.objects) {
        if (seen.some(o => 'objects' in o && o !== r && compareVv(o.objects.get(vnode)?.vv, vv) !== 'equal')) pending++
      }
      for (const o of seen) if ('objects' in o && o !== r) for (const vnode of o.objects.keys()) if (!r.objects.has(vnode)) pending++
      const version = Object.values(r.vector).reduce((a, b) => a + b, 0)
      const conflicts = [...r.objects.values()].filter(v => v.conflict).length
      return { server: r.server, reachable: true, version, vector: r.vector, objects: r.objects.size, pending, conflicts }
    })
    return { volume, replicas }
  }

  /**
   * The objects whose versions differ between the reachable members of `volume` (or that
   * some of them lack), each with its path in this member's replica where it has one,
   * and the members that did not answer (for `afs vos resolve`).
   */
  async pending (volume: VolumeEntry): Promise<PendingReply> {
    const reached = (await this.replicas(volume)).filter(r => 'objects' in r)
    const differ = new Map<number, ObjectVector>()
    for (const r of reached) {
      for (const [vnode, v] of r.objects) {
        if (!reached.some(o => o !== r && compareVv(o.objects.get(vnode)?.vv, v.vv) !== 'equal')) continue
        differ.set(vnode, { ...v, conflict: v.conflict === true || differ.get(vnode)?.conflict === true })
      }
    }
    const paths = this.d.store.hasVolume(volume.id) ? this.paths(volume) : () => null
    const unreachable = volume.servers.filter(s => !reached.some(r => r.server === s))
    return {
      volume,
      unreachable,
      objects: [...differ.values()].map(v => ({ fid: { volume: volume.id, vnode: v.vnode, unique: v.unique }, type: v.type, conflict: v.conflict === true, path: paths(v.vnode) })),
    }
  }

  /** Paths in this member's replica, by vnode (from every directory's entries: one pass over the volume). */
  private paths (volume: VolumeEntry): (vnode: number) => string | null {
    const up = new Map<number, [number, string]>()
    for (const v of this.d.store.vectors(volume.id, 0, Number.MAX_SAFE_INTEGER)) {
      if (v.type !== 'dir') continue
      for (const [name, f] of this.d.store.listAll({ volume: volume.id, vnode: v.vnode, unique: v.unique })) if (!up.has(f.vnode)) up.set(f.vnode, [v.vnode, name])
    }
    const path = (vnode: number, depth: number): string | null => {
      if (vnode === volume.root.vnode) return '/'
      const u = up.get(vnode)
      const above = u && depth < 256 ? path(u[0], depth + 1) : null
      return u && above !== null ? `${above === '/' ? '' : above}/${u[1]}` : null
    }
    return vnode => path(vnode, 0)
  }

  /** Every member's replica of `volume`, or why it could not be read. */
  private async replicas (volume: VolumeEntry): Promise<Array<{ server: string, vector: Vv, objects: Map<number, ObjectVector> } | { server: string, error: string }>> {
    return await Promise.all(volume.servers.map(async server => {
      try {
        return { server, ...(await this.replica(volume.id, server)) }
      } catch (err) {
        return { server, error: (err as Error).message }
      }
    }))
  }

  /** One member's replica (here, or asked of it): its volume's vector and every object's, by vnode. */
  private async replica (volume: number, server: string): Promise<{ vector: Vv, objects: Map<number, ObjectVector> }> {
    const objects = new Map<number, ObjectVector>()
    for (let after = 0; ;) {
      const page = server === this.d.self()
        ? { volumeVv: this.d.store.volumeVector(volume), vectors: this.d.store.vectors(volume, after, VECTOR_PAGE) }
        : await this.d.peer(server).call('vectors', { volume, after, limit: VECTOR_PAGE })
      for (const v of page.vectors) objects.set(v.vnode, v)
      if (page.vectors.length < VECTOR_PAGE) return { vector: page.volumeVv, objects }
      after = page.vectors[page.vectors.length - 1].vnode
    }
  }
}

/** An object a directory gained that this member lacks: an empty version with an empty vector, which any real one dominates. */
export function stub (fid: Fid, type: ObjectType, parent: number): VnodeRecord {
  const now = Date.now()
  const dir = type === 'dir' || type === 'mount'
  const rec: VnodeRecord = {
    vnode: fid.vnode, unique: fid.unique, type, mode: dir ? 0o755 : 0o644, uid: 0, gid: 0, nlink: type === 'dir' ? 2 : 1, size: 0,
    atimeMs: now, mtimeMs: now, ctimeMs: now, dataVersion: 0, parent: type === 'dir' ? parent : fid.vnode, vv: {}, sid: 'stub',
  }
  if (type === 'symlink' || type === 'mount') rec.target = ''
  return rec
}
