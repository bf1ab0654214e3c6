// `afs client`: a cache manager mounting the cells of the given servers.
import { parseSize } from '@afs-ts/common'
import { CacheManagerProcess } from '@afs-ts/cache-manager'
import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { act, collect, secondsArg, UsageError, EXIT_OK, hostPortArg, type Define } from '../args.ts'
import { parseCellsFile } from '../cells-file.ts'
import { untilSignal } from '../lifecycle.ts'

export const defineClient: Define = cmd => {
  cmd.option('--server <host:port>', 'a server of a cell to mount (once per cell)', collect)
    .option('--cells <file>', 'a cells file (CellServDB format): each cell\'s servers, and its CA on a ca line')
    .option('--ca <file>', 'the cell CA\'s certificate (DATA/tls/ca.pem of its first server); once per cell', collect)
    .requiredOption('--mount <dir>', 'where to mount (the cells appear under it)')
    .requiredOption('--cache <dir>', 'the cache directory: containers, metadata, the log')
    .option('--cache-size <size>', 'how much disk the cache may use (e.g. 4G)')
    .option('--profiles <dir>', 'a directory of hoard profiles, applied live')
    .option('--hoard-interval <seconds>', 'how often the hoard walk runs')
    .option('--metrics <host:port>', 'serve Prometheus metrics there')
  act<{ server?: string[], cells?: string, ca?: string[], mount: string, cache: string, cacheSize?: string, profiles?: string, hoardInterval?: string, metrics?: string }>(cmd, async (_args, v) => {
    const servers = v.server ?? []
    if (servers.length === 0 && !v.cells) throw new UsageError('--server (or --cells) is required')
    for (const s of [...servers, ...(v.metrics !== undefined ? [v.metrics] : [])]) hostPortArg(s)
    const cacheBytes = sizeOption(v.cacheSize)
    // Each --server names one cell; a cells file (CellServDB format) lists each cell's servers.
    const cells = servers.map(s => [s])
    const cas = v.ca ?? []
    if (v.cells) {
      const listed = parseCellsFile(await readFile(v.cells, 'utf8'), v.cells)
      cells.push(...listed.map(c => c.servers))
      cas.push(...listed.flatMap(c => c.ca ? [resolve(dirname(v.cells!), c.ca)] : []))
    }
    if (cas.length === 0) throw new UsageError('--ca FILE is required: the cell CA\'s certificate (DATA/tls/ca.pem on the cell\'s first server), or a ca line in the cells file')
    const trust = { ca: await Promise.all(cas.map(async f => await readCa(f))) }
    const interval = secondsArg(v.hoardInterval, '--hoard-interval', 0)
    if (interval === 0) throw new UsageError('--hoard-interval 0: the walk needs some seconds between runs')
    const proc = new CacheManagerProcess({
      cacheDir: v.cache, mountDir: v.mount, cells, trust, cacheBytes,
      profilesDir: v.profiles, hoardIntervalMs: interval === undefined ? undefined : interval * 1000, metrics: v.metrics,
    })
    await runClient(proc)
    return EXIT_OK
  })
}

/** A CA certificate file (PEM), checked for being one. */
export async function readCa (file: string): Promise<string> {
  let text
  try { text = await readFile(file, 'utf8') } catch (err) { throw new UsageError(`--ca ${file}: ${(err as Error).message}`) }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) throw new UsageError(`--ca ${file}: no PEM certificate in it`)
  return text
}

export function sizeOption (v: string | undefined): number | undefined {
  if (v === undefined) return undefined
  try { return parseSize(v) } catch (err) { throw new UsageError((err as Error).message) }
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
