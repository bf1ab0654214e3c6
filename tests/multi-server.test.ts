// A cell of two servers: the first keeps the location database, the second joins with
// --vldb. Volumes live on either; clients that know only the first reach both.
import test from 'ava'
import { readFileSync, writeFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { Stack, addClient, afs, afsOk, eventually, rawConnection, servers, startServer, status, tempDir, type Server } from './helpers/cell.ts'

interface VolumeView { name: string, id: number, servers: string[] }
interface VolumeState { name: string, state: string, server: string }

async function twoServers (stack: Stack): Promise<{ s1: Server, s2: Server }> {
  const [s1, s2] = await servers(stack, 2)
  return { s1, s2 }
}

async function volumes (server: string): Promise<VolumeView[]> {
  return JSON.parse(await afsOk(['vos', 'list', '--server', server, '--json'])) as VolumeView[]
}

async function states (cache: string): Promise<Map<string, VolumeState>> {
  const s = JSON.parse(await afsOk(['status', '--cache', cache, '--json'])) as { volumes: VolumeState[] }
  return new Map(s.volumes.map(v => [v.name, v]))
}

test('a second server joins the cell through the first; a volume created on it is reached by clients that know only the first', async t => {
  const stack = new Stack()
  try {
    const { s1, s2 } = await twoServers(stack)
    t.regex(await afsOk(['vos', 'create', 'proj', '--server', s2.address]), /created volume proj .* on 127\.0\.0\.1:\d+/)
    // Either server answers location queries, from the one database.
    for (const via of [s1.address, s2.address]) {
      const list = await volumes(via)
      t.deepEqual(list.find(v => v.name === 'proj')?.servers, [s2.address])
      t.deepEqual(list.find(v => v.name === 'root.cell')?.servers, [s1.address])
    }
    // Two creates of one name on two servers: one of them is refused.
    const [x, y] = await Promise.all([afs(['vos', 'create', 'twice', '--server', s1.address]), afs(['vos', 'create', 'twice', '--server', s2.address])])
    t.deepEqual([x.code, y.code].sort(), [0, 1], `${x.stderr}${y.stderr}`)

    const a = await addClient(stack, [s1.address])
    const b = await addClient(stack, [s1.address])
    await afsOk(['fs', 'mkmount', join(a.cellPath, 'proj'), 'proj', '--cache', a.cache])
    mkdirSync(join(a.cellPath, 'proj', 'src'))
    writeFileSync(join(a.cellPath, 'proj', 'src', 'main.c'), 'int main () { return 0; }\n')
    t.is(readFileSync(join(b.cellPath, 'proj', 'src', 'main.c'), 'utf8'), 'int main () { return 0; }\n')
    const where = JSON.parse(await afsOk(['fs', 'whereis', join(b.cellPath, 'proj', 'src', 'main.c'), '--cache', b.cache, '--json'])) as { volume: string, servers: string[] }
    t.deepEqual(where, { ...where, volume: 'proj', servers: [s2.address] })
    t.is((await states(b.cache)).get('proj')?.server, s2.address)
    // Quotas are set on the volume's own server, whichever server the command asks.
    await afsOk(['vos', 'setquota', 'proj', '1M', '--server', s1.address])
    t.is(JSON.parse(await afsOk(['fs', 'listquota', join(a.cellPath, 'proj'), '--cache', a.cache, '--json'])).quota, 2 ** 20)
    // The second server's connections to the first (locations, tokens) never push each other out.
    t.notRegex(s1.stderr(), /server:\S+ said hello again/)

    // The first server dies: the volume on the second goes on being read and written.
    await s1.stop('SIGKILL')
    t.true(await eventually(async () => (await states(a.cache)).get('root.cell')?.state === 'disconnected', 15_000), 'root.cell disconnected')
    t.is((await states(a.cache)).get('proj')?.state, 'connected')
    writeFileSync(join(a.cellPath, 'proj', 'src', 'main.c'), 'int main () { return 1; }\n')
    t.is(readFileSync(join(b.cellPath, 'proj', 'src', 'main.c'), 'utf8'), 'int main () { return 1; }\n')
    t.is((await status(a)).counters.stores > 0, true)
  } finally { await stack.unwind() }
})

test('a server that comes back at another address is found there by the location database and the clients', async t => {
  const stack = new Stack()
  try {
    const { s1, s2 } = await twoServers(stack)
    await afsOk(['vos', 'create', 'moving', '--server', s2.address])
    const a = await addClient(stack, [s1.address])
    await afsOk(['fs', 'mkmount', join(a.cellPath, 'moving'), 'moving', '--cache', a.cache])
    writeFileSync(join(a.cellPath, 'moving', 'f'), 'before\n')

    await s2.stop()
    const s3 = await startServer(s2.dataDir, 'test', '127.0.0.1:0', ['--vldb', s1.address])
    stack.push(() => s3.stop())
    t.not(s3.address, s2.address)
    t.deepEqual((await volumes(s1.address)).find(v => v.name === 'moving')?.servers, [s3.address])
    // The client learns the new address by itself (its server was unreachable) and reconnects.
    t.true(await eventually(async () => (await states(a.cache)).get('moving')?.server === s3.address, 20_000), 'client followed the volume')
    t.true(await eventually(async () => (await states(a.cache)).get('moving')?.state === 'connected', 20_000))
    t.is(readFileSync(join(a.cellPath, 'moving', 'f'), 'utf8'), 'before\n')
    writeFileSync(join(a.cellPath, 'moving', 'f'), 'after\n')
    t.deepEqual(await volumes(s3.address).then(l => l.map(v => v.name).sort()), ['moving', 'root.cell'])
  } finally { await stack.unwind() }
})

test('a server refuses to join a location database of another cell, and bad addresses, with a clear error', async t => {
  const stack = new Stack()
  try {
    const s1 = await startServer()
    stack.defer(s1.dataDir)
    stack.push(() => s1.stop())
    const dir = await tempDir('afs-srv-')
    stack.defer(dir)
    // Without the cell's TLS directory, a server cannot join at all.
    const untrusted = await afs(['server', '--data', dir, '--listen', '127.0.0.1:0', '--cell', 'test', '--vldb', s1.address])
    t.is(untrusted.code, 1)
    t.regex(untrusted.stderr, /holds no cell CA .* needs the cell's TLS directory \(--tls DIR/)
    const other = await afs(['server', '--data', dir, '--listen', '127.0.0.1:0', '--cell', 'elsewhere', '--vldb', s1.address, '--tls', join(s1.dataDir, 'tls')])
    t.is(other.code, 1)
    t.regex(other.stderr, /belongs to cell test, not elsewhere/)
    t.is(other.stderr.trim().split('\n').length, 1, other.stderr)
    const bad = await afs(['server', '--data', dir, '--listen', '127.0.0.1:0', '--cell', 'test', '--vldb', 'nowhere'])
    t.is(bad.code, 2)
    t.regex(bad.stderr, /--vldb: not HOST:PORT/)
  } finally { await stack.unwind() }
})

test('a server whose location database is down starts all the same, serves its volumes, and registers once the database is back', async t => {
  const stack = new Stack()
  try {
    const { s1, s2 } = await twoServers(stack)
    await afsOk(['vos', 'create', 'alone', '--server', s2.address])
    const a = await addClient(stack, [s1.address])
    await afsOk(['fs', 'mkmount', join(a.cellPath, 'alone'), 'alone', '--cache', a.cache])
    writeFileSync(join(a.cellPath, 'alone', 'f'), 'one\n')
    await s1.stop()
    await s2.stop()
    const s3 = await startServer(s2.dataDir, 'test', '127.0.0.1:0', ['--vldb', s1.address])
    stack.push(() => s3.stop())
    t.regex(s3.stderr(), /location database at .* is unreachable/)
    const s4 = await startServer(s1.dataDir, 'test', s1.address)
    stack.push(() => s4.stop())
    t.true(await eventually(async () => (await volumes(s4.address)).find(v => v.name === 'alone')?.servers[0] === s3.address, 15_000), 'registered at its new address')
    t.true(await eventually(async () => (await states(a.cache)).get('alone')?.state === 'connected', 20_000))
    t.is(readFileSync(join(a.cellPath, 'alone', 'f'), 'utf8'), 'one\n')
  } finally { await stack.unwind() }
})

test('changes logged offline for a volume on the second server reach it after the cache manager restarts, and conflicts there are named by their whole path', async t => {
  const stack = new Stack()
  try {
    const { s1, s2 } = await twoServers(stack)
    await afsOk(['vos', 'create', 'logged', '--server', s2.address])
    const cache = await tempDir('afs-cache-')
    stack.defer(cache)
    const mount = await tempDir('afs-mnt-')
    let a = await addClient(stack, [s1.address], { cache, mount })
    const b = await addClient(stack, [s1.address])
    await afsOk(['fs', 'mkmount', join(a.cellPath, 'logged'), 'logged', '--cache', a.cache])
    writeFileSync(join(a.cellPath, 'logged', 'both'), 'base\n')
    t.is(readFileSync(join(b.cellPath, 'logged', 'both'), 'utf8'), 'base\n')
    await afsOk(['disconnect', '--cache', a.cache])
    writeFileSync(join(a.cellPath, 'logged', 'offline'), 'made offline\n')
    writeFileSync(join(a.cellPath, 'logged', 'both'), 'changed offline\n')
    writeFileSync(join(b.cellPath, 'logged', 'both'), 'changed on the server\n')
    await a.stop('SIGKILL')
    a = await addClient(stack, [s1.address], { cache, mount })
    t.true(await eventually(async () => (await states(a.cache)).get('logged')?.state === 'connected', 20_000))
    await afsOk(['sync', '--wait', '--cache', a.cache]).catch(() => '')
    t.is(readFileSync(join(b.cellPath, 'logged', 'offline'), 'utf8'), 'made offline\n')
    const conflicts = JSON.parse(await afsOk(['repair', 'list', '--json', '--cache', a.cache])) as Array<{ path: string, kind: string }>
    t.deepEqual(conflicts.map(c => [c.path, c.kind]), [['/test/logged/both', 'update/update']])
  } finally { await stack.unwind() }
})

test('vos move: a volume moves to another server while a client reads and writes throughout; afterwards the new server alone has every byte and the old one refuses it', async t => {
  const stack = new Stack()
  try {
    const [s0, s1, s2] = await servers(stack, 3)
    await afsOk(['vos', 'create', 'mv', '--server', s1.address])
    const a = await addClient(stack, [s0.address])
    await afsOk(['fs', 'mkmount', join(a.cellPath, 'mv'), 'mv', '--cache', a.cache])
    const dir = join(a.cellPath, 'mv')
    const want = new Map<string, string>()
    const write = (name: string, text: string) => { writeFileSync(join(dir, name), text); want.set(name, text) }
    mkdirSync(join(dir, 'sub'))
    writeFileSync(join(dir, 'sub', 'gone'), 'removed during the move\n')
    for (let i = 0; i < 40; i++) write(`before-${i}`, `before ${i}\n`.repeat(200))
    write('big', 'x'.repeat(8 << 20))
    const moving = afs(['vos', 'move', 'mv', '--to', s2.address, '--server', s0.address])
    let done = false
    void moving.then(() => { done = true })
    let n = 0
    while (!done || n < 5) {
      write(`during-${n}`, `during ${n}\n`)
      if (n === 2) rmSync(join(dir, 'sub', 'gone'))
      write('before-0', `rewritten ${n}\n`)
      t.is(readFileSync(join(dir, `before-${n % 40}`), 'utf8'), want.get(`before-${n % 40}`) ?? '')
      n++
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    const r = await moving
    t.is(r.code, 0, r.stderr)
    t.regex(r.stdout, /mv is on .* now \(epoch 1\)/)
    write('after', 'after the move\n')
    const where = JSON.parse(await afsOk(['fs', 'whereis', join(dir, 'after'), '--json', '--cache', a.cache])) as { servers: string[] }
    t.deepEqual(where.servers, [s2.address])
    // The old server refuses the volume: a client that still thinks it is there is sent on.
    const c = await rawConnection(s1.address)
    try {
      const e = await c.request('fetchStatus', { fid: { volume: (JSON.parse(await afsOk(['vos', 'examine', 'mv', '--server', s0.address, '--json'])) as { id: number }).id, vnode: 1, unique: 1 } }).catch((err: unknown) => err) as { code?: string }
      t.is(e.code, 'MOVED')
    } finally { c.close() }
    s1.proc.kill('SIGSTOP')
    try {
      const fresh = await addClient(stack, [s0.address], { env: { AFS_LOG: 'warn' } })
      const there = join(fresh.cellPath, 'mv')
      t.deepEqual(readdirSync(join(there, 'sub')), [], 'a removal during the move reached the new server')
      for (const [name, text] of want) t.is(readFileSync(join(there, name), 'utf8'), text, name)
      await fresh.stop()
    } finally { s1.proc.kill('SIGCONT') }
    // Bad input: an unknown volume, a replicated one, itself.
    t.regex((await afs(['vos', 'move', 'mv', '--to', s2.address, '--server', s0.address])).stderr, /is on .* already/)
    t.is((await afs(['vos', 'move', 'mv', '--server', s0.address])).code, 2)
  } finally { await stack.unwind() }
})
