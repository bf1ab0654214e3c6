// The protection database in etcd, beside the location database there:
//   <prefix>/pts/entries/<name>   an entry (JSON)
//   <prefix>/pts/ids/<id>         its name
//   <prefix>/pts/next-user, next-group
// New entries take their name and id by compare-and-swap, changes are compare-and-swap
// read-modify-writes, as the location database's are.
import type { Etcd3 } from 'etcd3'
import { AfsError, exists } from '@afs-ts/common'
import { FIRST_GROUP_ID, FIRST_USER_ID, notAnEntry, type PtsEntry, type PtsStore } from './pts.ts'

const CAS_ROUNDS = 64

export class EtcdPts implements PtsStore {
  private readonly prefix: string

  /** `ask`: runs one request to etcd, failing fast and clearly when it is unreachable. */
  constructor (private readonly client: Etcd3, cell: string, private readonly ask: <T>(call: () => Promise<T>) => Promise<T>) {
    this.prefix = `/afs/${cell}/pts/`
  }

  async get (nameOrId: string | number): Promise<PtsEntry | undefined> {
    const name = typeof nameOrId === 'number' ? await this.ask(async () => await this.client.get(this.prefix + `ids/${nameOrId}`).string()) : nameOrId
    if (name === null) return undefined
    return await this.ask(async () => await this.client.get(this.key(name)).json() as PtsEntry | null) ?? undefined
  }

  async list (): Promise<PtsEntry[]> {
    const all = await this.ask(async () => await this.client.getAll().prefix(this.prefix + 'entries/').json())
    return Object.values(all) as PtsEntry[]
  }

  async create (name: string, kind: PtsEntry['kind'], make: (id: number) => PtsEntry, fixedId?: number): Promise<PtsEntry> {
    const nextKey = this.prefix + (kind === 'user' ? 'next-user' : 'next-group')
    for (let round = 0; round < CAS_ROUNDS; round++) {
      const kv = (await this.ask(async () => await this.client.get(nextKey).exec())).kvs[0]
      const next = kv ? Number(kv.value.toString()) : kind === 'user' ? FIRST_USER_ID : FIRST_GROUP_ID
      const id = fixedId ?? next
      const entry = make(id)
      const txn = this.client.if(this.key(name), 'Version', '==', 0)
      const guarded = kv ? txn.and(nextKey, 'Mod', '==', kv.mod_revision) : txn.and(nextKey, 'Version', '==', 0)
      const r = await this.ask(async () => await guarded.then(
        this.client.put(nextKey).value(String(fixedId !== undefined ? next : kind === 'user' ? id + 1 : id - 1)),
        this.client.put(this.key(name)).value(JSON.stringify(entry)),
        this.client.put(this.prefix + `ids/${id}`).value(name),
      ).commit())
      if (r.succeeded) return entry
      if (await this.get(name)) throw exists(`${name} exists in the protection database`)
    }
    throw new AfsError('BUSY', `${name}: the protection database kept changing under this create; try again`)
  }

  async change (name: string, fn: (e: PtsEntry) => PtsEntry): Promise<PtsEntry> {
    for (let round = 0; round < CAS_ROUNDS; round++) {
      const kv = (await this.ask(async () => await this.client.get(this.key(name)).exec())).kvs[0]
      if (!kv) throw notAnEntry(name)
      const out = fn(JSON.parse(kv.value.toString()) as PtsEntry)
      const r = await this.ask(async () => await this.client.if(this.key(name), 'Mod', '==', kv.mod_revision).then(this.client.put(this.key(name)).value(JSON.stringify(out))).commit())
      if (r.succeeded) return out
    }
    throw new AfsError('BUSY', `${name}: the protection database kept changing under this change; try again`)
  }

  async remove (name: string): Promise<void> {
    const e = await this.get(name)
    if (!e) throw notAnEntry(name)
    await this.ask(async () => await this.client.delete().key(this.key(name)).exec())
    await this.ask(async () => await this.client.delete().key(this.prefix + `ids/${e.id}`).exec())
  }

  private key (name: string): string {
    return this.prefix + `entries/${name}`
  }
}
