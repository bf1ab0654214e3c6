// CML benchmark, run by hand: `node --import tsx bench/cml.ts` (as root, with /dev/fuse).
// 10,000 small-file creates+writes through the mount offline (appended to the CML) versus
// connected, then the reintegration throughput of the resulting log.
import { writeFileSync, mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { controlCall } from '@afs-ts/tools'
import { Stack, afs, cell, eventually } from '../tests/helpers/cell.ts'

const N = Number(process.env.N ?? 10_000)
const SIZE = Number(process.env.SIZE ?? 1024)

function createAll (dir: string): number {
  const data = Buffer.alloc(SIZE, 0x61)
  const t = process.hrtime.bigint()
  for (let i = 0; i < N; i++) writeFileSync(join(dir, `f${i}`), data)
  return Number(process.hrtime.bigint() - t) / 1e9
}

async function main (): Promise<void> {
  const stack = new Stack()
  try {
    const { clients: [c] } = await cell(stack, 1, process.env.PROF ? { env: { AFS_NODE_ARGS: '--cpu-prof --cpu-prof-dir=/tmp/prof' } } : {})
    mkdirSync(join(c.cellPath, 'online'))
    mkdirSync(join(c.cellPath, 'offline'))
    readdirSync(join(c.cellPath, 'offline'))
    const connected = createAll(join(c.cellPath, 'online'))
    // Write-back: the same work logged and trickled to the server in the background.
    mkdirSync(join(c.cellPath, 'wb'))
    readdirSync(join(c.cellPath, 'wb'))
    await afs(['disconnect', '--write-back', '--age', '1', '--cache', c.cache])
    const wb = createAll(join(c.cellPath, 'wb'))
    const lastChange = Date.now()
    type Left = { cml: { records: number } }
    await eventually(async () => ((await controlCall(c.cache, 'status')) as unknown as Left).cml.records === 0, 600_000)
    console.log(`${N} creates+writes of ${SIZE} B in write-back mode: ${(N / wb).toFixed(0)} ops/s (write-back/connected ${(connected / wb).toFixed(2)}x); on the server ${((Date.now() - lastChange) / 1000).toFixed(1)} s after the last change`)
    await afs(['reconnect', '--cache', c.cache])
    await afs(['disconnect', '--cache', c.cache])
    const offline = createAll(join(c.cellPath, 'offline'))
    const s = await controlCall(c.cache, 'status') as unknown as { cml: { records: number, bytes: number } }
    console.log(`${N} creates+writes of ${SIZE} B: connected ${(N / connected).toFixed(0)} ops/s, offline ${(N / offline).toFixed(0)} ops/s (offline/connected ${(connected / offline).toFixed(2)}x); CML ${s.cml.records} records, ${s.cml.bytes} bytes`)
    const t = Date.now()
    await afs(['reconnect', '--cache', c.cache])
    type Report = { cml: { records: number }, reintegration: { last: Array<{ at: number }> } }
    // Poll through the control socket, not `afs status`: a process per poll would eat the CPU being measured.
    await eventually(async () => { const r = (await controlCall(c.cache, 'status')) as unknown as Report; return r.cml.records === 0 && r.reintegration.last.length > 0 }, 600_000)
    const end = Date.now()
    const started = ((await controlCall(c.cache, 'status')) as unknown as Report).reintegration.last[0].at
    const secs = (end - started) / 1000
    console.log(`reintegration of ${s.cml.records} records (${(s.cml.bytes / 2 ** 20).toFixed(1)} MiB): ${secs.toFixed(1)} s replaying, ${(s.cml.records / secs).toFixed(0)} records/s, ${(s.cml.bytes / 2 ** 20 / secs).toFixed(2)} MiB/s; ${((started - t) / 1000).toFixed(1)} s from \`afs reconnect\` to the first record (reconnection probes)`)
  } finally { await stack.unwind() }
}

await main()
