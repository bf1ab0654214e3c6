// The volume location database (VLDB): volume names and ids → the servers that hold
// them, and the cell's servers → where they are. Embedded in the cell's first volume
// server by default (LMDB databases beside its volumes), so a one-machine cell needs
// nothing else; the cell's other servers reach it through `remote-vldb.ts`.
import type { Database, RootDatabase } from 'lmdb'
import { exists, notFound, type Quorum, type VolumeEntry } from '@afs-ts/common'
import { newEntry, type LocationDb, type ServerEntry, type VolumeChange } from './location-db.ts'

/** The cell's root volume, as in AFS. */
export const ROOT_VOLUME_NAME = 'root.cell'
const FIRST_VOLUME_ID = 536870912 // AFS volume ids start high; any u32 works

export class VolumeLocationDb implements LocationDb {
  private readonly byId: Database<VolumeEntry, number>
  private readonly byName: Database<number, string>
  private readonly meta: Database<number, string>
  private readonly serversById: Database<ServerEntry, string>

  private readonly listeners: Array<(entry: VolumeEntry) => void> = []

  onChange (listener: (entry: VolumeEntry) => void): void {
    this.listeners.push(listener)
  }

  constructor (root: RootDatabase) {
    this.byId = root.openDB({ name: 'vldb-entries', keyEncoding: 'uint32' })
    this.byName = root.openDB({ name: 'vldb-names' })
    this.meta = root.openDB({ name: 'vldb-meta' })
    this.serversById = root.openDB({ name: 'vldb-servers' })
  }

  async get (nameOrId: string | number): Promise<VolumeEntry> {
    return this.entry(nameOrId)
  }

  /** The entry, without waiting (the embedded database answers from memory-mapped pages). */
  entry (nameOrId: string | number): VolumeEntry {
    const id = typeof nameOrId === 'number' ? nameOrId : this.byName.get(nameOrId)
    const entry = id === undefined ? undefined : this.byId.get(id)
    if (!entry) throw notFound(`no such volume: ${nameOrId}`)
    return entry
  }

  async has (name: string): Promise<boolean> {
    return this.byName.get(name) !== undefined
  }

  async list (): Promise<VolumeEntry[]> {
    return [...this.byId.getRange()].map(({ value }) => value)
  }

  /** Registers a new volume; runs its own write transaction. */
  async create (name: string, servers: string[], quota: number, quorum?: Quorum): Promise<VolumeEntry> {
    let entry: VolumeEntry | null = null
    await this.byId.transaction(() => {
      if (this.byName.get(name) !== undefined) throw exists(`volume ${name} exists`)
      const id = (this.meta.get('nextId') ?? FIRST_VOLUME_ID)
      this.meta.put('nextId', id + 1)
      entry = newEntry(id, name, servers, quota, quorum)
      this.byId.put(id, entry)
      this.byName.put(name, id)
    })
    return entry!
  }

  async update (id: number, change: VolumeChange): Promise<VolumeEntry> {
    let out: VolumeEntry | null = null
    await this.byId.transaction(() => {
      const cur = this.byId.get(id)
      if (!cur) throw notFound(`no such volume: ${id}`)
      out = { ...cur, ...change }
      this.byId.put(id, out)
    })
    for (const l of this.listeners) l(out!)
    return out!
  }

  async registerServer (id: string, address: string): Promise<ServerEntry | undefined> {
    let before: ServerEntry | undefined
    await this.serversById.transaction(() => {
      before = this.serversById.get(id)
      this.serversById.put(id, { id, address, since: before?.address === address ? before.since : Date.now() })
    })
    return before
  }

  async servers (): Promise<ServerEntry[]> {
    return [...this.serversById.getRange()].map(({ value }) => value)
  }

  /** The database lives in its server's LMDB environment, which the server closes. */
  async close (): Promise<void> {}
}
