// A cell as this cache manager sees it (AFS CellServDB entry + VLDB cache): its name,
// a link per volume server, and the volumes located so far (`volume-table.ts`). What it
// learned is saved with the cache, so a cache manager started while no server answers
// still knows it.
import { connectionLost, rootFid, type Fid, type VolumeEntry } from '@afs-ts/common'
import { ServerLink } from './server-link.ts'
import type { Counters } from './counters.ts'
import type { Volume, VolumeHost } from './volume.ts'
import { VolumeTable } from './volume-table.ts'

/** What a cache remembers about a cell between runs. */
export interface SavedCell { name: string, rootVolume: string, volumes: VolumeEntry[] }

export class Cell implements VolumeHost {
  name = ''
  rootVolume = 'root.cell'
  readonly links = new Map<string, ServerLink>()
  readonly volumes: VolumeTable
  /** `afs disconnect --write-back`: servers are read, mutations go through the log. */
  writeBack = false
  /** The cell's log is being replayed (set by the reintegrator). */
  reintegrating = false
  private readonly started = new Map<string, Promise<boolean>>()

  constructor (readonly servers: string[], private readonly clientId: string, private readonly counters: Counters,
    private readonly onLink: (cell: Cell, link: ServerLink) => void, private readonly probeIntervalMs?: number) {
    this.volumes = new VolumeTable(this, () => this.servers[0])
  }

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
    for (const v of s.volumes) this.volumes.remember(v)
    return false
  }

  snapshot (): SavedCell {
    return { name: this.name, rootVolume: this.rootVolume, volumes: this.volumes.entries }
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

  async contacted (link: ServerLink): Promise<unknown> {
    return await this.started.get(link.address)
  }

  /** Looks a volume up by name in the location database (remembered for the life of the cache). */
  async volume (name: string): Promise<Volume> {
    return this.volumes.named(name) ?? this.volumes.remember(await this.anyLink().call('vlGet', { name }))
  }

  async volumeById (id: number): Promise<Volume> {
    return this.volumes.get(id) ?? this.volumes.remember(await this.anyLink().call('vlGet', { id }))
  }

  /** The volume `id`, located or not: requests for it go through here. */
  route (id: number): Volume {
    return this.volumes.route(id)
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
