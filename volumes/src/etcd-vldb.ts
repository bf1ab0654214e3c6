// The volume location database kept in etcd, for cells beyond one machine (`afs server
// --vldb etcd://HOST:PORT[,HOST:PORT…]`). etcd holds control-plane state only:
//   <prefix>/volumes/<id>      a volume's location entry (JSON)
//   <prefix>/names/<name>      its id
//   <prefix>/next-volume-id    the next id to hand out
//   <prefix>/servers/<id>      a live server's address, under a lease it keeps alive
//   <prefix>/last-address/<id> where each server was last (found again at a new address)
// with <prefix> = /afs/<cell>. New volumes take ids and names by compare-and-swap, so two
// servers creating volumes at once never get one id or one name; every server answers
// lookups from a cache kept current by a watch (a full read again after a reconnection),
// and a server that dies or is cut off leaves the live list when its lease expires.
import { Etcd3, EtcdLockFailedError, isRecoverableError, type Campaign, type IKeyValue, type Lease, type Watcher } from 'etcd3'
import { AfsError, connectionLost, exists, makeLog, notFound, type Quorum, type VolumeEntry } from '@afs-ts/common'
import { hasVolume, newEntry, type LocationDb, type ServerEntry, type VolumeChange } from './location-db.ts'

const log = makeLog('vldb')
/** The first volume id a cell hands out (AFS volume ids start high). */
const FIRST_VOLUME_ID = 536870912
/** How long a server stays listed after its last keep-alive. */
export const SERVER_LEASE_TTL_S = 10
/** How long one request to etcd may take before the caller is told it is unreachable. */
const CALL_DEADLINE_MS = 3_000
/** Compare-and-swap rounds before a create or update gives up (others kept winning). */
const CAS_ROUNDS = 64

/** `etcd://HOST:PORT[,HOST:PORT…]` → the endpoints (http://HOST:PORT). */
export function parseEtcdUrl (url: string): string[] {
  const m = /^etcd:\/\/(.+)$/.exec(url)
  if (!m) throw new AfsError('INVALID', `${url}: an etcd location database is etcd://HOST:PORT[,HOST:PORT…]`)
  return m[1].split(',').map(hp => {
    if (!/^[A-Za-z0-9.-]+:\d{1,5}$/.test(hp) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(hp)) throw new AfsError('INVALID', `${url}: ${hp} is not HOST:PORT`)
    return `http://${hp}`
  })
}

export interface EtcdLocationDbOptions {
  endpoints: string[]
  cell: string
  /** Seconds a server's entry outlives its last keep-alive. */
  leaseTtlS?: number
}

export class EtcdLocationDb implements LocationDb {
  /** The etcd client (the protection database keeps its entries beside the locations, through it). */
  readonly client: Etcd3
  private readonly prefix: string
  /** Location entries by id and ids by name, as the watch has them (null: not read yet, or being read again). */
  private entries: Map<number, VolumeEntry> | null = null
  private names = new Map<string, number>()
  private watcher: Watcher | null = null
  private reading: Promise<void> | null = null
  private lease: Lease | null = null
  private registered: { id: string, address: string, since: number } | null = null
  private closed = false
  private readonly listeners: Array<(entry: VolumeEntry) => void> = []
  private campaign: Campaign | null = null
  /** When etcd was last heard from (a keep-alive answered, a watch event, a full read). */
  private heard = 0
  private tried = 0
  /** While this server is the cell's leader: the revision of its election key (its epoch as leader). */
  leaderEpoch: number | null = null

  constructor (private readonly opts: EtcdLocationDbOptions) {
    this.prefix = `/afs/${opts.cell}/`
    this.client = new Etcd3({
      hosts: opts.endpoints,
      dialTimeout: CALL_DEADLINE_MS,
      defaultCallOptions: ctx => ctx.isStream ? {} : { deadline: Date.now() + CALL_DEADLINE_MS },
    })
  }

  /** Whether the watch keeps the cache current now (false: cut off from etcd, or reading it again). */
  get watching (): boolean {
    return this.entries !== null && !this.closed
  }

