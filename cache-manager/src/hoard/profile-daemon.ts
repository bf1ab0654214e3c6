// The hoard profile daemon: watches a directory of hoard profiles (chokidar) and keeps
// the hoard database in step — a new or edited profile replaces its entries, a deleted
// one withdraws them, a profile with a bad line is reported and not applied at all.
import { watch, type FSWatcher } from 'chokidar'
import { readFile, mkdir } from 'node:fs/promises'
import { basename } from 'node:path'
import { makeLog } from '@afs-ts/common'
import type { HoardDb, HoardEntry } from './hoard-db.ts'
import { parseProfile, ProfileError } from './profile.ts'

const log = makeLog('hoard')

export class ProfileDaemon {
  private watcher: FSWatcher | null = null
  /** Profile file → what is wrong with it (until it is fixed or removed). */
  readonly errors = new Map<string, string>()
  readonly loaded = new Map<string, number>()

  constructor (private readonly dir: string, private readonly db: HoardDb, private readonly toPath: (p: string) => string,
    private readonly changed: () => void) {}

  async ready (): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    const w = watch(this.dir, { depth: 0, ignoreInitial: false, awaitWriteFinish: { stabilityThreshold: 150, pollInterval: 50 } })
    this.watcher = w
    w.on('add', p => { void this.load(p) })
    w.on('change', p => { void this.load(p) })
    w.on('unlink', p => { void this.withdraw(p) })
    w.on('error', err => log.error(`watching ${this.dir}: ${(err as Error).message}`))
    await new Promise<void>(resolve => w.once('ready', () => resolve()))
    log.info(`watching hoard profiles in ${this.dir}`)
  }

  async close (): Promise<void> {
    await this.watcher?.close()
  }

  static source (file: string): string {
    return `profile:${basename(file)}`
  }

  private async load (file: string): Promise<void> {
    const name = basename(file)
    if (name.startsWith('.')) return
    try {
      const lines = parseProfile(await readFile(file, 'utf8'), name, this.toPath)
      const adds = new Map<string, HoardEntry>()
      const removals: string[] = []
      for (const l of lines) {
        if (l.op === 'add') adds.set(l.path, { path: l.path, priority: l.priority, expansion: l.expansion, source: ProfileDaemon.source(file) })
        else { adds.delete(l.path); removals.push(l.path) }
      }
      await this.db.replaceSource(ProfileDaemon.source(file), [...adds.values()], removals)
      this.errors.delete(name)
      this.loaded.set(name, adds.size)
      log.info(`hoard profile ${name}: ${adds.size} entries`)
      this.changed()
    } catch (err) {
      const msg = err instanceof ProfileError ? err.message : `${name}: ${(err as Error).message}`
      this.errors.set(name, msg)
      log.error(`hoard profile not applied: ${msg}`)
    }
  }

  private async withdraw (file: string): Promise<void> {
    const name = basename(file)
    await this.db.replaceSource(ProfileDaemon.source(file), [])
    this.errors.delete(name)
    this.loaded.delete(name)
    log.info(`hoard profile ${name} removed: its entries are withdrawn`)
    this.changed()
  }
}
