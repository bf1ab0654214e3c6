// A cell whose location database is in etcd: real etcd processes (one, or a cluster of
// three) on loopback ports, file servers that keep volume locations there and list
// themselves under leases, clients that only ever talk to the file servers.
import test from 'ava'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Stack, addClient, afs, afsOk, eventually, rawConnection, startServer, type Server } from './helpers/cell.ts'
import { healthy, startEtcd } from './helpers/etcd.ts'

interface Listed { id: string, address: string, since: number }
const TTL = '3'

async function listaddrs (via: Server): Promise<string[]> {
  return (JSON.parse(await afsOk(['vos', 'listaddrs', '--server', via.address, '--json'])) as Listed[]).map(s => s.address).sort()
}

async function etcdServers (stack: Stack, url: string, n: number): Promise<Server[]> {
  const out: Server[] = []
  for (let i = 0; i < n; i++) {
    const s = await startServer(undefined, 'test', '127.0.0.1:0', ['--vldb', url, '--lease-ttl', TTL])
    stack.defer(s.dataDir)
    stack.push(async () => { s.proc.kill('SIGCONT'); await s.stop() })
    out.push(s)
  }
  return out
}

test.serial('three servers on one etcd: a volume made through one is found through another, by a client of that one; concurrent creates never share an id or a name', async t => {
  const stack = new Stack()
  try {
    const etcd = await startEtcd(stack)
    const [s1, s2, s3] = await etcdServers(stack, etcd.url, 3)
    t.deepEqual(await listaddrs(s2), [s1.address, s2.address, s3.address].sort())
    t.regex(await afsOk(['vos', 'create', 'onthree', '--server', s3.address]), /created volume onthree/)
    // A client that knows only s1 reaches the volume kept on s3.
    const a = await addClient(stack, [s1.address])
    await afsOk(['fs', 'mkmount', join(a.cellPath, 'onthree'), 'onthree', '--cache', a.cache])
    writeFileSync(join(a.cellPath, 'onthree', 'f'), 'through etcd\n')
    t.is(readFileSync(join(a.cellPath, 'onthree', 'f'), 'utf8'), 'through etcd\n')
    const where = JSON.parse(await afsOk(['fs', 'whereis', join(a.cellPath, 'onthree', 'f'), '--json', '--cache', a.cache])) as { servers: string[] }
    t.deepEqual(where.servers, [s3.address])
    // Creates at once through different servers: each name once, every id different.
    const made = await Promise.all(Array.from({ length: 12 }, (_, i) => afs(['vos', 'create', `v${i % 6}`, '--server', [s1, s2, s3][i % 3].address])))
    t.is(made.filter(r => r.code === 0).length, 6, made.map(r => r.stderr).join(''))
    t.true(made.filter(r => r.code !== 0).every(r => /exists/.test(r.stderr)), made.map(r => r.stderr).join(''))
    const list = JSON.parse(await afsOk(['vos', 'list', '--server', s2.address, '--json'])) as Array<{ id: number, name: string }>
    t.is(new Set(list.map(v => v.id)).size, list.length, 'no id twice')
    t.deepEqual(list.map(v => v.name).sort(), ['onthree', 'root.cell', 'v0', 'v1', 'v2', 'v3', 'v4', 'v5'])
    // The protection database is in etcd too: a user made through one server logs in through another.
    const pw = join(s1.dataDir, 'erin.pw')
    writeFileSync(pw, 'erin-secret-1\n')
    await afsOk(['pts', 'createuser', 'erin', '--password-file', pw, '--server', s1.address])
    const login = await afs(['login', 'erin', '--password-file', pw, '--cache', a.cache, '--server', s3.address], { env: { AFS_LOCALAUTH: '' } })
    t.is(login.code, 0, login.stderr)
    t.regex(login.stdout, /erin has a token for cell test/)
    const admins = JSON.parse(await afsOk(['pts', 'membership', 'system:administrators', '--json', '--server', s2.address])) as Array<{ name: string }>
    t.deepEqual(admins.map(x => x.name), ['admin'], 'one admin, made by whichever server came first')
  } finally { await stack.unwind() }
})

