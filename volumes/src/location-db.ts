// The volume location database as the servers of a cell use it: one interface, kept by
// the cell's first server (embedded, `vldb.ts`) or reached over the network from any
// other (`remote-vldb.ts`), or kept in etcd for cells beyond one machine (`etcd-vldb.ts`).
import { AfsError, rootFid, type Quorum, type ServerRecord, type VolumeEntry } from '@afs-ts/common'

/** A server of the cell: its stable id (kept in its data directory), where it is, since when. */
export type ServerEntry = ServerRecord

export type VolumeChange = Partial<Pick<VolumeEntry, 'servers' | 'quota' | 'epoch'>>

export interface LocationDb {
  /** Calls `listener` with every entry that changes, as far as this database learns of it (it keeps it, or watches it). */
  onChange? (listener: (entry: VolumeEntry) => void): void
  /** Connects and fills whatever cache it keeps (before the server registers). */
  start? (): Promise<void>
  get (nameOrId: string | number): Promise<VolumeEntry>
  /**
   * The entry as a server checks it on every request for the volume: from a cache, but
   * never older than a moment, so that a server frozen or cut off while it was taken out
   * of a volume learns of it before it serves the volume again. (Without it: `get`.)
   */
  recent? (id: number): Promise<VolumeEntry>
  /**
   * Runs `run` as the one admin command on `what` in the whole cell (two `vos move` of one
   * volume at once: one runs, the other is told BUSY). Without it, the server keeps the lock.
   */
  exclusive? <T> (what: string, run: () => Promise<T>): Promise<T>
  has (name: string): Promise<boolean>
  list (): Promise<VolumeEntry[]>
  /** Registers a new volume under a new id; two creates of one name: one gets EEXIST. */
  create (name: string, servers: string[], quota: number, quorum?: Quorum): Promise<VolumeEntry>
  update (id: number, change: VolumeChange): Promise<VolumeEntry>
  /** Server `id` is at `address` now; resolves with where it was before (undefined: new). */
  registerServer (id: string, address: string): Promise<ServerEntry | undefined>
  servers (): Promise<ServerEntry[]>
  /** The id of the server elected the cell's leader, where the database elects one (etcd). */
  leader? (): Promise<string | undefined>
  close (): Promise<void>
}

/** Whether a volume of that name is registered, asked of a database that answers `get`. */
export async function hasVolume (db: Pick<LocationDb, 'get'>, name: string): Promise<boolean> {
  try {
    await db.get(name)
    return true
  } catch (err) {
    if (err instanceof AfsError && err.code === 'NOT_FOUND') return false
    throw err
  }
}

/** The location entry of a volume just registered (a quorum is written only where it is not the default). */
export function newEntry (id: number, name: string, servers: string[], quota: number, quorum?: Quorum): VolumeEntry {
  return { id, name, servers, quota, root: rootFid(id), ...(quorum === 'majority' ? { quorum } : {}) }
}
