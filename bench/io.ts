// I/O benchmark, run by hand: `npm run bench` (as root, with /dev/fuse).
// Compares afs-ts (cold fetches from a server on loopback, warm reads from the cache)
// with the same work on local disk and on a minimal fuse-native passthrough.
import { mkdirSync, openSync, closeSync, readSync, writeFileSync, readFileSync, statSync, readdirSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { Stack, cell, tempDir, status } from '../tests/helpers/cell.ts'
import { MiB, dropCaches, passthrough, readAll, time, writeFileOf } from './baselines.ts'

/** The source tree: files in directories of a few dozen, sizes spread as a source tree's are (many small, a few large). */
const TREE_FILES = 4442
const TREE_MB = 135

async function sourceTarball (stack: Stack): Promise<string> {
  const dir = await tempDir('afs-bench-tree-')
  stack.defer(dir)
  let seed = 42
  const random = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31 }
  const sizes = Array.from({ length: TREE_FILES }, () => Math.exp(random() * 12))
  const scale = TREE_MB * 1e6 / sizes.reduce((a, b) => a + b, 0)
  for (let i = 0; i < TREE_FILES; i++) {
    const sub = join(dir, 'src', `d${Math.floor(i / 40)}`, `e${i % 3}`)
    if (i % 40 < 3) mkdirSync(sub, { recursive: true })
    writeFileSync(join(sub, `f${i}.ts`), Buffer.alloc(Math.max(1, Math.round(sizes[i] * scale)), 0x61 + (i % 26)))
  }
  const tarball = join(dir, 'tree.tar')
  execFileSync('tar', ['cf', tarball, '-C', dir, 'src'])
  return tarball
}

interface Row { work: string, afs: number, local: number, pt: number, unit: string }
const rows: Row[] = []
const fmt = (n: number) => n >= 100 ? n.toFixed(0) : n.toFixed(2)

