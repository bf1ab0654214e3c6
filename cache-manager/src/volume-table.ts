// The volumes of one cell this cache manager has located so far (Coda's vdb), by id and
// by name. Entries come from the location database and are kept for the life of the
// cache (saved with it, so a cache started while no server answers still routes).
import { rootFid, type VolumeEntry } from '@afs-ts/common'
import { Volume, type VolumeHost } from './volume.ts'

export class VolumeTable {
  private readonly byId = new Map<number, Volume>()
  private readonly byName = new Map<string, Volume>()

  /** `fallback`: the server a volume not located yet is asked through. */
  constructor (private readonly host: VolumeHost, private readonly fallback: () => string) {}

  get (id: number): Volume | undefined { return this.byId.get(id) }

  named (name: string): Volume | undefined { return this.byName.get(name) }

  /**
   * The volume `id` if located, else a stand-in: it answers questions of state as the
   * fallback server would, and locates the volume before sending a request for it.
   */
  route (id: number): Volume {
    return this.byId.get(id) ?? new Volume({ id, name: '', servers: [this.fallback()], quota: 0, root: rootFid(id) }, this.host, true)
  }

  /** Takes a location entry: a new volume, or the new sites, quota or name of a known one. */
  remember (entry: VolumeEntry): Volume {
    let v = this.byId.get(entry.id)
    if (v) {
      if (v.name !== entry.name) this.byName.delete(v.name)
      v.entry = entry
    } else v = new Volume(entry, this.host)
    this.byId.set(entry.id, v)
    this.byName.set(entry.name, v)
    return v
  }

  get all (): Volume[] { return [...this.byId.values()] }

  get entries (): VolumeEntry[] { return this.all.map(v => v.entry) }
}