  onChange (listener: (entry: VolumeEntry) => void): void {
    this.listeners.push(listener)
  }

  /** Reads every entry and watches for changes from then on; resolves once the cache is filled. */
  async start (): Promise<void> {
    await this.reread()
  }

  async get (nameOrId: string | number): Promise<VolumeEntry> {
    const cached = this.cached(nameOrId)
    if (cached) return cached
    // Not in the cache (or no watch yet): etcd itself says, so a volume made a moment ago elsewhere is found.
    const id = typeof nameOrId === 'number' ? nameOrId : await this.ask(async () => await this.client.get(this.key('names', nameOrId)).number())
    const entry = id === null ? null : await this.ask(async () => await this.client.get(this.key('volumes', String(id))).json() as VolumeEntry | null)
    if (!entry) throw notFound(`no such volume: ${nameOrId}`)
    return entry
  }

  /**
   * From the cache while etcd was heard from within two thirds of the lease time; else
   * (this server was frozen, or cut off, for that long: the watch may not have brought
   * what changed meanwhile) read again first. With etcd unreachable, the cache answers:
   * nobody can change an entry then either, except through another way to etcd.
   */
  async recent (id: number): Promise<VolumeEntry> {
    const now = Date.now()
    if (this.entries && now - this.heard > this.ttlS() * 1000 * 2 / 3 && now - this.tried > 1_000) {
      // (Tried at most once a second: with etcd unreachable, requests are not held up each time.)
      this.tried = now
      await this.reread().catch(() => {})
    }
    return await this.get(id)
  }

  /** One admin command on `what` in the cell at a time, under an etcd lock that goes with its holder's lease. */
  async exclusive<T> (what: string, run: () => Promise<T>): Promise<T> {
    const lock = this.client.lock(this.key('locks', what)).ttl(this.ttlS())
    await this.ask(async () => {
      try {
        await lock.acquire()
      } catch (err) {
        if (err instanceof EtcdLockFailedError) throw new AfsError('BUSY', `${what} is being changed by another admin command; try again when it is done`)
        throw err
      }
    })
    try {
      return await run()
    } finally {
      await lock.release().catch(() => {})
    }
  }

  private ttlS (): number {
    return this.opts.leaseTtlS ?? SERVER_LEASE_TTL_S
  }

  private cached (nameOrId: string | number): VolumeEntry | undefined {
    if (!this.entries) return undefined
    const id = typeof nameOrId === 'number' ? nameOrId : this.names.get(nameOrId)
    return id === undefined ? undefined : this.entries.get(id)
  }

  async has (name: string): Promise<boolean> {
    return await hasVolume(this, name)
  }

  async list (): Promise<VolumeEntry[]> {
    if (this.entries) return [...this.entries.values()].sort((a, b) => a.id - b.id)
    const all = await this.ask(async () => await this.client.getAll().prefix(this.key('volumes', '')).json())
    return (Object.values(all) as VolumeEntry[]).sort((a, b) => a.id - b.id)
  }

  /**
   * A new volume: its name taken and the next id handed out in one transaction that
   * holds only if neither changed since they were read (else read again and retry).
   */
  async create (name: string, servers: string[], quota: number, quorum?: Quorum): Promise<VolumeEntry> {
    const nameKey = this.key('names', name)
    const nextKey = this.key('next-volume-id')
    for (let round = 0; round < CAS_ROUNDS; round++) {
      const next = await this.ask(async () => await this.client.get(nextKey).exec())
      const kv = next.kvs[0]
      const id = kv ? Number(kv.value.toString()) : FIRST_VOLUME_ID
      const entry = newEntry(id, name, servers, quota, quorum)
      const txn = this.client.if(nameKey, 'Version', '==', 0)
      const guarded = kv ? txn.and(nextKey, 'Mod', '==', kv.mod_revision) : txn.and(nextKey, 'Version', '==', 0)
      const r = await this.ask(async () => await guarded
        .then(this.client.put(nextKey).value(String(id + 1)), this.client.put(this.key('volumes', String(id))).value(JSON.stringify(entry)), this.client.put(nameKey).value(String(id)))
        .commit())
      if (r.succeeded) { this.learn(entry); return entry }
      if (await this.ask(async () => await this.client.get(nameKey).string()) !== null) throw exists(`volume ${name} exists`)
    }
    throw new AfsError('BUSY', `volume ${name}: the location database kept changing under this create; try again`)
  }

