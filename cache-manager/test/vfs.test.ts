// The cache manager core against a real in-process volume server, without a mount.
import test from 'ava'
import { constants, readFileSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ALL_RIGHTS, type AfsError } from '@afs-ts/common'
import { ANYUSER } from '@afs-ts/protection'
import { FileServer } from '@afs-ts/fileserver'
import { CacheManager } from '../src/cache-manager.ts'
import { Vfs } from '../src/vfs.ts'

const me = { uid: 0, gid: 0, pid: 1 }

async function setup (t: { teardown (fn: () => Promise<void>): void }, clients = 2) {
  const dir = await mkdtemp(join(tmpdir(), 'afs-vfs-'))
  const server = await FileServer.open({ dataDir: join(dir, 'srv'), cell: 'unit' })
  const address = await server.listen()
  // Not about access: the root is everyone's to change (these caches have no tokens).
  await server.store.setAcl((await server.vldb.get('root.cell')).root, { pos: [[ANYUSER, ALL_RIGHTS]], neg: [] })
  const vfss: Vfs[] = []
  for (let i = 0; i < clients; i++) {
    const cm = new CacheManager({ cacheDir: join(dir, `cache${i}`), cells: [[address]], trust: { ca: await readFile(join(dir, 'srv', 'tls', 'ca.pem'), 'utf8') } })
    await cm.ready()
    vfss.push(new Vfs(cm))
  }
  t.teardown(async () => {
    for (const v of vfss) await v.cm.close()
    await server.close()
    await rm(dir, { recursive: true, force: true })
  })
  return { server, vfss }
}

async function writeWhole (v: Vfs, path: string, text: string) {
  const fh = await v.create(path, 0o644, me).catch(async () => { await v.truncate(path, 0); return await v.open(path, 2) })
  const b = Buffer.from(text)
  await v.write(fh, b, b.length, 0)
  await v.flush(fh)
  await v.release(fh)
}

async function readWhole (v: Vfs, path: string): Promise<string> {
  const fh = await v.open(path, 0)
  const buf = Buffer.alloc(1 << 16)
  const n = await v.read(fh, buf, buf.length, 0)
  await v.release(fh)
  return buf.subarray(0, n).toString()
}

test('a callback break demotes an object; an unchanged version is revalidated, not refetched', async t => {
  const { vfss: [a, b] } = await setup(t)
  await writeWhole(a, '/unit/f', 'one')
  t.is(await readWhole(b, '/unit/f'), 'one')
  const fetches = b.cm.counters.fetches
  await a.chmod('/unit/f', 0o600)
  t.true(b.cm.counters.callbackBreaks > 0)
  t.is(await readWhole(b, '/unit/f'), 'one')
  t.is(b.cm.counters.fetches, fetches, 'the container survived the break')
  t.is((await b.getattr('/unit/f')).mode & 0o777, 0o600)
  await writeWhole(a, '/unit/f', 'two!')
  t.is(await readWhole(b, '/unit/f'), 'two!')
  t.is(b.cm.counters.fetches, fetches + 1)
})

test('cached lookups, listings and reads send no RPC while callbacks hold', async t => {
  const { vfss: [a] } = await setup(t, 1)
  await a.mkdir('/unit/d', 0o755, me)
  await writeWhole(a, '/unit/d/x', 'x')
  await readWhole(a, '/unit/d/x')
  const rpcs = a.cm.counters.rpcs
  for (let i = 0; i < 50; i++) {
    await a.getattr('/unit/d/x')
    t.deepEqual(await a.readdir('/unit/d'), ['.', '..', 'x'])
    t.is(await readWhole(a, '/unit/d/x'), 'x')
  }
  t.is(a.cm.counters.rpcs, rpcs)
})

