// Runs a cache manager: the core, its FUSE mount and its control socket. Tears down in
// reverse order of start: control socket, mount, core.
import { mkdir, realpath, stat } from 'node:fs/promises'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { makeLog } from '@afs-ts/common'
import { CacheManager, type CacheManagerOptions } from './cache-manager.ts'
import { Vfs } from './vfs.ts'
import { mount, type Mount } from './fuse/adapter.ts'
import { ControlServer } from './control.ts'

const log = makeLog('cache-manager')

export interface ClientOptions extends CacheManagerOptions { mountDir: string }

export class CacheManagerProcess {
  readonly cm: CacheManager
  readonly vfs: Vfs
  private fuse: Mount | null = null
  private control: ControlServer | null = null
  private closing: Promise<void> | null = null
  mountDir = ''

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
    this.control = new ControlServer(this.cm, this.vfs, this.mountDir)
    await this.control.listen()
    log.info(`mounted at ${this.mountDir}; control socket ${this.control.socketPath}`)
  }

  close (): Promise<void> {
    this.closing ??= this.teardown()
    return this.closing
  }

  private async teardown (): Promise<void> {
    await this.control?.close().catch(err => log.warn(`control socket: ${err.message}`))
    if (this.fuse) await this.fuse.unmount().catch(err => log.warn(`unmount ${this.mountDir}: ${err.message}`))
    await this.cm.close()
  }
}

/** A cache manager that died left its mount behind ("Transport endpoint is not connected"): detach it. */
async function clearStaleMount (dir: string): Promise<void> {
  try {
    await stat(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOTCONN') return
    log.warn(`${dir} is a dead mount of an earlier run; unmounting it`)
    await promisify(execFile)('fusermount', ['-uz', dir])
  }
}