  /** Changes an entry in a transaction that holds only if nobody changed it since it was read. */
  async update (id: number, change: VolumeChange): Promise<VolumeEntry> {
    const key = this.key('volumes', String(id))
    for (let round = 0; round < CAS_ROUNDS; round++) {
      const r = await this.ask(async () => await this.client.get(key).exec())
      const kv = r.kvs[0]
      if (!kv) throw notFound(`no such volume: ${id}`)
      const out: VolumeEntry = { ...JSON.parse(kv.value.toString()) as VolumeEntry, ...change }
      const t = await this.ask(async () => await this.client.if(key, 'Mod', '==', kv.mod_revision).then(this.client.put(key).value(JSON.stringify(out))).commit())
      if (t.succeeded) { this.learn(out); return out }
    }
    throw new AfsError('BUSY', `volume ${id}: the location database kept changing under this update; try again`)
  }

  /**
   * Lists this server at `address` under a lease kept alive: it leaves the list when it
   * stops (or is cut off from etcd) for longer than the lease. A lost lease is granted
   * again and the entry put back.
   */
  async registerServer (id: string, address: string): Promise<ServerEntry | undefined> {
    // Where it was before, even after its live entry expired: the cell keeps each server's last address.
    const lastKey = this.key('last-address', id)
    const was = await this.ask(async () => await this.client.get(lastKey).json() as ServerEntry | null) ?? undefined
    this.registered = { id, address, since: was?.address === address ? was.since : Date.now() }
    await this.ask(async () => await this.client.put(lastKey).value(JSON.stringify(this.registered)))
    await this.keepListed()
    return was
  }

  private async keepListed (): Promise<void> {
    if (!this.registered || this.closed) return
    const lease = this.client.lease(this.ttlS(), { autoKeepAlive: true })
    this.lease = lease
    lease.on('keepaliveSucceeded', () => { this.heard = Date.now() })
    lease.on('lost', err => {
      if (this.closed || this.lease !== lease) return
      log.warn(`the lease listing this server in etcd was lost (${err.message}); listing it again`)
      const again = () => { void this.keepListed().catch(() => { if (!this.closed) setTimeout(again, 1_000).unref() }) }
      again()
    })
    await this.ask(async () => await lease.put(this.key('servers', this.registered!.id)).value(JSON.stringify(this.registered)))
  }

  /**
   * Stands for the cell's leader (cell-wide chores) among the servers, under a lease: one
   * leader at a time; when it dies or is cut off, another is elected once its lease
   * expires. `onElected` runs each time this server becomes the leader.
   */
  stand (id: string, onElected: (epoch: number) => void): void {
    if (this.closed) return
    const c = this.client.election(this.key('leader'), this.ttlS()).campaign(id)
    this.campaign = c
    c.on('elected', () => {
      void (async () => {
        const key = await c.getCampaignKey()
        const r = await this.client.get(key).exec()
        this.leaderEpoch = Number(r.kvs[0]?.create_revision ?? 0)
        log.info(`this server is the cell's leader (epoch ${this.leaderEpoch})`)
        onElected(this.leaderEpoch)
      })().catch(err => log.warn(`leader election: ${(err as Error).message}`))
    })
    c.on('error', err => {
      if (this.closed || this.campaign !== c) return
      this.leaderEpoch = null
      log.warn(`leader election: ${err.message}; standing again`)
      setTimeout(() => { this.stand(id, onElected) }, 1_000).unref()
    })
  }

  /** The id of the cell's leader now, if there is one. */
  async leader (): Promise<string | undefined> {
    return await this.ask(async () => await this.client.election(this.key('leader')).leader())
  }

  /** The live servers: those whose lease holds. */
  async servers (): Promise<ServerEntry[]> {
    const all = await this.ask(async () => await this.client.getAll().prefix(this.key('servers', '')).json())
    return (Object.values(all) as ServerEntry[]).sort((a, b) => a.address.localeCompare(b.address))
  }

