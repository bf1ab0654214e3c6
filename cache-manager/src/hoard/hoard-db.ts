// The hoard database (Coda's hdb): what the user wants kept in the cache, by path, with
// a priority (1–1000) and how far it reaches: none, children (c), children including
// ones created later (c+), descendants (d), descendants including later ones (d+).
// Entries belong to a source — the CLI or one profile — so a profile can be replaced
// or withdrawn whole. Its own LMDB in the cache directory: it survives restarts.
import { open as openLmdb, type Database, type RootDatabase } from 'lmdb'
import { join } from 'node:path'
import { invalid } from '@afs-ts/common'

export type Expansion = 'none' | 'c' | 'c+' | 'd' | 'd+'
export const DEFAULT_HOARD_PRIORITY = 500
export const CLI_SOURCE = 'cli'

export interface HoardEntry {
  /** Mount-relative path: /cell/dir/file. */
  path: string
  priority: number
  expansion: Expansion
  source: string
  /** For c and d: the relative paths below `path` that existed when first walked. */
  snapshot?: string[]
}

/** "600:d+" → priority and expansion; a bare expansion or nothing takes the default priority. */
export function parsePriority (text: string | undefined): { priority: number, expansion: Expansion } {
  if (text === undefined || text === '') return { priority: DEFAULT_HOARD_PRIORITY, expansion: 'none' }
  const m = /^(\d{1,4})?(?::(c|c\+|d|d\+))?$/.exec(text)
  const priority = m?.[1] === undefined ? DEFAULT_HOARD_PRIORITY : Number(m[1])
  if (!m || (m[1] === undefined && m[2] === undefined) || priority < 1 || priority > 1000) {
    throw invalid(`'${text}' is not PRIORITY[:c|c+|d|d+] with a priority of 1-1000`)
  }
  return { priority, expansion: (m[2] ?? 'none') as Expansion }
}

export class HoardDb {
  private readonly db: RootDatabase
  private readonly entries: Database<HoardEntry, [string, string]>

  constructor (cacheDir: string) {
    this.db = openLmdb({ path: join(cacheDir, 'hoard.lmdb'), compression: false })
    this.entries = this.db.openDB({ name: 'entries' })
  }

  async close (): Promise<void> {
    await this.db.close()
  }

  list (): HoardEntry[] {
    return [...this.entries.getRange()].map(e => e.value)
  }

  async add (e: HoardEntry): Promise<void> {
    await this.entries.put([e.source, e.path], e)
    await this.db.flushed
  }

  /** Removes `path` from every source; returns how many entries went. */
  async remove (path: string): Promise<number> {
    let n = 0
    await this.db.transaction(() => {
      for (const e of this.list()) if (e.path === path) { this.entries.remove([e.source, e.path]); n++ }
    })
    return n
  }

  /** Replaces every entry of `source` with `entries` in one transaction (a profile, re-read). */
  async replaceSource (source: string, entries: HoardEntry[], removals: string[] = []): Promise<void> {
    await this.db.transaction(() => {
      for (const e of this.list()) if (e.source === source || removals.includes(e.path)) this.entries.remove([e.source, e.path])
      for (const e of entries) this.entries.put([source, e.path], { ...e, source })
    })
    await this.db.flushed
  }

  async setSnapshot (e: HoardEntry, snapshot: string[]): Promise<void> {
    await this.entries.put([e.source, e.path], { ...e, snapshot })
  }

  async clear (): Promise<void> {
    await this.entries.clearAsync()
  }
}
