// Files bigger than the cache, run by hand (as root, with /dev/fuse):
//   node --import tsx bench/big-file.ts [--cache 1G] [--size 4G]
// One client copies a file of SIZE in with `cp` through a cache of CACHE; another, cold,
// with the same cache, copies it out (read in chunks). The same copies run on local disk
// and through a plain fuse-native passthrough in the same run. Prints MB/s and ratios,
// each cache manager's peak memory (VmHWM) and the most its cache held while it copied.
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { execFile } from 'node:child_process'
import { parseArgs, promisify } from 'node:util'
import { Stack, cell, status, tempDir, type Client } from '../tests/helpers/cell.ts'
import { MiB, dropCaches, passthrough, writeFileOf } from './baselines.ts'

const run = promisify(execFile)
const { values } = parseArgs({ options: { cache: { type: 'string', default: '1G' }, size: { type: 'string', default: '4G' } } })
const bytesOf = (s: string) => {
  const m = /^(\d+(?:\.\d+)?)([KMG]?)$/i.exec(s)
  if (!m) throw new Error(`not a size: ${s} (e.g. 4G)`)
  return Math.round(Number(m[1]) * 1024 ** ' KMG'.indexOf((m[2] || ' ').toUpperCase()))
}
const size = bytesOf(values.size)

/** What the bench reads of `afs status --json`. */
const cacheOf = async (c: Client) => (await status(c) as unknown as { cache: { usedBytes: number, limitBytes: number } }).cache

/** Runs `cp from to` while sampling `watched`'s cache use; seconds, and the most the cache held. */
async function copy (from: string, to: string, watched?: Client): Promise<{ s: number, peak: number }> {
  let peak = 0
  let sampling = true
  const sampler = (async () => {
    while (sampling && watched) {
      peak = Math.max(peak, (await cacheOf(watched)).usedBytes)
      await new Promise(resolve => setTimeout(resolve, 1000))
    }
  })()
  const t = process.hrtime.bigint()
  await run('cp', [from, to])
  const s = Number(process.hrtime.bigint() - t) / 1e9
  sampling = false
  await sampler
  return { s, peak }
}

/** A process's peak resident memory, in MiB. */
function peakRssMiB (c: Client): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${c.proc.pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : NaN
}

async function main (): Promise<void> {
  const stack = new Stack()
  try {
    const { clients: [writer, reader] } = await cell(stack, 2, { cacheSize: values.cache })
    const limit = (await cacheOf(writer)).limitBytes
    const local = await tempDir('afs-bench-local-')
    stack.defer(local)
    const pt = await passthrough(stack)
    const source = join(local, 'source')
    writeFileOf(source, size)
    console.error(`a file of ${(size / MiB).toFixed(0)} MiB through caches of ${(limit / MiB).toFixed(0)} MiB`)

    const mbps = (s: number) => size / MiB / s
    dropCaches()
    const inLocal = await copy(source, join(local, 'in'))
    const inPt = await copy(source, join(pt, 'in'))
    const inAfs = await copy(source, join(writer.cellPath, 'big'), writer)
    rmSync(join(local, 'in'))
    dropCaches()
    const outLocal = await copy(join(pt, 'in'), join(local, 'out-pt'))
    rmSync(join(local, 'out-pt'))
    dropCaches()
    const outAfs = await copy(join(reader.cellPath, 'big'), join(local, 'out-afs'), reader)
    rmSync(join(local, 'out-afs'))
    const counters = (await status(reader)).counters

    console.log(`\n${'work'.padEnd(34)} ${'afs-ts'.padStart(9)} ${'local'.padStart(9)} ${'passthru'.padStart(9)}  unit  afs/passthru`)
    console.log(`${'cp in'.padEnd(34)} ${mbps(inAfs.s).toFixed(0).padStart(9)} ${mbps(inLocal.s).toFixed(0).padStart(9)} ${mbps(inPt.s).toFixed(0).padStart(9)}  MB/s  ${(inPt.s / inAfs.s).toFixed(2).padStart(12)}`)
    console.log(`${'cp out (cold, in chunks)'.padEnd(34)} ${mbps(outAfs.s).toFixed(0).padStart(9)} ${'—'.padStart(9)} ${mbps(outLocal.s).toFixed(0).padStart(9)}  MB/s  ${(outLocal.s / outAfs.s).toFixed(2).padStart(12)}`)
    console.log(`\ncache limit ${(limit / MiB).toFixed(0)} MiB; most held while copying out: ${(outAfs.peak / MiB).toFixed(0)} MiB (while copying in, the file being written: ${(inAfs.peak / MiB).toFixed(0)} MiB)`)
    console.log(`chunks fetched: ${counters.chunkFetches}; peak memory of the cache managers: writer ${peakRssMiB(writer).toFixed(0)} MiB, reader ${peakRssMiB(reader).toFixed(0)} MiB`)
  } finally {
    await stack.unwind()
  }
}

await main()