  async close (): Promise<void> {
    this.closed = true
    await this.campaign?.resign().catch(() => {})
    await this.watcher?.cancel().catch(() => {})
    // The entry goes at once rather than when the lease runs out: this server is stopping.
    await this.lease?.revoke({ deadline: Date.now() + 1_000 }).catch(() => {})
    this.client.close()
  }

  // ---- the watch-fed cache ----

  /** Reads every entry, then watches from the revision read: nothing changed in between is missed. */
  private async reread (): Promise<void> {
    this.reading ??= (async () => {
      const r = await this.ask(async () => await this.client.getAll().prefix(this.prefix).exec())
      const entries = new Map<number, VolumeEntry>()
      const names = new Map<string, number>()
      for (const kv of r.kvs) { const e = entryOf(kv, this.key('volumes', '')); if (e) remember(entries, names, e) }
      this.entries = entries
      this.names = names
      this.heard = Date.now()
      await this.watch(BigInt(r.header.revision) + 1n)
    })().finally(() => { this.reading = null })
    await this.reading
  }

  private async watch (from: bigint): Promise<void> {
    await this.watcher?.cancel().catch(() => {})
    const w = await this.client.watch().prefix(this.prefix).startRevision(String(from)).create()
    this.watcher = w
    w.on('put', kv => {
      this.heard = Date.now()
      const e = entryOf(kv, this.key('volumes', ''))
      if (!e) return
      this.learn(e)
      for (const l of this.listeners) l(e)
    })
    w.on('delete', kv => { if (this.entries) this.forget(kv) })
    // Cut off from etcd: the cache may miss changes; answers come from etcd until it is read again.
    w.on('disconnected', () => { if (this.watcher === w) this.entries = null })
    w.on('connected', () => { if (this.watcher === w && !this.entries && !this.closed) void this.reread().catch(err => log.warn(`reading the location database again: ${(err as Error).message}`)) })
    w.on('error', err => {
      if (this.watcher !== w || this.closed) return
      // Compacted past the revision it resumes from: read everything again.
      log.warn(`the location database watch failed (${err.message}); reading it again`)
      this.entries = null
      void this.reread().catch(() => {})
    })
  }

  private forget (kv: IKeyValue): void {
    const key = kv.key.toString()
    if (!key.startsWith(this.key('volumes', ''))) return
    const id = Number(key.slice(this.key('volumes', '').length))
    const e = this.entries?.get(id)
    if (e) { this.entries!.delete(id); this.names.delete(e.name) }
  }

  /** An entry changed: in the cache (what this server changed goes in at once; the watch brings the same a moment later). */
  private learn (e: VolumeEntry): void {
    if (this.entries) remember(this.entries, this.names, e)
  }

  private key (...parts: string[]): string {
    return this.prefix + parts.join('/')
  }

  /** A request to etcd; unreachable, it fails at once with a clear message instead of hanging. */
  async ask<T> (call: () => Promise<T>): Promise<T> {
    try {
      return await call()
    } catch (err) {
      if (err instanceof AfsError) throw err
      const e = err as Error
      if (isRecoverableError(e) || e.name === 'BrokenCircuitError' || /deadline|unavailable|connect|ECONNREFUSED|circuit breaker/i.test(e.message)) {
        throw connectionLost(`the cell's location database in etcd (${this.opts.endpoints.join(', ')}) is unreachable: ${e.message}`)
      }
      throw new AfsError('IO', `the cell's location database in etcd: ${e.message}`)
    }
  }
}

/** The location entry a key-value of etcd holds, if it is one (`prefix`: where entries are kept). */
function entryOf (kv: IKeyValue, prefix: string): VolumeEntry | null {
  return kv.key.toString().startsWith(prefix) ? JSON.parse(kv.value.toString()) as VolumeEntry : null
}

function remember (entries: Map<number, VolumeEntry>, names: Map<string, number>, e: VolumeEntry): void {
  entries.set(e.id, e)
  names.set(e.name, e.id)
}