async function main (): Promise<void> {
  const stack = new Stack()
  try {
    const { clients: [writer, reader] } = await cell(stack, 2, { cacheSize: '4G' })
    const local = await tempDir('afs-bench-local-')
    stack.defer(local)
    const pt = await passthrough(stack)
    const dirs = { afs: reader.cellPath, local, pt }

    for (const mb of [1, 64, 256, 512]) {
      writeFileOf(join(writer.cellPath, `f${mb}`), mb * MiB)
      writeFileOf(join(local, `f${mb}`), mb * MiB)
      writeFileOf(join(pt, `f${mb}`), mb * MiB)
      const cold: Record<string, number> = {}
      const warm: Record<string, number> = {}
      for (const [k, d] of Object.entries(dirs)) {
        dropCaches()
        cold[k] = mb / time(() => readAll(join(d, `f${mb}`)))
        readAll(join(d, `f${mb}`))
        warm[k] = mb / time(() => readAll(join(d, `f${mb}`)))
      }
      rows.push({ work: `cold open+read ${mb} MiB`, afs: cold.afs, local: cold.local, pt: cold.pt, unit: 'MB/s' })
      rows.push({ work: `warm re-read ${mb} MiB`, afs: warm.afs, local: warm.local, pt: warm.pt, unit: 'MB/s' })
    }

    // Time to the first byte of a cold 256 MiB file (afs-ts reads it as it comes in).
    const first: Record<string, number> = {}
    const one = Buffer.alloc(1)
    for (const [k, d] of Object.entries(dirs)) {
      writeFileOf(join(k === 'afs' ? writer.cellPath : d, 'first'), 256 * MiB)
      statSync(join(d, 'first'))
      dropCaches()
      first[k] = 1000 * time(() => { const fd = openSync(join(d, 'first'), 'r'); readSync(fd, one, 0, 1, 0); closeSync(fd) })
    }
    rows.push({ work: 'cold open+read of the first byte of 256 MiB', afs: first.afs, local: first.local, pt: first.pt, unit: 'ms' })

    const write64: Record<string, number> = {}
    for (const [k, d] of Object.entries({ ...dirs, afs: writer.cellPath })) write64[k] = time(() => writeFileOf(join(d, 'w64'), 64 * MiB))
    rows.push({ work: 'write+close 64 MiB', afs: write64.afs, local: write64.local, pt: write64.pt, unit: 's' })

    const small: Record<string, number> = {}
    for (const [k, d] of Object.entries(dirs)) {
      writeFileSync(join(d, 'small'), Buffer.alloc(4096, 1))
      readFileSync(join(d, 'small'))
      const rpcs = k === 'afs' ? (await status(reader)).counters.rpcs : 0
      small[k] = 10_000 / time(() => { for (let i = 0; i < 10_000; i++) readFileSync(join(d, 'small')) })
      if (k === 'afs') console.error(`cached 4 KiB reads sent ${(await status(reader)).counters.rpcs - rpcs} RPCs`)
    }
    rows.push({ work: '10,000 open+read+close 4 KiB (cached)', afs: small.afs, local: small.local, pt: small.pt, unit: 'ops/s' })

    for (const d of Object.values(dirs)) mkdirSync(join(d, 'meta'))
    const meta: Record<string, Record<string, number>> = { create: {}, stat: {}, readdir: {}, unlink: {} }
    for (const [k, d] of Object.entries(dirs)) {
      const m = join(d, 'meta')
      meta.create[k] = 5000 / time(() => { for (let i = 0; i < 5000; i++) closeSync(openSync(join(m, `n${i}`), 'w')) })
      meta.stat[k] = 5000 / time(() => { for (let i = 0; i < 5000; i++) statSync(join(m, `n${i}`)) })
      meta.readdir[k] = 1 / time(() => readdirSync(m))
      meta.unlink[k] = 5000 / time(() => { for (let i = 0; i < 5000; i++) unlinkSync(join(m, `n${i}`)) })
    }
    for (const op of ['create', 'stat', 'unlink']) rows.push({ work: `${op} 5,000 files`, afs: meta[op].afs, local: meta[op].local, pt: meta[op].pt, unit: 'ops/s' })
    rows.push({ work: 'readdir of 5,000 entries', afs: meta.readdir.afs, local: meta.readdir.local, pt: meta.readdir.pt, unit: 'lists/s' })

    // A source tree as a tarball on local disk: unpacked, walked cold (by the other client) and removed.
    const tarball = await sourceTarball(stack)
    const tree: Record<string, Record<string, number>> = { x: {}, walk: {}, rm: {} }
    for (const [k, d] of Object.entries({ ...dirs, afs: writer.cellPath })) {
      tree.x[k] = time(() => execFileSync('tar', ['xf', tarball, '-C', d]))
      dropCaches()
      const walked = k === 'afs' ? reader.cellPath : d
      tree.walk[k] = time(() => execFileSync('sh', ['-c', 'find "$1" -type f -exec cat {} + > /dev/null', 'walk', join(walked, 'src')]))
      tree.rm[k] = time(() => execFileSync('rm', ['-rf', join(d, 'src')]))
    }
    rows.push({ work: `tar x of ${TREE_FILES} files (${TREE_MB} MB)`, afs: tree.x.afs, local: tree.x.local, pt: tree.x.pt, unit: 's' })
    rows.push({ work: 'find -exec cat of that tree, cold', afs: tree.walk.afs, local: tree.walk.local, pt: tree.walk.pt, unit: 's' })
    rows.push({ work: 'rm -rf of that tree', afs: tree.rm.afs, local: tree.rm.local, pt: tree.rm.pt, unit: 's' })

    console.log(`\n${'work'.padEnd(40)} ${'afs-ts'.padStart(10)} ${'local'.padStart(10)} ${'passthru'.padStart(10)}  unit    afs/local  afs/passthru`)
    for (const r of rows) {
      const inv = r.unit === 's' || r.unit === 'ms' // times: less is better
      const ratio = (x: number) => (inv ? x / r.afs : r.afs / x).toFixed(2)
      console.log(`${r.work.padEnd(40)} ${fmt(r.afs).padStart(10)} ${fmt(r.local).padStart(10)} ${fmt(r.pt).padStart(10)}  ${r.unit.padEnd(7)} ${ratio(r.local).padStart(9)} ${ratio(r.pt).padStart(13)}`)
    }
  } finally {
    await stack.unwind()
  }
}

await main()
