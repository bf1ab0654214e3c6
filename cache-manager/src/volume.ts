// A volume as this cache manager sees it (Coda's volent): its location entry, the servers
// that store it (its VSG) and those of them that answer now (its AVSG), the state it is
// in, and the one way requests for it reach a server. For a replicated volume, reads go
// to one member (the next when it stops answering) and updates to every member that
// answers, in parallel (COP1), followed by the update set (COP2) so that members that
// all took an update end with equal version vectors.
import { isUnreachable, AfsError, UPDATE_OPS, compareVv, makeLog, volumeOffline, type Args, type Fid, type InboundStream, type Op, type Reply, type VolumeEntry, type VnodeStatus } from '@afs-ts/common'
import type { Body, ServerLink } from './server-link.ts'

const log = makeLog('cache-manager')

/** A volume is in exactly one of these states (resolving: a replicated volume's members are being made equal). */
export type VolumeState = 'connected' | 'disconnected' | 'reintegrating' | 'write-disconnected' | 'resolving'

/** Requests for one volume, typed by the protocol's reply map. A volume and a server link both take them. */
export interface VolumeCalls {
  call<O extends Op> (op: O, args: Args<O>, timeoutMs?: number): Promise<Reply<O>>
  download<O extends Op> (op: O, args: Args<O>): Promise<{ result: Reply<O>, body: InboundStream }>
  /** `body`: a function that opens it, where the bytes may have to go to several members. */
  upload<O extends Op> (op: O, args: Args<O>, body: Body): Promise<Reply<O>>
}

/** Moves a request follows before it gives up (a volume moved again and again meanwhile). */
const MOVES_FOLLOWED = 6
/** Errors of one member's own (its disk), not answers about the volume: another member may well apply the update. */
const MEMBER_FAULTS = new Set<string>(['NO_SPACE', 'IO'])
/** Updates that may make an object: the first member gives it its fid, the others make it under the same. */
const CREATES = new Set<Op>(['create', 'mkdir', 'symlink', 'mknod', 'mkmount', 'replay'])

/** What a volume needs of its cell: a link per server, and the modes the whole cell is in. */
export interface VolumeHost {
  link (address: string): ServerLink
  /** Settles once the link's first contact has been tried. */
  contacted (link: ServerLink): Promise<unknown>
  /** The volume `id` as the location database has it (looked up when not known yet). */
  locate (id: number): Promise<Volume>
  /** Looks the volume `id` up again (its server said it moved). */
  relocate (id: number): Promise<void>
  readonly writeBack: boolean
  readonly reintegrating: boolean
}

type Send<T> = (l: ServerLink, args: object | undefined) => Promise<T>

export class Volume implements VolumeCalls {
  private members: ServerLink[] | null = null

  /** `provisional`: a stand-in for a volume not located yet, routed to a guess until a request needs the truth. */
  constructor (private located: VolumeEntry, private readonly host: VolumeHost, readonly provisional = false) {}

  /** The location entry; a new one (new sites) changes the VSG. */
  get entry (): VolumeEntry { return this.located }
  set entry (e: VolumeEntry) { this.located = e; this.members = null }

  get id (): number { return this.located.id }
  get name (): string { return this.located.name }

  /** Kept on two or more servers. */
  get replicated (): boolean { return this.located.servers.length > 1 }

  /** The servers that store this volume, as the location database lists them. */
  get vsg (): ServerLink[] { return (this.members ??= this.located.servers.map(a => this.host.link(a))) }

  /** The members that answer now. */
  get avsg (): ServerLink[] { return this.vsg.filter(l => l.connected) }

  /** The member requests go to: the first that answers, else the first listed. */
  get preferred (): ServerLink {
    const vsg = this.vsg
    return vsg.find(l => l.connected) ?? vsg[0]
  }

  /**
   * Whether the volume can be used from the servers: some member answers, or with a
   * majority quorum, most members do (a minority is disconnected: changes go to the log).
   */
  get connected (): boolean {
    const vsg = this.vsg
    let up = 0
    for (const l of vsg) if (l.connected) up++
    return this.located.quorum === 'majority' ? up * 2 > vsg.length : up > 0
  }

  /**
   * Changes whenever a member's link goes down or up, or the volume moves (another VSG, or
   * a new epoch in its location entry): callbacks from another epoch are void (a member
   * that was away may have missed breaks it would have sent; a server the volume left
   * sends none at all).
   */
  get epoch (): string {
    return `${this.located.epoch ?? 0}|${this.vsg.map(l => `${l.address}#${l.epoch}`).join(',')}`
  }

  get state (): VolumeState {
    if (this.host.reintegrating) return 'reintegrating'
    if (!this.connected) return 'disconnected'
    if (this.host.writeBack) return 'write-disconnected'
    return 'connected'
  }

