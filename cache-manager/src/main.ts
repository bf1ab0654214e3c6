// Runs a cache manager: the core, its FUSE mount and its control socket. Tears down in
// reverse order of start: control socket, mount, core.
import { mkdir, opendir, realpath } from 'node:fs/promises'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { makeLog } from '@afs-ts/common'
import { CacheManager, type CacheManagerOptions } from './cache-manager.ts'
import { Vfs } from './vfs.ts'
import { mount, type Mount } from './fuse/adapter.ts'
import { ControlServer, toMountPath } from './control.ts'
import { HoardDb } from './hoard/hoard-db.ts'
import { HoardWalker } from './hoard/walker.ts'
import { ProfileDaemon } from './hoard/profile-daemon.ts'
import { HOARD_WALK_INTERVAL_MS } from './constants.ts'
import { cacheMetrics } from './metrics.ts'
import { join } from 'node:path'
import { homedir } from 'node:os'

const log = makeLog('cache-manager')

export interface ClientOptions extends CacheManagerOptions {
  mountDir: string
  /** Directory of hoard profiles watched by the profile daemon. */
  profilesDir?: string
  hoardIntervalMs?: number
  /** Where to serve Prometheus metrics (HOST:PORT; port 0: any). */
  metrics?: string
}

/** Where hoard profiles live unless told: the user's config directory. */
export function defaultProfilesDir (): string {
  return join(process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'afs-ts', 'hoard')
}

export class CacheManagerProcess {
  readonly cm: CacheManager
  readonly vfs: Vfs
  private fuse: Mount | null = null
  private control: ControlServer | null = null
  hoardDb: HoardDb | null = null
  walker: HoardWalker | null = null
  profiles: ProfileDaemon | null = null
  private closing: Promise<void> | null = null
  private metricsServer: { close: () => Promise<void> } | null = null
  mountDir = ''
  /** Where /metrics is served, when it is. */
  metricsAddress: string | null = null

  constructor (readonly opts: ClientOptions) {
    this.cm = new CacheManager(opts)
    this.vfs = new Vfs(this.cm)
  }

  async ready (): Promise<void> {
    await this.cm.ready()
    await clearStaleMount(this.opts.mountDir)
    await mkdir(this.opts.mountDir, { recursive: true })
    this.mountDir = await realpath(this.opts.mountDir)
    this.fuse = await mount(this.vfs, this.mountDir)
    const hoardDb = new HoardDb(this.opts.cacheDir)
    this.hoardDb = hoardDb
    const walker = new HoardWalker(this.cm, this.vfs, hoardDb)
    this.walker = walker
    this.cm.onReconnected = () => { void walker.walk() }
    this.profiles = new ProfileDaemon(this.opts.profilesDir ?? defaultProfilesDir(), hoardDb, p => toMountPath(this.mountDir, p), () => { void walker.walk() })
    await this.profiles.ready()
    walker.start(this.opts.hoardIntervalMs ?? HOARD_WALK_INTERVAL_MS)
    this.control = new ControlServer(this.cm, this.vfs, this.mountDir, { db: hoardDb, walker, profiles: this.profiles })
    await this.control.listen()
    if (this.opts.metrics) {
      const served = await cacheMetrics(this.cm).serve(this.opts.metrics)
      this.metricsServer = served
      this.metricsAddress = served.address
    }
    log.info(`mounted at ${this.mountDir}; control socket ${this.control.socketPath}${this.metricsAddress ? `; metrics at http://${this.metricsAddress}/metrics` : ''}`)
  }

  close (): Promise<void> {
    this.closing ??= this.teardown()
    return this.closing
  }

  private async teardown (): Promise<void> {
    await this.metricsServer?.close()
    await this.control?.close().catch(err => log.warn(`control socket: ${err.message}`))
    this.walker?.close()
    await this.profiles?.close()
    await this.hoardDb?.close()
    if (this.fuse) await this.fuse.unmount().catch(err => log.warn(`unmount ${this.mountDir}: ${err.message}`))
    await this.cm.close()
  }
}

/**
 * A cache manager that died left its mount behind ("Transport endpoint is not connected"): detach it.
 * A stat of the mount point is not enough to tell: the kernel answers it from attributes it still
 * holds for a while after the daemon is gone. Opening the directory always asks the daemon.
 */
async function clearStaleMount (dir: string): Promise<void> {
  try {
    await (await opendir(dir)).close()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOTCONN') return
    log.warn(`${dir} is a dead mount of an earlier run; unmounting it`)
    await promisify(execFile)('fusermount', ['-uz', dir])
  }
}
