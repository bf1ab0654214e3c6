// A cell as this cache manager sees it (AFS CellServDB entry + VLDB cache): its name,
// a link per volume server, and the volumes located so far (`volume-table.ts`). What it
// learned is saved with the cache, so a cache manager started while no server answers
// still knows it.
import { connectionLost, makeLog, rootFid, type Fid, type VolumeEntry } from '@afs-ts/common'
import { ServerLink, type Credentials } from './server-link.ts'
import type { Counters } from './counters.ts'
import type { Volume, VolumeHost } from './volume.ts'
import { VolumeTable } from './volume-table.ts'
import { PROBE_INTERVAL_MS } from './constants.ts'

const log = makeLog('cache-manager')

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
  private relocating: NodeJS.Timeout | null = null

  constructor (readonly servers: string[], private readonly clientId: string, private readonly counters: Counters, private readonly creds: Credentials,
    private readonly onLink: (cell: Cell, link: ServerLink) => void, private readonly probeIntervalMs?: number,
    /** A volume's sites changed: what the cache saved of the cell is out of date. */
    private readonly onMoved: (cell: Cell) => void = () => {}) {
    this.volumes = new VolumeTable(this, () => this.servers[0])
  }

  /** Contacts the first server that answers; else falls back on what the cache saved. Resolves whether online. */
  async ready (saved: (servers: string[]) => SavedCell | undefined): Promise<boolean> {
    // Where volumes were last seen: the log may hold changes for them before anything looks them up again.
    const s = saved(this.servers)
    for (const v of s?.volumes ?? []) this.volumes.remember(v)
    for (const address of this.servers) {
      const link = this.link(address)
      if (await this.started.get(address)) {
        this.name = link.hello!.cell
        this.rootVolume = link.hello!.rootVolume
        await this.refreshVolumes(link)
        return true
      }
    }
    if (!s) throw connectionLost(`no server of ${this.servers.join(', ')} answers (${this.link(this.servers[0]).downCause}), and this cache has never seen that cell`)
    this.name = s.name
    this.rootVolume = s.rootVolume
    return false
  }

  /** The entries of the volumes this cache knows (and the root volume's) as the location database has them now. */
  private async refreshVolumes (via: ServerLink): Promise<void> {
    const known = new Set([this.rootVolume, ...this.volumes.all.map(v => v.name)])
    for (const e of await via.call('vlList', {})) if (known.has(e.name)) this.volumes.remember(e)
    if (!this.volumes.named(this.rootVolume)) await this.volume(this.rootVolume)
  }

  snapshot (): SavedCell {
    return { name: this.name, rootVolume: this.rootVolume, volumes: this.volumes.entries }
  }

  link (address: string): ServerLink {
    let l = this.links.get(address)
    if (!l) {
      l = new ServerLink(address, this.clientId, this.counters, this.creds, this.probeIntervalMs)
      this.links.set(address, l)
      l.on('down', () => this.watchLocations())
      l.on('locations', (entries: VolumeEntry[]) => { for (const e of entries) this.learnLocation(e) })
      this.onLink(this, l)
      this.started.set(address, l.start())
    }
    return l
  }

  async contacted (link: ServerLink): Promise<unknown> {
    return await this.started.get(link.address)
  }

  async locate (id: number): Promise<Volume> {
    return await this.volumeById(id)
  }

  /** Looks volume `id` up again (its server said it moved): requests for it go to where it is now. */
  async relocate (id: number): Promise<void> {
    this.learnLocation(await this.anyLink().call('vlGet', { id }))
  }

  /** A volume's location entry, new to this cell's table (looked up again, or pushed by a server). */
  private learnLocation (entry: VolumeEntry): void {
    const known = this.volumes.get(entry.id)
    if (known && known.entry.servers.join() === entry.servers.join() && (known.entry.epoch ?? 0) === (entry.epoch ?? 0)) return
    if (!known && !this.volumes.named(entry.name)) return // never asked for here: nothing to correct
    this.volumes.remember(entry)
    log.info(`volume ${entry.name} is on ${entry.servers.join(', ')} now${known ? ` (was ${known.entry.servers.join(', ')})` : ''}`)
    this.onMoved(this)
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

  /**
   * While some volume has no member that answers, asks the location database (through
   * any server that does answer) where it is now: a server that came back at another
   * address is found there.
   */
  private watchLocations (): void {
    this.relocating ??= setInterval(() => { void this.relocateLost() }, this.probeIntervalMs ?? PROBE_INTERVAL_MS)
    this.relocating.unref()
  }

  private async relocateLost (): Promise<void> {
    const lost = this.volumes.all.filter(v => !v.connected)
    if (lost.length === 0 && this.relocating) { clearInterval(this.relocating); this.relocating = null; return }
    const via = this.anyLink()
    if (!via.connected || via.forcedDown) return
    for (const v of lost) {
      try {
        this.learnLocation(await via.call('vlGet', { id: v.id }))
      } catch { /* asked again on the next round */ }
    }
  }

  /** `afs disconnect` / `afs reconnect` for every server of the cell. */
  force (down: boolean): void {
    for (const l of this.links.values()) l.force(down)
  }

  close (): void {
    if (this.relocating) clearInterval(this.relocating)
    for (const l of this.links.values()) l.close()
  }
}