  /** Why the volume is not connected, when it is not. */
  get downCause (): string {
    return this.vsg.some(l => l.connected) ? `only ${this.avsg.length} of its ${this.vsg.length} servers answer, not a majority` : this.preferred.downCause
  }

  async call<O extends Op> (op: O, args: Args<O>, timeoutMs?: number): Promise<Reply<O>> {
    return await this.followingMoves(async () => await this.callHere(op, args, timeoutMs))
  }

  async download<O extends Op> (op: O, args: Args<O>): Promise<{ result: Reply<O>, body: InboundStream }> {
    return await this.followingMoves(async () => await this.downloadHere(op, args))
  }

  async upload<O extends Op> (op: O, args: Args<O>, body: Body): Promise<Reply<O>> {
    return await this.followingMoves(async () => await this.uploadHere(op, args, body))
  }

  /** A request, sent again after the volume is looked up again when its server says it moved. */
  private async followingMoves<T> (send: () => Promise<T>): Promise<T> {
    for (let moves = 0; ; moves++) {
      try {
        return await send()
      } catch (err) {
        if (!(err instanceof AfsError) || err.code !== 'MOVED' || moves >= MOVES_FOLLOWED) throw err
        log.info(`volume ${this.name}: ${err.message}; looking it up again`)
        // The location database some servers answer from may be a moment behind the move's switch.
        if (moves > 0) await new Promise(resolve => setTimeout(resolve, 100 * moves))
        await this.host.relocate(this.id)
      }
    }
  }

  private async callHere<O extends Op> (op: O, args: Args<O>, timeoutMs?: number): Promise<Reply<O>> {
    if (this.provisional) return await (await this.host.locate(this.id)).call(op, args, timeoutMs)
    this.needQuorum()
    const send: Send<Reply<O>> = async (l, a) => await l.call(op, a as Args<O>, timeoutMs)
    if (!this.replicated) return await send(await this.member(), args)
    if (UPDATE_OPS.has(op)) return await this.update(op, args, send)
    if (op === 'fetchStatus') return await this.compared(args, send)
    return await this.read(l => send(l, args))
  }

  private async downloadHere<O extends Op> (op: O, args: Args<O>): Promise<{ result: Reply<O>, body: InboundStream }> {
    if (this.provisional) return await (await this.host.locate(this.id)).download(op, args)
    this.needQuorum()
    return await this.read(l => l.download(op, args))
  }

  private async uploadHere<O extends Op> (op: O, args: Args<O>, body: Body): Promise<Reply<O>> {
    if (this.provisional) return await (await this.host.locate(this.id)).upload(op, args, body)
    this.needQuorum()
    const send: Send<Reply<O>> = async (l, a) => await l.upload(op, a as Args<O>, body)
    if (!this.replicated) return await send(await this.member(), args)
    if (typeof body !== 'function') throw new Error(`${op} to replicated volume ${this.name}: its body must be re-openable`)
    return await this.update(op, args, send)
  }

  /** A majority-quorum volume of which only a minority answers is used as if no member did. */
  private needQuorum (): void {
    if (this.located.quorum !== 'majority' || this.connected || !this.vsg.some(l => l.connected)) return
    throw volumeOffline(`volume ${this.name}: only ${this.avsg.length} of its ${this.vsg.length} servers answer, not a majority`)
  }

  /** A read: from the preferred member, and from the next one while members stop answering. */
  private async read<T> (send: (l: ServerLink) => Promise<T>): Promise<T> {
    for (;;) {
      const l = await this.member()
      try {
        return await send(l)
      } catch (err) {
        // The link is down now: the next member that answers is preferred.
        if (!isUnreachable(err) || !this.connected) throw err
      }
    }
  }

  /**
   * A status from every member that answers (each promises a callback, and any one's
   * break invalidates it): the preferred member's is the answer. When their version
   * vectors differ, the preferred member resolves the object first (Coda's GetAttr
   * across the AVSG) and answers again.
   */
  private async compared<T> (args: object | undefined, send: Send<T>): Promise<T> {
    await this.member()
    const members = this.avsg
    const replies = await Promise.allSettled(members.map(l => send(l, args)))
    const got = replies.flatMap((r, i) => r.status === 'fulfilled' ? [{ link: members[i], reply: r.value }] : [])
    if (got.length === 0) return await this.read(l => send(l, args))
    const statusOf = (r: unknown) => (r as { status: VnodeStatus }).status
    const first = statusOf(got[0].reply)
    if (got.every(g => compareVv(statusOf(g.reply).vv, first.vv) === 'equal')) return got[0].reply
    const fid = first.fid
    try {
      const { outcome } = await got[0].link.call('resolve', { fid })
      log.info(`volume ${this.name}: members held different versions of ${fid.volume}.${fid.vnode}.${fid.unique}: ${outcome}`)
    } catch (err) {
      log.warn(`volume ${this.name}: resolving ${fid.volume}.${fid.vnode}.${fid.unique}: ${(err as Error).message}`)
    }
    return await this.read(l => send(l, args))
  }

