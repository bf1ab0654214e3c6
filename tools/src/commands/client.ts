// `afs client`: a cache manager mounting the cells of the given servers.
import { parseSize } from '@afs-ts/common'
import { CacheManagerProcess } from '@afs-ts/cache-manager'
import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { UsageError, EXIT_OK, hostPortArg, type Command } from '../args.ts'
import { parseCellsFile } from '../cells-file.ts'
import { untilSignal } from '../lifecycle.ts'

export const clientCommand: Command = {
  name: 'client',
  usage: 'afs client (--server HOST:PORT … | --cells FILE) --ca FILE --mount DIR --cache DIR [--cache-size SIZE] [--profiles DIR] [--hoard-interval SECONDS] [--metrics HOST:PORT]\n  (--ca: the cell CA\'s certificate, DATA/tls/ca.pem of its first server; more than one for more cells; a cells file may name it per cell)',
  options: { server: { type: 'string', multiple: true }, cells: { type: 'string' }, ca: { type: 'string', multiple: true }, mount: { type: 'string' }, cache: { type: 'string' }, 'cache-size': { type: 'string' }, profiles: { type: 'string' }, 'hoard-interval': { type: 'string' }, metrics: { type: 'string' } },
  async run (v) {
    const servers = (v.server as string[] | undefined) ?? []
    if ((servers.length === 0 && !v.cells) || !v.mount || !v.cache) throw new UsageError('--server (or --cells), --mount and --cache are required')
    for (const s of [...servers, ...(v.metrics !== undefined ? [v.metrics as string] : [])]) hostPortArg(s)
    const cacheBytes = sizeOption(v['cache-size'])
    // Each --server names one cell; a cells file (CellServDB format) lists each cell's servers.
    const cells = servers.map(s => [s])
    const cas = (v.ca as string[] | undefined) ?? []
    if (v.cells) {
      const listed = parseCellsFile(await readFile(v.cells as string, 'utf8'), v.cells as string)
      cells.push(...listed.map(c => c.servers))
      cas.push(...listed.flatMap(c => c.ca ? [resolve(dirname(v.cells as string), c.ca)] : []))
    }
    if (cas.length === 0) throw new UsageError('--ca FILE is required: the cell CA\'s certificate (DATA/tls/ca.pem on the cell\'s first server), or a ca line in the cells file')
    const trust = { ca: await Promise.all(cas.map(async f => await readCa(f))) }
    const interval = v['hoard-interval'] === undefined ? undefined : Number(v['hoard-interval'])
    if (interval !== undefined && !(interval > 0)) throw new UsageError(`--hoard-interval must be a number of seconds, not ${v['hoard-interval']}`)
    const proc = new CacheManagerProcess({
      cacheDir: v.cache as string, mountDir: v.mount as string, cells, trust, cacheBytes,
      profilesDir: v.profiles as string | undefined, hoardIntervalMs: interval === undefined ? undefined : interval * 1000, metrics: v.metrics as string | undefined,
    })
    await runClient(proc)
    return EXIT_OK
  },
}

/** A CA certificate file (PEM), checked for being one. */
export async function readCa (file: string): Promise<string> {
  let text
  try { text = await readFile(file, 'utf8') } catch (err) { throw new UsageError(`--ca ${file}: ${(err as Error).message}`) }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) throw new UsageError(`--ca ${file}: no PEM certificate in it`)
  return text
}

export function sizeOption (v: unknown): number | undefined {
  if (v === undefined) return undefined
  try { return parseSize(v as string) } catch (err) { throw new UsageError((err as Error).message) }
}

export async function runClient (proc: CacheManagerProcess, afterReady?: () => void): Promise<void> {
  let stopping: Promise<void> | null = null
  const stop = () => { stopping ??= proc.close(); return stopping }
  const signal = untilSignal()
  try {
    await Promise.race([proc.ready(), signal.then(() => { throw new Error('interrupted') })])
  } catch (err) {
    await stop()
    throw err
  }
  process.stdout.write(JSON.stringify({ ready: 'client', mount: proc.mountDir, cache: proc.opts.cacheDir, cells: [...proc.cm.cells.keys()], ...(proc.metricsAddress ? { metrics: proc.metricsAddress } : {}) }) + '\n')
  afterReady?.()
  await signal
  await stop()
}
