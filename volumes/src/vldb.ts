// The volume location database (VLDB): volume names and ids → the servers that hold
// them. Embedded in the first volume server by default (an LMDB database beside the
// volumes), so a one-machine cell needs nothing else.
import type { Database, RootDatabase } from 'lmdb'
import { exists, notFound, rootFid, type VolumeEntry } from '@afs-ts/common'

/** The cell's root volume, as in AFS. */
export const ROOT_VOLUME_NAME = 'root.cell'
const FIRST_VOLUME_ID = 536870912 // AFS volume ids start high; any u32 works

export class VolumeLocationDb {
  private readonly byId: Database<VolumeEntry, number>
  private readonly byName: Database<number, string>
  private readonly meta: Database<number, string>

  constructor (root: RootDatabase) {
    this.byId = root.openDB({ name: 'vldb-entries', keyEncoding: 'uint32' })
    this.byName = root.openDB({ name: 'vldb-names' })
    this.meta = root.openDB({ name: 'vldb-meta' })
  }

  get (nameOrId: string | number): VolumeEntry {
    const id = typeof nameOrId === 'number' ? nameOrId : this.byName.get(nameOrId)
    const entry = id === undefined ? undefined : this.byId.get(id)
    if (!entry) throw notFound(`no such volume: ${nameOrId}`)
    return entry
  }

  has (name: string): boolean {
    return this.byName.get(name) !== undefined
  }

  list (): VolumeEntry[] {
    return [...this.byId.getRange()].map(({ value }) => value)
  }

  /** Registers a new volume; runs its own write transaction. */
  async create (name: string, servers: string[], quota: number): Promise<VolumeEntry> {
    let entry: VolumeEntry | null = null
    await this.byId.transaction(() => {
      if (this.byName.get(name) !== undefined) throw exists(`volume ${name} exists`)
      const id = (this.meta.get('nextId') ?? FIRST_VOLUME_ID)
      this.meta.put('nextId', id + 1)
      entry = { id, name, servers, quota, root: rootFid(id) }
      this.byId.put(id, entry)
      this.byName.put(name, id)
    })
    return entry!
  }

  async update (id: number, change: Partial<Pick<VolumeEntry, 'servers' | 'quota'>>): Promise<VolumeEntry> {
    let out: VolumeEntry | null = null
    await this.byId.transaction(() => {
      const cur = this.byId.get(id)
      if (!cur) throw notFound(`no such volume: ${id}`)
      out = { ...cur, ...change }
      this.byId.put(id, out)
    })
    return out!
  }
}
