// The protection database in the LMDB environment of the cell's first server, beside
// the embedded location database.
import type { Database, RootDatabase } from 'lmdb'
import { exists } from '@afs-ts/common'
import { FIRST_GROUP_ID, FIRST_USER_ID, notAnEntry, type PtsEntry, type PtsStore } from './pts.ts'

export class EmbeddedPts implements PtsStore {
  private readonly byName: Database<PtsEntry, string>
  private readonly ids: Database<string, number>
  private readonly meta: Database<number, string>

  constructor (root: RootDatabase) {
    this.byName = root.openDB({ name: 'pts-entries' })
    this.ids = root.openDB({ name: 'pts-ids' })
    this.meta = root.openDB({ name: 'pts-meta' })
  }

  async get (nameOrId: string | number): Promise<PtsEntry | undefined> {
    const name = typeof nameOrId === 'number' ? this.ids.get(nameOrId) : nameOrId
    return name === undefined ? undefined : this.byName.get(name)
  }

  async list (): Promise<PtsEntry[]> {
    return [...this.byName.getRange()].map(({ value }) => value)
  }

  async create (name: string, kind: PtsEntry['kind'], make: (id: number) => PtsEntry, fixedId?: number): Promise<PtsEntry> {
    let out: PtsEntry | null = null
    await this.byName.transaction(() => {
      if (this.byName.get(name) !== undefined) throw exists(`${name} exists in the protection database`)
      const key = kind === 'user' ? 'nextUser' : 'nextGroup'
      const id = fixedId ?? this.meta.get(key) ?? (kind === 'user' ? FIRST_USER_ID : FIRST_GROUP_ID)
      if (fixedId === undefined) this.meta.put(key, kind === 'user' ? id + 1 : id - 1)
      out = make(id)
      this.byName.put(name, out)
      this.ids.put(id, name)
    })
    return out!
  }

  async change (name: string, fn: (e: PtsEntry) => PtsEntry): Promise<PtsEntry> {
    let out: PtsEntry | null = null
    await this.byName.transaction(() => {
      const cur = this.byName.get(name)
      if (!cur) throw notAnEntry(name)
      out = fn(cur)
      this.byName.put(name, out)
    })
    return out!
  }

  async remove (name: string): Promise<void> {
    await this.byName.transaction(() => {
      const cur = this.byName.get(name)
      if (!cur) throw notAnEntry(name)
      this.byName.remove(name)
      this.ids.remove(cur.id)
    })
  }
}
