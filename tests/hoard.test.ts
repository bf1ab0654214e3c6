// Hoarding through real mounts: d+ entries pick up new files, hoarded files survive the
// server's death, profiles in the watched directory apply live and all-or-nothing, and
// eviction under a tight cache keeps what matters most.
import test from 'ava'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { controlCall } from '@afs-ts/tools'
import { Stack, addClient, afs, cell, eventually, startServer, tempDir } from './helpers/cell.ts'

interface Entry { path: string, priority: number, expansion: string, source: string }
const entries = async (cache: string) => (await controlCall(cache, 'hoardList') as { entries: Entry[], profileErrors: string[] })
const missingPaths = async (cache: string) => (await controlCall(cache, 'hoardVerify') as Array<{ path: string }>).map(m => m.path)

test.serial('a d+ entry picks up files created later by another client; hoarded files read offline, unhoarded evicted ones fail clearly', async t => {
  const stack = new Stack()
  try {
    const server = await startServer()
    stack.defer(server.dataDir)
    const box = { server }
    stack.push(() => box.server.stop())
    const b = await addClient(stack, [server.address])
    mkdirSync(join(b.cellPath, 'proj', 'src'), { recursive: true })
    writeFileSync(join(b.cellPath, 'proj', 'README'), 'readme\n')
    writeFileSync(join(b.cellPath, 'other.txt'), 'not hoarded\n')
    const a = await addClient(stack, [server.address])
    let r = await afs(['hoard', 'add', join(a.cellPath, 'proj'), '600:d+', '--cache', a.cache])
    t.is(r.code, 0, r.stderr)
    t.deepEqual((await entries(a.cache)).entries.map(e => [e.path, e.priority, e.expansion]), [[join(a.cellPath, 'proj'), 600, 'd+']])
    // Created after the entry, by someone else, deep down.
    writeFileSync(join(b.cellPath, 'proj', 'src', 'main.c'), 'int main;\n')
    mkdirSync(join(b.cellPath, 'proj', 'src', 'lib'))
    writeFileSync(join(b.cellPath, 'proj', 'src', 'lib', 'util.c'), 'util\n')
    r = await afs(['hoard', 'walk', '--json', '--cache', a.cache])
    t.is(r.code, 0, r.stderr)
    const report = JSON.parse(r.stdout)
    t.is(report.objects, 6, 'proj, README, src, main.c, lib, util.c')
    t.deepEqual(report.failures, [])
    r = await afs(['hoard', 'verify', '--cache', a.cache])
    t.is(r.code, 0, r.stdout)
    readFileSync(join(a.cellPath, 'other.txt'))
    t.true(await eventually(async () => (await controlCall(a.cache, 'flush', { path: join(a.cellPath, 'other.txt') }) as { evicted: boolean }).evicted))
    box.server.proc.kill('SIGKILL')
    await box.server.stop()
    t.is(readFileSync(join(a.cellPath, 'proj', 'src', 'lib', 'util.c'), 'utf8'), 'util\n')
    t.is(readFileSync(join(a.cellPath, 'proj', 'src', 'main.c'), 'utf8'), 'int main;\n')
    t.is(readFileSync(join(a.cellPath, 'proj', 'README'), 'utf8'), 'readme\n')
    t.is((t.throws(() => readFileSync(join(a.cellPath, 'other.txt'))) as NodeJS.ErrnoException).code, 'ETIMEDOUT')
    r = await afs(['hoard', 'suggest', '--cache', a.cache])
    t.true(r.stdout.includes(`add ${join(a.cellPath, 'other.txt')} 500`), r.stdout)
  } finally { await stack.unwind() }
})

