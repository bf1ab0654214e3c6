// The cell's location database as a server that does not keep it sees it: every call
// goes to the server that does (named by `afs server --vldb HOST:PORT`). When that
// server is unreachable, the call fails with a clear error naming it.
import { AfsError, Peer, connectionLost, isUnreachable, type Quorum, type Trust, type VolumeEntry } from '@afs-ts/common'
import { hasVolume, type LocationDb, type ServerEntry, type VolumeChange } from './location-db.ts'

/** How old an entry may be when a request is checked against it (`recent`). */
const RECENT_MS = 1_000

export class RemoteLocationDb implements LocationDb {
  private readonly peer: Peer
  private readonly seen = new Map<number, { at: number, entry: VolumeEntry }>()

  /** `cell`: the cell this server belongs to; a location database of another cell is refused. */
  constructor (readonly address: string, cell: string, serverId: string, trust: Trust) {
    // (Its own id: the server's other connections to that server say hello as `server:ID`.)
    this.peer = new Peer(address, `server:${serverId}:vldb`, { cell, trust })
  }

  async get (nameOrId: string | number): Promise<VolumeEntry> {
    return await this.ask(() => this.peer.call('vlGet', typeof nameOrId === 'number' ? { id: nameOrId } : { name: nameOrId }))
  }

  /** At most a second old: one request to the database a second per volume, whatever the traffic. */
  async recent (id: number): Promise<VolumeEntry> {
    const seen = this.seen.get(id)
    if (seen && Date.now() - seen.at < RECENT_MS) return seen.entry
    const entry = await this.get(id)
    this.seen.set(id, { at: Date.now(), entry })
    return entry
  }

  async has (name: string): Promise<boolean> {
    return await hasVolume(this, name)
  }

  async list (): Promise<VolumeEntry[]> {
    return await this.ask(() => this.peer.call('vlList', {}))
  }

  async create (name: string, servers: string[], quota: number, quorum?: Quorum): Promise<VolumeEntry> {
    return await this.ask(() => this.peer.call('vlCreate', { name, servers, quota, quorum }))
  }

  async update (id: number, change: VolumeChange): Promise<VolumeEntry> {
    return await this.ask(() => this.peer.call('vlUpdate', { id, ...change }))
  }

  async registerServer (id: string, address: string): Promise<ServerEntry | undefined> {
    return (await this.ask(() => this.peer.call('vlRegister', { serverId: id, address }))).before ?? undefined
  }

  async servers (): Promise<ServerEntry[]> {
    return await this.ask(() => this.peer.call('vlServers', {}))
  }

  async close (): Promise<void> {
    this.peer.close()
  }

  private async ask<T> (call: () => Promise<T>): Promise<T> {
    try {
      return await call()
    } catch (err) {
      const e = AfsError.from(err)
      if (isUnreachable(e)) throw connectionLost(`the cell's location database at ${this.address} is unreachable (${e.message})`)
      throw e
    }
  }
}
