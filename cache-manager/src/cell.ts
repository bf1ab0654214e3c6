// A cell as this cache manager sees it (AFS CellServDB entry + VLDB cache): its name,
// a link per volume server, and the volumes located so far.
import { notFound, rootFid, type Fid, type HelloReply, type VolumeEntry } from '@afs-ts/common'
import { ServerLink } from './server-link.ts'
import type { Counters } from './counters.ts'

export class Cell {
  name = ''
  rootVolume = 'root.cell'
  readonly links = new Map<string, ServerLink>()
  private readonly volumesByName = new Map<string, VolumeEntry>()
  private readonly volumesById = new Map<number, VolumeEntry>()

  constructor (readonly servers: string[], private readonly clientId: string, private readonly counters: Counters,
    private readonly onLink: (cell: Cell, link: ServerLink) => void) {}

  /** Contacts the first server that answers and learns the cell's name. */
  async ready (): Promise<HelloReply> {
    let last: unknown = null
    for (const address of this.servers) {
      const link = this.link(address)
      try {
        await link.call('ping', {})
        this.name = link.hello!.cell
        this.rootVolume = link.hello!.rootVolume
        return link.hello!
      } catch (err) { last = err }
    }
    throw last ?? notFound('no servers')
  }

  link (address: string): ServerLink {
    let l = this.links.get(address)
    if (!l) {
      l = new ServerLink(address, this.clientId, this.counters)
      this.links.set(address, l)
      this.onLink(this, l)
    }
    return l
  }

  /** The link serving `volumeId` (its first listed server). */
  linkFor (volumeId: number): ServerLink {
    const v = this.volumesById.get(volumeId)
    return this.link(v?.servers[0] ?? this.servers[0])
  }

  knownVolume (volumeId: number): VolumeEntry | undefined {
    return this.volumesById.get(volumeId)
  }

  get knownVolumes (): VolumeEntry[] {
    return [...this.volumesById.values()]
  }

  /** Looks a volume up by name in the VLDB (cached for the life of the process). */
  async volume (name: string): Promise<VolumeEntry> {
    const cached = this.volumesByName.get(name)
    if (cached) return cached
    const entry = await this.anyLink().call('vlGet', { name }) as VolumeEntry
    this.remember(entry)
    return entry
  }

  async volumeById (id: number): Promise<VolumeEntry> {
    const cached = this.volumesById.get(id)
    if (cached) return cached
    const entry = await this.anyLink().call('vlGet', { id }) as VolumeEntry
    this.remember(entry)
    return entry
  }

  remember (entry: VolumeEntry): void {
    this.volumesByName.set(entry.name, entry)
    this.volumesById.set(entry.id, entry)
  }

  cachedVolume (name: string): VolumeEntry | undefined {
    return this.volumesByName.get(name)
  }

  async rootFid (): Promise<Fid> {
    return rootFid((await this.volume(this.rootVolume)).id)
  }

  anyLink (): ServerLink {
    for (const l of this.links.values()) if (l.connected) return l
    return this.link(this.servers[0])
  }

  close (): void {
    for (const l of this.links.values()) l.close()
  }
}