test.serial('a server SIGKILLed leaves the live list when its lease expires, and is listed again at its new address after a restart', async t => {
  const stack = new Stack()
  try {
    const etcd = await startEtcd(stack)
    const [s1, s2] = await etcdServers(stack, etcd.url, 2)
    await afsOk(['vos', 'create', 'moving', '--server', s2.address])
    // One of them is the cell's leader; the other takes over when it dies.
    const leaders = async (via: Server) => (JSON.parse(await afsOk(['vos', 'listaddrs', '--server', via.address, '--json'])) as Array<Listed & { leader?: boolean }>).filter(s => s.leader).map(s => s.address)
    t.true(await eventually(async () => (await leaders(s1)).length === 1, 10_000), 'one leader')
    await s2.stop('SIGKILL')
    const died = Date.now()
    t.true(await eventually(async () => (await listaddrs(s1)).length === 1, 15_000), 'gone from the list')
    t.true(Date.now() - died < (Number(TTL) + 5) * 1000, `within the lease time (${Date.now() - died} ms)`)
    t.true(await eventually(async () => (await leaders(s1)).join() === s1.address, 15_000), 'the live server leads')
    const again = await startServer(s2.dataDir, 'test', '127.0.0.1:0', ['--vldb', etcd.url, '--lease-ttl', TTL])
    stack.push(() => again.stop())
    t.not(again.address, s2.address)
    t.deepEqual(await listaddrs(s1), [s1.address, again.address].sort())
    const e = JSON.parse(await afsOk(['vos', 'examine', 'moving', '--server', s1.address, '--json'])) as { replicas: Array<{ server: string }> }
    t.deepEqual(e.replicas.map(r => r.server), [again.address], 'its volume follows it to the new address')
    // The leader killed: the other is elected once its lease runs out.
    await s1.stop('SIGKILL')
    t.true(await eventually(async () => (await leaders(again)).join() === again.address, 20_000), 'a new leader')
  } finally { await stack.unwind() }
})

test.serial('etcd unreachable: located volumes keep working, new lookups and admin commands fail fast and clearly; all recovers when etcd is back', async t => {
  const stack = new Stack()
  try {
    const etcd = await startEtcd(stack)
    const [s1] = await etcdServers(stack, etcd.url, 1)
    await afsOk(['vos', 'create', 'kept', '--server', s1.address])
    const a = await addClient(stack, [s1.address])
    await afsOk(['fs', 'mkmount', join(a.cellPath, 'kept'), 'kept', '--cache', a.cache])
    writeFileSync(join(a.cellPath, 'kept', 'before'), 'etcd up\n')
    await etcd.members[0].stop('SIGKILL')
    writeFileSync(join(a.cellPath, 'kept', 'during'), 'etcd down\n')
    t.is(readFileSync(join(a.cellPath, 'kept', 'during'), 'utf8'), 'etcd down\n', 'a located volume keeps working')
    const started = Date.now()
    const r = await afs(['vos', 'create', 'new-while-down', '--server', s1.address])
    t.is(r.code, 1)
    t.regex(r.stderr, /location database in etcd .* is unreachable/)
    t.true(Date.now() - started < 15_000, `fails fast (${Date.now() - started} ms)`)
    await etcd.members[0].start()
    await healthy(etcd.members)
    let last = ''
    t.true(await eventually(async () => { const x = await afs(['vos', 'create', 'after', '--server', s1.address]); last = x.stderr; return x.code === 0 }, 20_000), `admin commands work again: ${last}`)
    t.true((await listaddrs(s1)).includes(s1.address), 'the server is listed again')
  } finally { await stack.unwind() }
})

test.serial('a three-member etcd cluster that loses one member goes on', async t => {
  const stack = new Stack()
  try {
    const etcd = await startEtcd(stack, 3)
    const [s1, s2] = await etcdServers(stack, etcd.url, 2)
    await afsOk(['vos', 'create', 'first', '--server', s1.address])
    await etcd.members[0].stop('SIGKILL')
    t.regex(await afsOk(['vos', 'create', 'second', '--server', s2.address]), /created volume second/)
    const list = JSON.parse(await afsOk(['vos', 'list', '--server', s1.address, '--json'])) as Array<{ name: string }>
    t.true(list.some(v => v.name === 'second'), 'a create through one server is seen by the other')
    t.deepEqual(await listaddrs(s2), [s1.address, s2.address].sort())
  } finally { await stack.unwind() }
})

