// A cell as this cache manager sees it (AFS CellServDB entry + VLDB cache): its name,
// a link per volume server, and the volumes located so far. What it learned is saved
// with the cache, so a cache manager started while no server answers still knows it.
import { connectionLost, rootFid, type Fid, type VolumeEntry } from '@afs-ts/common'
import { ServerLink } from './server-link.ts'
import type { Counters } from './counters.ts'

/** What a cache remembers about a cell between runs. */
export interface SavedCell { name: string, rootVolume: string, volumes: VolumeEntry[] }

export class Cell {
  name = ''
  rootVolume = 'root.cell'
  readonly links = new Map<string, ServerLink>()
  private readonly started = new Map<string, Promise<boolean>>()
  private readonly volumesByName = new Map<string, VolumeEntry>()
  private readonly volumesById = new Map<number, VolumeEntry>()

  constructor (readonly servers: string[], private readonly clientId: string, private readonly counters: Counters,
    private readonly onLink: (cell: Cell, link: ServerLink) => void, private readonly probeIntervalMs?: number) {}

  /** Contacts the first server that answers; else falls back on what the cache saved. Resolves whether online. */
  async ready (saved: (servers: string[]) => SavedCell | undefined): Promise<boolean> {
    for (const address of this.servers) {
      const link = this.link(address)
      if (await this.started.get(address)) {
        this.name = link.hello!.cell
        this.rootVolume = link.hello!.rootVolume
        await this.volume(this.rootVolume)
        return true
      }
    }
    const s = saved(this.servers)
    if (!s) throw connectionLost(`no server of ${this.servers.join(', ')} answers (${this.link(this.servers[0]).downCause}), and this cache has never seen that cell`)
    this.name = s.name
    this.rootVolume = s.rootVolume
    for (const v of s.volumes) this.remember(v)
    return false
  }

  snapshot (): SavedCell {
    return { name: this.name, rootVolume: this.rootVolume, volumes: this.knownVolumes }
  }

  link (address: string): ServerLink {
    let l = this.links.get(address)
    if (!l) {
      l = new ServerLink(address, this.clientId, this.counters, this.probeIntervalMs)
      this.links.set(address, l)
      this.onLink(this, l)
      this.started.set(address, l.start())
    }
    return l
  }

  /** The link serving `volumeId` (its first listed server). */
  linkFor (volumeId: number): ServerLink {
    const v = this.volumesById.get(volumeId)
    return this.link(v?.servers[0] ?? this.servers[0])
  }

  /** Like linkFor, after the link's first contact has been tried. */
  async readyLinkFor (volumeId: number): Promise<ServerLink> {
    const l = this.linkFor(volumeId)
    await this.started.get(l.address)
    return l
  }

  knownVolume (volumeId: number): VolumeEntry | undefined {
    return this.volumesById.get(volumeId)
  }

  get knownVolumes (): VolumeEntry[] {
    return [...this.volumesById.values()]
  }

  cachedVolume (name: string): VolumeEntry | undefined {
    return this.volumesByName.get(name)
  }

  /** Looks a volume up by name in the VLDB (cached for the life of the cache). */
  async volume (name: string): Promise<VolumeEntry> {
    return this.volumesByName.get(name) ?? this.remember(await this.anyLink().call('vlGet', { name }))
  }

  async volumeById (id: number): Promise<VolumeEntry> {
    return this.volumesById.get(id) ?? this.remember(await this.anyLink().call('vlGet', { id }))
  }

  remember (entry: VolumeEntry): VolumeEntry {
    this.volumesByName.set(entry.name, entry)
    this.volumesById.set(entry.id, entry)
    return entry
  }

  async rootFid (): Promise<Fid> {
    return rootFid((await this.volume(this.rootVolume)).id)
  }

  anyLink (): ServerLink {
    for (const l of this.links.values()) if (l.connected) return l
    return this.link(this.servers[0])
  }

  /** `afs disconnect` / `afs reconnect` for every server of the cell. */
  force (down: boolean): void {
    for (const l of this.links.values()) l.force(down)
  }

  close (): void {
    for (const l of this.links.values()) l.close()
  }
}
