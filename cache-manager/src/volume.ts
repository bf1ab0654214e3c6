// A volume as this cache manager sees it (Coda's volent): its location entry, the servers
// that store it (its VSG) and those of them that answer now (its AVSG), the state it is
// in, and the one way requests for it reach a server.
import type { Args, InboundStream, Op, Reply, VolumeEntry } from '@afs-ts/common'
import type { ServerLink } from './server-link.ts'

/** A volume is in exactly one of these states (resolving: a replicated volume's members are being made equal). */
export type VolumeState = 'connected' | 'disconnected' | 'reintegrating' | 'write-disconnected' | 'resolving'

/** Requests for one volume, typed by the protocol's reply map. A volume and a server link both take them. */
export interface VolumeCalls {
  call<O extends Op> (op: O, args: Args<O>, timeoutMs?: number): Promise<Reply<O>>
  download<O extends Op> (op: O, args: Args<O>): Promise<{ result: Reply<O>, body: InboundStream }>
  upload<O extends Op> (op: O, args: Args<O>, body: AsyncIterable<Buffer>): Promise<Reply<O>>
}

/** What a volume needs of its cell: a link per server, and the modes the whole cell is in. */
export interface VolumeHost {
  link (address: string): ServerLink
  /** Settles once the link's first contact has been tried. */
  contacted (link: ServerLink): Promise<unknown>
  /** The volume `id` as the location database has it (looked up when not known yet). */
  locate (id: number): Promise<Volume>
  readonly writeBack: boolean
  readonly reintegrating: boolean
}

export class Volume implements VolumeCalls {
  private members: ServerLink[] | null = null

  /** `provisional`: a stand-in for a volume not located yet, routed to a guess until a request needs the truth. */
  constructor (private located: VolumeEntry, private readonly host: VolumeHost, readonly provisional = false) {}

  /** The location entry; a new one (new sites) changes the VSG. */
  get entry (): VolumeEntry { return this.located }
  set entry (e: VolumeEntry) { this.located = e; this.members = null }

  get id (): number { return this.located.id }
  get name (): string { return this.located.name }

  /** The servers that store this volume, as the location database lists them. */
  get vsg (): ServerLink[] { return (this.members ??= this.located.servers.map(a => this.host.link(a))) }

  /** The members that answer now. */
  get avsg (): ServerLink[] { return this.vsg.filter(l => l.connected) }

  /** The member requests go to: the first that answers, else the first listed. */
  get preferred (): ServerLink {
    const vsg = this.vsg
    return vsg.find(l => l.connected) ?? vsg[0]
  }

  get connected (): boolean { return this.vsg.some(l => l.connected) }

  /** Grows whenever the preferred member's link goes down or up: callbacks from an older epoch are void. */
  get epoch (): number { return this.preferred.epoch }

  get state (): VolumeState {
    if (this.host.reintegrating) return 'reintegrating'
    if (!this.connected) return 'disconnected'
    if (this.host.writeBack) return 'write-disconnected'
    return 'connected'
  }

  /** Why no member answers, when none does. */
  get downCause (): string { return this.preferred.downCause }

  async call<O extends Op> (op: O, args: Args<O>, timeoutMs?: number): Promise<Reply<O>> {
    return await (await this.member()).call(op, args, timeoutMs)
  }

  async download<O extends Op> (op: O, args: Args<O>): Promise<{ result: Reply<O>, body: InboundStream }> {
    return await (await this.member()).download(op, args)
  }

  async upload<O extends Op> (op: O, args: Args<O>, body: AsyncIterable<Buffer>): Promise<Reply<O>> {
    return await (await this.member()).upload(op, args, body)
  }

  /** The preferred member, once its first contact has been tried; a stand-in locates its volume first. */
  private async member (): Promise<ServerLink> {
    if (this.provisional) return await (await this.host.locate(this.id)).member()
    const l = this.preferred
    await this.host.contacted(l)
    return l
  }
}