  /**
   * COP1 to every member that answers. The preferred member's answer is the volume's (a
   * create goes to it first, for the fid the others then take); members that answered
   * otherwise are left for resolution. Then COP2 to the members that applied it.
   */
  private async update<T> (op: Op, args: object | undefined, send: Send<T>): Promise<T> {
    const lead = await this.member()
    if (!lead.connected) return await send(lead, args) // refused as unreachable, as an unreplicated volume's would be
    let answer: T
    let applied: ServerLink[]
    if (CREATES.has(op)) {
      const made = await this.lead(op, args, send)
      answer = made.answer
      const fid = madeFid(answer)
      const rest = this.avsg.filter(l => l !== made.leader)
      const results = await Promise.allSettled(rest.map(l => send(l, fid ? { ...args, newFid: fid } : args)))
      applied = [made.leader, ...rest.filter((l, i) => this.took(l, results[i], op))]
    } else {
      const members = this.avsg
      const results = await Promise.allSettled(members.map(l => send(l, args)))
      // The first member that applied it speaks for the volume; when none did, the first that refused it.
      let i = results.findIndex(r => r.status === 'fulfilled')
      if (i < 0) i = results.findIndex(r => r.status === 'rejected' && !isUnreachable(r.reason))
      if (i < 0) return await send(this.preferred, args) // all stopped answering: refused as unreachable
      const first = results[i]
      if (first.status === 'rejected') throw first.reason
      answer = first.value
      applied = members.filter((l, k) => k === i || this.took(l, results[k], op))
    }
    this.cop2(answer, applied)
    return answer
  }

  /**
   * A create on the first member that makes it: the preferred one, or the next when the
   * preferred stops answering or fails with a fault of its own (a full disk).
   */
  private async lead<T> (op: Op, args: object | undefined, send: Send<T>): Promise<{ answer: T, leader: ServerLink }> {
    const tried = new Set<ServerLink>()
    for (;;) {
      const leader = this.avsg.find(l => !tried.has(l)) ?? this.preferred
      try {
        return { answer: await send(leader, args), leader }
      } catch (err) {
        tried.add(leader)
        const next = this.avsg.some(l => !tried.has(l))
        if (!next || !(isUnreachable(err) || (err instanceof AfsError && MEMBER_FAULTS.has(err.code)))) throw err
        if (!isUnreachable(err)) log.warn(`volume ${this.name}: ${leader.address} could not ${op} (${(err as Error).message}); the next member makes it`)
      }
    }
  }

  /** Whether a member applied an update; one that refused it is left for resolution. */
  private took (l: ServerLink, r: PromiseSettledResult<unknown>, op: Op): boolean {
    if (r.status === 'fulfilled') return true
    if (r.reason instanceof AfsError && r.reason.code === 'MOVED') {
      // No member any more (vos remsite): this volume's entry here is old.
      log.info(`volume ${this.name}: ${l.address}: ${r.reason.message}; looking it up again`)
      void this.host.relocate(this.id).catch(() => {})
      return false
    }
    if (!isUnreachable(r.reason)) log.warn(`volume ${this.name}: ${l.address} refused ${op} that another member applied (${(r.reason as Error).message}); resolution will make them equal`)
    return false
  }

  /** Tells the members that applied an update which others did (not waited for: a lost COP2 is made up by resolution). */
  private cop2 (answer: unknown, applied: ServerLink[]): void {
    const sid = sidOf(answer)
    const updateSet = applied.map(l => l.hello?.serverId).filter((x): x is string => x !== undefined)
    if (!sid || updateSet.length < 2) return
    for (const l of applied) void l.call('cop2', { volume: this.id, sid, updateSet }).catch(() => {})
  }

  /** The preferred member, once its first contact has been tried; a stand-in locates its volume first. */
  private async member (): Promise<ServerLink> {
    if (this.provisional) return await (await this.host.locate(this.id)).member()
    const l = this.preferred
    await this.host.contacted(l)
    return this.preferred
  }
}

/** The fid of the object a create (or a replayed create) made. */
function madeFid (reply: unknown): Fid | undefined {
  return (reply as { status?: VnodeStatus | null } | null)?.status?.fid
}

/** The update id the members stamped, from any status in the reply. */
function sidOf (reply: unknown): string | undefined {
  const r = reply as Record<string, { sid?: string } | null | undefined> | null
  return r?.status?.sid ?? r?.dir?.sid ?? r?.moved?.sid ?? r?.fromDir?.sid ?? undefined
}