test.serial('profiles in the watched directory apply live; an edit replaces; a bad line applies nothing; a deleted profile withdraws', async t => {
  const stack = new Stack()
  try {
    const profiles = await tempDir('afs-profiles-')
    stack.defer(profiles)
    const { clients: [a] } = await cell(stack, 1, { profiles })
    mkdirSync(join(a.cellPath, 'docs'))
    writeFileSync(join(a.cellPath, 'docs', 'x'), 'x')
    const file = join(profiles, 'work')
    writeFileSync(file, `# my work\nadd ${join(a.cellPath, 'docs')} 700:d+\na ${join(a.cellPath, 'notes')}\n`)
    t.true(await eventually(async () => (await entries(a.cache)).entries.length === 2, 10_000), 'picked up without a restart')
    writeFileSync(file, `add ${join(a.cellPath, 'docs')} 300:c\n`)
    t.true(await eventually(async () => { const e = (await entries(a.cache)).entries; return e.length === 1 && e[0].priority === 300 && e[0].expansion === 'c' }, 10_000), 'the edit replaced the entries')
    writeFileSync(file, `add ${join(a.cellPath, 'docs')} 900\nfrobnicate /x\nadd /not/under/the/mount 5\n`)
    t.true(await eventually(async () => (await entries(a.cache)).profileErrors.length === 1, 10_000))
    const list = await entries(a.cache)
    t.regex(list.profileErrors[0], /line 2: unknown command 'frobnicate'.*line 3: .*not under the mount/)
    t.deepEqual(list.entries.map(e => e.priority), [300], 'nothing of the bad profile applied')
    rmSync(file)
    t.true(await eventually(async () => (await entries(a.cache)).entries.length === 0, 10_000), 'withdrawn')
    const bad = join(profiles, '..', `bad-${process.pid}`)
    writeFileSync(bad, 'add\n')
    const r = await afs(['hoard', 'load', bad, '--cache', a.cache])
    t.is(r.code, 1)
    t.regex(r.stderr, /line 1: 'add' needs a path/)
    rmSync(bad)
  } finally { await stack.unwind() }
})

test.serial('under a tight cache, high-priority hoarded files stay while low-priority and unhoarded ones go', async t => {
  const stack = new Stack()
  try {
    const { clients: [w, a] } = await cell(stack, 2, { cacheSize: '6M' })
    const mb = (n: number, fill: number) => Buffer.alloc(n * 1024 * 1024, fill)
    mkdirSync(join(w.cellPath, 'high'))
    mkdirSync(join(w.cellPath, 'low'))
    for (let i = 0; i < 2; i++) writeFileSync(join(w.cellPath, 'high', `h${i}`), mb(2, 1))
    for (let i = 0; i < 2; i++) writeFileSync(join(w.cellPath, 'low', `l${i}`), mb(2, 2))
    writeFileSync(join(w.cellPath, 'plain'), mb(1, 3))
    await controlCall(a.cache, 'hoardAdd', { path: join(a.cellPath, 'high'), priority: '900:d+' })
    await controlCall(a.cache, 'hoardAdd', { path: join(a.cellPath, 'low'), priority: '100:d+' })
    // 8 MiB hoarded, 6 MiB of cache: the high entry is fetched first; low files evict each other.
    const report = await controlCall(a.cache, 'hoardWalk') as { objects: number }
    t.is(report.objects, 6)
    const missing = await missingPaths(a.cache)
    t.deepEqual(missing.filter(p => p.includes('/high/')), [], 'high-priority files stay')
    t.is(missing.filter(p => p.includes('/low/')).length, 1, 'one low-priority file had to go')
    const verify = await afs(['hoard', 'verify', '--cache', a.cache])
    t.is(verify.code, 1)
    t.regex(verify.stdout, /low\/l\d/)
    // An unhoarded file read now evicts a low-priority hoarded one, never a high one.
    readFileSync(join(a.cellPath, 'plain'))
    t.deepEqual((await missingPaths(a.cache)).filter(p => p.includes('/high/')), [])
    const s = await controlCall(a.cache, 'status') as { cache: { usedBytes: number, limitBytes: number } }
    t.true(s.cache.usedBytes <= s.cache.limitBytes)
  } finally { await stack.unwind() }
})