test('a listing follows our own changes without refetching it', async t => {
  const { vfss: [a] } = await setup(t, 1)
  await a.mkdir('/unit/d', 0o755, me)
  await a.readdir('/unit/d')
  for (let i = 0; i < 20; i++) await writeWhole(a, `/unit/d/f${i}`, String(i))
  await a.rename('/unit/d/f0', '/unit/d/g0')
  await a.unlink('/unit/d/f1')
  const rpcs = a.cm.counters.rpcs
  const names = await a.readdir('/unit/d')
  t.is(a.cm.counters.rpcs, rpcs)
  t.true(names.includes('g0'))
  t.false(names.includes('f0'))
  t.false(names.includes('f1'))
  t.is(names.length, 2 + 19)
})

test('a file written in write-back mode after another client changed it is based on the version it was read at', async t => {
  const { vfss: [a, b] } = await setup(t)
  await writeWhole(a, '/unit/f', 'one')
  t.is(await readWhole(b, '/unit/f'), 'one')
  b.cm.connectivity.disconnect(true, 3_600_000)
  await writeWhole(a, '/unit/f', 'two!')
  t.is((await b.getattr('/unit/f')).size, 4, 'the new status is seen')
  const fh = await b.open('/unit/f', 2)
  const buf = Buffer.from('B')
  await b.write(fh, buf, 1, 0)
  await b.flush(fh)
  await b.release(fh)
  b.cm.connectivity.reconnect()
  await b.cm.connectivity.sync(10_000)
  const server = await readWhole(a, '/unit/f')
  const conflicts = b.cm.cml.conflicts().length
  // Either b wrote over the version it read (then a's is on the server still, beside a conflict), or over a's.
  t.true((server === 'two!' && conflicts === 1) || (server === 'Bwo!' && conflicts === 0), `server ${server}, ${conflicts} conflicts`)
})

test('a store under a write lock the server let go is refused (ENOLCK) and kept as a conflict; the new holder\'s write stays', async t => {
  const { server, vfss: [a, b] } = await setup(t)
  await writeWhole(a, '/unit/f', 'one')
  const fa = await a.open('/unit/f', 2)
  await a.lock(fa, 2, 1, 0, 0, 'owner-a')
  const late = Buffer.from('from a, too late')
  await a.write(fa, late, late.length, 0)
  server.locks.expire(Date.now() + 3_600_000) // a stopped renewing long ago
  const fb = await b.open('/unit/f', 2)
  await b.lock(fb, 2, 1, 0, 0, 'owner-b')
  const mine = Buffer.from('from b')
  await b.write(fb, mine, mine.length, 0)
  await b.flush(fb)
  await b.release(fb)
  const err = await t.throwsAsync(a.flush(fa)) as AfsError
  t.is(err.code, 'NO_LOCK')
  await a.release(fa).catch(() => {})
  await a.cm.connectivity.sync(10_000)
  t.is(await readWhole(b, '/unit/f'), 'from b', 'the holder\'s write stays')
  const conflicts = a.cm.cml.conflicts()
  t.is(conflicts.length, 1)
  t.is(readFileSync(conflicts[0].localCopy!, 'utf8'), 'from a, too late')
})

test('a handle opened with O_APPEND writes at the end of the file it holds, whatever position the kernel passes', async t => {
  const { vfss: [a, b] } = await setup(t)
  await writeWhole(a, '/unit/log', 'a1\n')
  t.is(await readWhole(b, '/unit/log'), 'a1\n')
  const fa = await a.open('/unit/log', constants.O_WRONLY | constants.O_APPEND)
  const more = Buffer.from('a2\n')
  await a.write(fa, more, more.length, 3)
  await a.flush(fa)
  await a.release(fa)
  // b's kernel still thinks the file is 3 bytes long (its attributes are cached for a second).
  const fb = await b.open('/unit/log', constants.O_WRONLY | constants.O_APPEND)
  const mine = Buffer.from('b1\n')
  await b.write(fb, mine, mine.length, 3)
  await b.flush(fb)
  await b.release(fb)
  t.is(await readWhole(a, '/unit/log'), 'a1\na2\nb1\n', 'both appends are there')
})
