// Replicated volumes, run by hand: `node --import tsx bench/replication.ts [--stale 10000]`
// (as root, with /dev/fuse). One volume on one server and one on three (a fourth server
// keeps the location database): write+close of 64 MiB and of 1,000 small files, a cold
// read, beside local disk and a plain fuse-native passthrough in the same run; then the
// resolution throughput of a member that comes back to `--stale` objects it missed.
import { closeSync, openSync, writeSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Stack, addClient, afsOk, servers, startServer, tempDir } from '../tests/helpers/cell.ts'
import { MiB, dropCaches, passthrough, readAll, time, writeFileOf } from './baselines.ts'

const { values } = parseArgs({ options: { stale: { type: 'string', default: '10000' } } })
const STALE = Number(values.stale)
const SMALL = 1000

function smallFiles (dir: string): void {
  mkdirSync(dir, { recursive: true })
  const data = Buffer.alloc(4096, 0x61)
  for (let i = 0; i < SMALL; i++) {
    const fd = openSync(join(dir, `s${i}`), 'w')
    writeSync(fd, data)
    closeSync(fd)
  }
}

const stack = new Stack()
try {
  const [s0, ...members] = await servers(stack, 4)
  await afsOk(['vos', 'create', 'one', '--server', members[0].address])
  await afsOk(['vos', 'create', 'three', ...members.flatMap(s => ['--server', s.address])])
  const writer = await addClient(stack, [s0.address], { cacheSize: '4G', env: { AFS_LOG: 'warn' } })
  for (const v of ['one', 'three']) await afsOk(['fs', 'mkmount', join(writer.cellPath, v), v, '--cache', writer.cache])
  const local = await tempDir('afs-bench-local-')
  stack.defer(local)
  const pt = await passthrough(stack)
  const dirs = { one: join(writer.cellPath, 'one'), three: join(writer.cellPath, 'three'), local, passthrough: pt }

  const rows: Array<[string, Record<string, number>, string]> = []
  const big: Record<string, number> = {}
  for (const [k, d] of Object.entries(dirs)) big[k] = time(() => writeFileOf(join(d, 'w64'), 64 * MiB))
  rows.push(['write+close 64 MiB', big, 's'])
  const small: Record<string, number> = {}
  for (const [k, d] of Object.entries(dirs)) small[k] = time(() => smallFiles(join(d, 'small')))
  rows.push([`write+close ${SMALL} × 4 KiB`, small, 's'])
  // Cold reads: a client that never saw the files.
  const reader = await addClient(stack, [s0.address], { cacheSize: '4G', env: { AFS_LOG: 'warn' } })
  const cold: Record<string, number> = {}
  for (const k of ['one', 'three']) { dropCaches(); cold[k] = 64 / time(() => readAll(join(reader.cellPath, k, 'w64'))) }
  for (const k of ['local', 'passthrough']) { dropCaches(); cold[k] = 64 / time(() => readAll(join(dirs[k as 'local'], 'w64'))) }
  rows.push(['cold read 64 MiB', cold, 'MB/s'])

  console.log(`${'work'.padEnd(28)} ${'1 replica'.padStart(10)} ${'3 replicas'.padStart(11)} ${'local'.padStart(8)} ${'passthru'.padStart(9)}  unit   3÷1   1÷passthru`)
  for (const [work, r, unit] of rows) {
    const f = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(3)).padStart(unit === 's' ? 8 : 8)
    const slower = (a: number, b: number) => (unit === 's' ? a / b : b / a).toFixed(2)
    console.log(`${work.padEnd(28)} ${f(r.one).padStart(10)} ${f(r.three).padStart(11)} ${f(r.local)} ${f(r.passthrough).padStart(9)}  ${unit.padEnd(5)} ${slower(r.three, r.one).padStart(5)} ${slower(r.one, r.passthrough).padStart(8)}`)
  }

  // Resolution: the third member misses STALE new files, then comes back.
  const s3 = members[2]
  await s3.stop('SIGKILL')
  const staleDir = join(dirs.three, 'stale')
  mkdirSync(staleDir)
  const t0 = Date.now()
  for (let i = 0; i < STALE; i++) {
    const fd = openSync(join(staleDir, `f${i}`), 'w')
    writeSync(fd, `stale ${i}\n`)
    closeSync(fd)
  }
  console.error(`${STALE} files written with the third member down in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  const back = await startServer(s3.dataDir, 'test', s3.address, ['--vldb', s0.address])
  stack.push(() => back.stop())
  const started = Date.now()
  for (;;) {
    const x = JSON.parse(await afsOk(['vos', 'examine', 'three', '--server', s0.address, '--json'])) as { replicas: Array<{ reachable: boolean, pending: number | null }> }
    if (x.replicas.every(r => r.reachable && r.pending === 0)) break
    if (Date.now() - started > 30 * 60_000) throw new Error('resolution did not finish in 30 minutes')
    await new Promise(resolve => setTimeout(resolve, 500))
  }
  const seconds = (Date.now() - started) / 1000
  console.log(`resolution after a member returns: ${STALE + 1} stale objects in ${seconds.toFixed(1)} s (${((STALE + 1) / seconds).toFixed(0)} objects/s)`)
  if (readFileSync(join(staleDir, `f${STALE - 1}`), 'utf8') !== `stale ${STALE - 1}\n`) throw new Error('wrong contents after resolution')
} finally { await stack.unwind() }