test.serial('a hoarded file too big to read whole otherwise (over a quarter of the cache) is pinned whole and read whole while disconnected', async t => {
  const stack = new Stack()
  try {
    const { clients: [w, a] } = await cell(stack, 2, { cacheSize: '8M' })
    const big = Buffer.alloc(5 * 1024 * 1024 + 99)
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i)
    writeFileSync(join(w.cellPath, 'movie'), big)
    await controlCall(a.cache, 'hoardAdd', { path: join(a.cellPath, 'movie'), priority: '600' })
    await controlCall(a.cache, 'hoardWalk')
    t.deepEqual(await missingPaths(a.cache), [])
    const s = await controlCall(a.cache, 'status') as { cache: { chunks: { chunks: number } }, counters: { chunkFetches: number } }
    t.is(s.counters.chunkFetches, 0, 'fetched whole, not in chunks')
    await controlCall(a.cache, 'disconnect', { writeBack: false })
    t.true(readFileSync(join(a.cellPath, 'movie')).equals(big), 'read whole from its container while disconnected')
  } finally { await stack.unwind() }
})

test.serial('a hoard walk runs by itself after reconnection, and an interrupted walk says so', async t => {
  const stack = new Stack()
  try {
    const { clients: [a, b] } = await cell(stack, 2)
    mkdirSync(join(b.cellPath, 'papers'))
    for (let i = 0; i < 40; i++) writeFileSync(join(b.cellPath, 'papers', `p${i}`), Buffer.alloc(256 * 1024, i))
    await controlCall(a.cache, 'hoardAdd', { path: join(a.cellPath, 'papers'), priority: '800:d+' })
    // Interrupted: the walk stops early and reports it.
    const walking = controlCall(a.cache, 'hoardWalk') as Promise<{ interrupted: boolean, objects: number }>
    await controlCall(a.cache, 'hoardCancel')
    const cut = await walking
    t.true(cut.interrupted ? cut.objects < 41 : cut.objects === 41, 'an interrupted walk stops short; a finished one saw everything')
    await controlCall(a.cache, 'hoardWalk')
    t.deepEqual(await missingPaths(a.cache), [])
    // Offline, a new paper appears on the server; reconnecting walks and fetches it unasked.
    await controlCall(a.cache, 'disconnect', { writeBack: false })
    writeFileSync(join(b.cellPath, 'papers', 'late'), 'written while a was away\n')
    await controlCall(a.cache, 'reconnect')
    t.true(await eventually(async () => {
      const s = await controlCall(a.cache, 'status') as { volumes: Array<{ state: string }> }
      return s.volumes.every(v => v.state === 'connected') && (await missingPaths(a.cache)).length === 0 &&
        (await controlCall(a.cache, 'hoardProgress') as { last: { objects: number } | null }).last?.objects === 42
    }, 20_000), 'the walk after reconnection found and fetched the new file')
  } finally { await stack.unwind() }
})

test.serial('a long --json answer reaches a pipe whole (the CLI drains its output before exiting)', async t => {
  const stack = new Stack()
  try {
    const { clients: [a] } = await cell(stack, 1)
    const profile = join(a.cache, 'many.hoard')
    writeFileSync(profile, Array.from({ length: 5000 }, (_, i) => `add ${join(a.cellPath, 'projects', `p${i}`)} 500:d+`).join('\n') + '\n')
    t.is((await afs(['hoard', 'load', profile, '--cache', a.cache])).code, 0)
    const r = await afs(['hoard', 'list', '--json', '--cache', a.cache])
    t.true(r.stdout.length > 500_000, `${r.stdout.length} bytes`)
    t.is((JSON.parse(r.stdout) as { entries: unknown[] }).entries.length, 5000)
  } finally { await stack.unwind() }
})