test.serial('vos move in an etcd cell: clients that located the volume are told of the move by their server, without asking, and go on at the new server', async t => {
  const stack = new Stack()
  try {
    const etcd = await startEtcd(stack)
    const [s1, s2, s3] = await etcdServers(stack, etcd.url, 3)
    await afsOk(['vos', 'create', 'roam', '--server', s2.address])
    const a = await addClient(stack, [s1.address])
    await afsOk(['fs', 'mkmount', join(a.cellPath, 'roam'), 'roam', '--cache', a.cache])
    for (let i = 0; i < 20; i++) writeFileSync(join(a.cellPath, 'roam', `f${i}`), `file ${i}\n`)
    const sites = async () => ((JSON.parse(await afsOk(['status', '--cache', a.cache, '--json'])) as { volumes: Array<{ name: string, sites: string[] }> }).volumes.find(v => v.name === 'roam')?.sites ?? [])
    t.deepEqual(await sites(), [s2.address])
    // Two moves at once: one moves it, the other is told.
    const [r, twice] = await Promise.all([s3, s3].map(async to => await afs(['vos', 'move', 'roam', '--to', to.address, '--server', s1.address])))
    t.deepEqual([r.code, twice.code].sort(), [0, 1], r.stderr + twice.stderr)
    // (Told it is being moved, or, if the other move was done by the time it asked, that the volume is there already.)
    t.regex(r.code === 0 ? twice.stderr : r.stderr, /being moved already|being changed by another admin command|already|roam is on .*: ask that server/)
    t.true(await eventually(async () => (await sites()).join() === s3.address, 10_000), 'the client learned of the move without a request for the volume')
    t.false(/looking it up again/.test(a.stderr()), 'no request had to be refused first')
    for (let i = 0; i < 20; i++) t.is(readFileSync(join(a.cellPath, 'roam', `f${i}`), 'utf8'), `file ${i}\n`)
    writeFileSync(join(a.cellPath, 'roam', 'after'), 'at the new server\n')
    const where = JSON.parse(await afsOk(['fs', 'whereis', join(a.cellPath, 'roam', 'after'), '--json', '--cache', a.cache])) as { servers: string[] }
    t.deepEqual(where.servers, [s3.address])
    const e = JSON.parse(await afsOk(['vos', 'examine', 'roam', '--server', s2.address, '--json'])) as { replicas: Array<{ server: string }> }
    t.deepEqual(e.replicas.map(x => x.server), [s3.address])
  } finally { await stack.unwind() }
})

test.serial('a member SIGSTOPped while it is taken out of a volume refuses the volume when continued; concurrent admin changes of one volume never undo each other', async t => {
  const stack = new Stack()
  try {
    const etcd = await startEtcd(stack)
    const [s1, s2, s3, s4] = await etcdServers(stack, etcd.url, 4)
    await afsOk(['vos', 'create', 'rep', '--server', s1.address, '--server', s2.address])
    const a = await addClient(stack, [s1.address])
    await afsOk(['fs', 'mkmount', join(a.cellPath, 'rep'), 'rep', '--cache', a.cache])
    writeFileSync(join(a.cellPath, 'rep', 'before'), 'on both\n')
    const { id } = JSON.parse(await afsOk(['vos', 'examine', 'rep', '--server', s1.address, '--json'])) as { id: number }
    const root = { volume: id, vnode: 1, unique: 1 }
    // The volume moves from s2 to s3 while s2 is frozen: out of the entry, then a new member.
    s2.proc.kill('SIGSTOP')
    await afsOk(['vos', 'remsite', 'rep', s2.address, '--server', s1.address])
    await afsOk(['vos', 'addsite', 'rep', s3.address, '--server', s1.address])
    await new Promise(resolve => setTimeout(resolve, 3_000)) // longer than its lease
    s2.proc.kill('SIGCONT')
    const conn = await rawConnection(s2.address)
    try {
      const made = await conn.request('create', { dir: root, name: 'stale', mode: 0o644, uid: 0, gid: 0, seq: 1 }).then(() => 'accepted', (err: Error & { code?: string }) => `${err.code}: ${err.message}`)
      t.regex(made, /^MOVED: .*no member of it/, 'a write to the old member is refused')
      const read = await conn.request('fetchStatus', { fid: root }).then(() => 'answered', (err: Error & { code?: string }) => err.code ?? '')
      t.is(read, 'MOVED')
    } finally { conn.close() }
    // The client goes on with the members the entry names.
    writeFileSync(join(a.cellPath, 'rep', 'after'), 'on s1 and s3\n')
    t.is(readFileSync(join(a.cellPath, 'rep', 'before'), 'utf8'), 'on both\n')
    const where = JSON.parse(await afsOk(['fs', 'whereis', join(a.cellPath, 'rep', 'after'), '--json', '--cache', a.cache])) as { servers: string[] }
    t.deepEqual(where.servers.sort(), [s1.address, s3.address].sort())
    // Two admin changes of one volume through two servers at once: each one applied, or refused as busy; none undone by the other.
    await afsOk(['vos', 'addsite', 'rep', s4.address, '--server', s1.address])
    const [x, y] = await Promise.all([
      afs(['vos', 'remsite', 'rep', s3.address, '--server', s1.address]),
      afs(['vos', 'remsite', 'rep', s4.address, '--server', s3.address]),
    ])
    for (const r of [x, y]) t.true(r.code === 0 || /being changed by another admin command/.test(r.stderr), r.stderr)
    const e = JSON.parse(await afsOk(['vos', 'examine', 'rep', '--server', s1.address, '--json'])) as { replicas: Array<{ server: string }> }
    const expected = [s1.address, ...(x.code === 0 ? [] : [s3.address]), ...(y.code === 0 ? [] : [s4.address])]
    t.deepEqual(e.replicas.map(r => r.server).sort(), expected.sort(), x.stderr + y.stderr)
  } finally { await stack.unwind() }
})
