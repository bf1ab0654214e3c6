// The table of cached objects (Coda's fsdb): every FsObject in memory, keyed by
// "cell:volume.vnode.unique", mirrored to LMDB with directory listings so a restarted
// cache manager revalidates its cache instead of refetching it.
import { open as openLmdb, type Database, type RootDatabase } from 'lmdb'
import { join } from 'node:path'
import { fidKey, type Fid, type VnodeStatus } from '@afs-ts/common'
import { newObject, seenAt, type Dirent, type FsObject, type PersistedObject } from './fs-object.ts'
import type { SavedCell } from './cell.ts'

export function objectKey (cell: string, fid: Fid): string {
  return `${cell}:${fidKey(fid)}`
}

export class FsObjectTable {
  private readonly objects = new Map<string, FsObject>()
  private readonly db: RootDatabase
  private readonly persisted: Database<PersistedObject, string>
  private readonly dirents: Database<Dirent, [string, string]>
  private readonly cells: Database<SavedCell, string>

  constructor (cacheDir: string) {
    // Cache metadata can always be rebuilt from the servers: no fsync per commit.
    this.db = openLmdb({ path: join(cacheDir, 'cache.lmdb'), compression: false, noSync: true })
    this.persisted = this.db.openDB({ name: 'objects' })
    this.dirents = this.db.openDB({ name: 'dirents' })
    this.cells = this.db.openDB({ name: 'cells' })
  }

  /** What this cache knows of the cell served by `servers`. */
  savedCell (servers: string[]): SavedCell | undefined {
    return this.cells.get(servers.join(','))
  }

  saveCell (servers: string[], cell: SavedCell): Promise<boolean> {
    return this.cells.put(servers.join(','), cell)
  }

  /**
   * Loads what the last run cached; every callback starts out void. A listing not known
   * to be current is kept too: it serves while the server is unreachable. Throws on
   * damaged metadata.
   */
  load (): number {
    this.objects.clear()
    for (const { value } of this.persisted.getRange()) {
      const o = newObject(value.key, value.cell, value.status)
      Object.assign(o, value)
      if (o.status.type === 'dir' && (value.listed ?? (value.listedVersion >= 0 || o.status.fid.unique === 0))) o.entries = new Map()
      this.objects.set(o.key, o)
    }
    for (const { key, value: d } of this.dirents.getRange()) this.objects.get(key[0])?.entries?.set(key[1], d)
    return this.objects.size
  }

  async close (): Promise<void> {
    await this.db.flushed
    await this.db.close()
  }

  get (key: string): FsObject | undefined {
    return this.objects.get(key)
  }

  values (): IterableIterator<FsObject> {
    return this.objects.values()
  }

  get size (): number { return this.objects.size }

  /** Inserts or refreshes the status of an object; keeps its cache state. */
  upsert (cell: string, status: VnodeStatus): FsObject {
    const key = objectKey(cell, status.fid)
    let o = this.objects.get(key)
    if (!o) {
      o = newObject(key, cell, status)
      this.objects.set(key, o)
    } else if (status.dataVersion >= o.status.dataVersion) {
      // Replies to concurrent requests may arrive out of order: never step back a version.
      o.status = status
    }
    return o
  }

  /** Writes an object's durable fields (not awaited by callers: the server has the truth). */
  save (o: FsObject): Promise<boolean> {
    const p: PersistedObject = {
      key: o.key, cell: o.cell, status: o.status, cachedVersion: o.cachedVersion, cachedBytes: o.cachedBytes,
      dirty: o.dirty, lastUse: o.lastUse, listedVersion: o.entries ? o.listedVersion : -1, listed: o.entries !== null, baseVersion: o.baseVersion, conflict: o.conflict, place: o.place, access: o.access,
    }
    return this.persisted.put(o.key, p)
  }

  /** Replaces a directory's whole cached listing. */
  async saveListing (o: FsObject): Promise<void> {
    const entries = o.entries
    await this.db.transaction(() => {
      for (const key of this.dirents.getKeys({ start: [o.key, ''], end: [o.key + '\u0000', ''] })) this.dirents.remove(key)
      if (entries) for (const [name, d] of entries) { this.dirents.put([o.key, name], d); this.seen(o, name, d) }
      void this.save(o)
    })
  }

  /** Records one entry change of a cached listing. */
  saveEntry (o: FsObject, name: string, d: Dirent | null): void {
    if (d) { void this.dirents.put([o.key, name], d); this.seen(o, name, d) } else void this.dirents.remove([o.key, name])
  }

  /** A cached child named in a listing now has that place (a removed name keeps its last). */
  private seen (dir: FsObject, name: string, d: Dirent): void {
    const child = this.objects.get(objectKey(dir.cell, d.fid))
    if (child) seenAt(child, dir.status.fid, name)
  }

  /** Adds an object built elsewhere (rebuilt from the log). */
  set (o: FsObject): void {
    this.objects.set(o.key, o)
    void this.save(o)
  }

  /** Gives an object a new fid (its local fid replaced by the server's), with its listing. */
  rekey (o: FsObject, status: VnodeStatus): void {
    const from = o.key
    this.delete(from)
    o.key = objectKey(o.cell, status.fid)
    o.status = status
    this.objects.set(o.key, o)
    if (o.entries) void this.saveListing(o)
    else void this.save(o)
  }

  delete (key: string): void {
    this.objects.delete(key)
    void this.persisted.remove(key)
    void this.db.transaction(() => {
      for (const k of this.dirents.getKeys({ start: [key, ''], end: [key + '\u0000', ''] })) this.dirents.remove(k)
    })
  }
}
