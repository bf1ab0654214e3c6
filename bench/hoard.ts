// Hoard walk benchmark, run by hand: `node --import tsx bench/hoard.ts` (as root, with /dev/fuse).
// A tree of FILES files totalling BYTES (default 10,000 files, 1 GiB) written by one client,
// hoarded d+ by another: a cold walk (everything fetched) and a warm walk (nothing changed).
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { controlCall } from '@afs-ts/tools'
import { Stack, cell, status } from '../tests/helpers/cell.ts'

const FILES = Number(process.env.FILES ?? 10_000)
const BYTES = Number(process.env.BYTES ?? 2 ** 30)
const PER_DIR = 100

interface Report { ms: number, objects: number, fetched: number, bytes: number, failures: unknown[] }

async function main (): Promise<void> {
  const stack = new Stack()
  try {
    const { clients: [writer, walker] } = await cell(stack, 2, { cacheSize: '4G', hoardInterval: 86_400 })
    const size = Math.floor(BYTES / FILES)
    const data = Buffer.alloc(size, 0x68)
    const t0 = Date.now()
    for (let i = 0; i < FILES; i++) {
      const dir = join(writer.cellPath, 'tree', `d${Math.floor(i / PER_DIR)}`)
      if (i % PER_DIR === 0) mkdirSync(dir, { recursive: true })
      writeFileSync(join(dir, `f${i}`), data)
    }
    console.log(`wrote ${FILES} files of ${size} B in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    await controlCall(walker.cache, 'hoardAdd', { path: join(walker.cellPath, 'tree'), priority: '600:d+' })
    for (const kind of ['cold', 'warm']) {
      const before = (await status(walker)).counters
      const r = await controlCall(walker.cache, 'hoardWalk') as Report
      const after = (await status(walker)).counters
      const s = r.ms / 1000
      console.log(`${kind} walk: ${r.objects} objects, ${r.fetched} fetched, ${(r.bytes / 2 ** 20).toFixed(0)} MiB in ${s.toFixed(1)} s = ` +
        `${(r.objects / s).toFixed(0)} objects/s, ${(r.bytes / 2 ** 20 / s).toFixed(1)} MB/s; ${after.rpcs - before.rpcs} RPCs, ${after.fetches - before.fetches} data fetches, ${r.failures.length} missing`)
    }
  } finally { await stack.unwind() }
}

await main()
