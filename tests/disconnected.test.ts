// Disconnected operation with real processes and real signals: a server killed or
// frozen while a client works, the client killed while offline, reintegration by
// itself when the server is back, and conflicts with a second client.
import test, { type ExecutionContext } from 'ava'
import {
  chmodSync, linkSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmdirSync, statSync, symlinkSync,
  truncateSync, unlinkSync, utimesSync, writeFileSync, lstatSync, existsSync,
} from 'node:fs'
import { join } from 'node:path'
import { controlCall } from '@afs-ts/tools'
import { Stack, addClient, afs, eventually, startClient, startServer, status, type Client, type Server } from './helpers/cell.ts'

type Status = Awaited<ReturnType<typeof status>> & {
  volumes: Array<{ state: string, cml: { records: number } }>
  conflicts: Array<{ path: string, kind: string, localCopy: string | null, serverCopy: string | null }>
  misses: Array<{ path: string }>
}
const st = async (c: Client) => await status(c) as Status
const stateOf = async (c: Client) => (await st(c)).volumes[0].state

async function serverAndClient (stack: Stack, clientOpts: Parameters<typeof startClient>[1] = {}) {
  const server = await startServer()
  stack.defer(server.dataDir)
  const box = { server }
  stack.push(() => box.server.stop())
  const client = await startClient([server.address], clientOpts)
  stack.defer(client.cache)
  const cbox = { client }
  stack.push(() => cbox.client.stop())
  return { box, cbox }
}

async function restartServer (stack: Stack, old: Server): Promise<Server> {
  const s = await startServer(old.dataDir, 'test', old.address)
  stack.push(() => s.stop())
  return s
}

test.serial('server killed: the client works from its cache, survives its own SIGKILL, and reintegrates by itself', async t => {
  const stack = new Stack()
  try {
    const { box, cbox } = await serverAndClient(stack)
    const c = cbox.client
    const p = (...x: string[]) => join(c.cellPath, ...x)
    writeFileSync(p('cached.txt'), 'cached\n')
    writeFileSync(p('edit.txt'), 'before\n')
    writeFileSync(p('trunc.txt'), '0123456789')
    writeFileSync(p('gone.txt'), 'remove me')
    mkdirSync(p('olddir'))
    mkdirSync(p('dir'))
    writeFileSync(p('dir', 'move.txt'), 'move me')
    for (const f of ['cached.txt', 'edit.txt', 'trunc.txt', 'gone.txt']) readFileSync(p(f))
    readdirSync(p('dir'))
    readdirSync(p('olddir'))

    box.server.proc.kill('SIGKILL')
    await box.server.stop()
    t.true(await eventually(async () => await stateOf(c) === 'disconnected', 10_000), 'disconnected within 10 s')
    t.is(readFileSync(p('cached.txt'), 'utf8'), 'cached\n')
    // Every kind of mutation, offline.
    writeFileSync(p('new.txt'), 'born offline\n')
    writeFileSync(p('edit.txt'), 'after\n')
    truncateSync(p('trunc.txt'), 4)
    chmodSync(p('cached.txt'), 0o600)
    utimesSync(p('cached.txt'), new Date('2020-01-01T00:00:00Z'), new Date('2021-02-03T04:05:06Z'))
    unlinkSync(p('gone.txt'))
    rmdirSync(p('olddir'))
    mkdirSync(p('newdir'))
    writeFileSync(p('newdir', 'inner.txt'), 'inner')
    renameSync(p('dir', 'move.txt'), p('newdir', 'moved.txt'))
    symlinkSync('new.txt', p('link-to-new'))
    linkSync(p('edit.txt'), p('hard.txt'))
    writeFileSync(p('scratch'), 'temporary')
    unlinkSync(p('scratch'))
    const s1 = await st(c)
    t.true(s1.volumes[0].cml.records > 5)

    // The client itself dies and comes back while the server is still gone.
    await cbox.client.stop('SIGKILL')
    await afs(['status']) // nothing; just let the kernel notice
    const c2 = await startClient([box.server.address], { cache: c.cache, mount: c.mount })
    cbox.client = c2
    t.is(await stateOf(c2), 'disconnected')
    t.is(readFileSync(p('new.txt'), 'utf8'), 'born offline\n')
    t.is(readFileSync(p('edit.txt'), 'utf8'), 'after\n')
    t.is(readFileSync(p('newdir', 'moved.txt'), 'utf8'), 'move me')
    t.is((await st(c2)).volumes[0].cml.records, s1.volumes[0].cml.records)

    box.server = await restartServer(stack, box.server)
    t.true(await eventually(async () => (await st(c2)).volumes[0].cml.records === 0 && await stateOf(c2) === 'connected', 20_000), 'reintegrated by itself')
    t.deepEqual((await st(c2)).conflicts, [])

    // A fresh client sees exactly what the user made.
    const fresh = await addClient(stack, [box.server.address])
    const q = (...x: string[]) => join(fresh.cellPath, ...x)
    t.deepEqual(readdirSync(fresh.cellPath).sort(), ['cached.txt', 'dir', 'edit.txt', 'hard.txt', 'link-to-new', 'new.txt', 'newdir', 'trunc.txt'])
    t.is(readFileSync(q('new.txt'), 'utf8'), 'born offline\n')
    t.is(readFileSync(q('edit.txt'), 'utf8'), 'after\n')
    t.is(readFileSync(q('hard.txt'), 'utf8'), 'after\n')
    t.is(readFileSync(q('trunc.txt'), 'utf8'), '0123')
    t.is(statSync(q('cached.txt')).mode & 0o777, 0o600)
    t.is(statSync(q('cached.txt')).mtime.toISOString(), '2021-02-03T04:05:06.000Z')
    t.is(readlinkSync(q('link-to-new')), 'new.txt')
    t.deepEqual(readdirSync(q('newdir')).sort(), ['inner.txt', 'moved.txt'])
    t.deepEqual(readdirSync(q('dir')), [])
    t.false(existsSync(q('scratch')))
  } finally { await stack.unwind() }
})

test.serial('server frozen with SIGSTOP: the client goes disconnected within the bound and comes back after SIGCONT', async t => {
  const stack = new Stack()
  try {
    const { box, cbox } = await serverAndClient(stack)
    const c = cbox.client
    writeFileSync(join(c.cellPath, 'f.txt'), 'one')
    readFileSync(join(c.cellPath, 'f.txt'))
    box.server.proc.kill('SIGSTOP')
    stack.push(async () => { box.server.proc.kill('SIGCONT') })
    const t0 = Date.now()
    t.true(await eventually(async () => await stateOf(c) === 'disconnected', 15_000))
    t.true(Date.now() - t0 < 15_000)
    t.is(readFileSync(join(c.cellPath, 'f.txt'), 'utf8'), 'one')
    writeFileSync(join(c.cellPath, 'f.txt'), 'two')
    t.throws(() => readFileSync(join(c.cellPath, 'never-cached')), { code: 'ENOENT' })
    box.server.proc.kill('SIGCONT')
    t.true(await eventually(async () => (await st(c)).volumes[0].cml.records === 0 && await stateOf(c) === 'connected', 20_000))
    const r = await afs(['sync', '--wait', '--timeout', '10', '--cache', c.cache])
    t.is(r.code, 0, r.stdout + r.stderr)
    t.regex(r.stdout, /all local changes are on the servers/)
  } finally { await stack.unwind() }
})

test.serial('a create the server applied while frozen, its reply lost, is recognised as our own, not a conflict', async t => {
  const stack = new Stack()
  try {
    const { box, cbox } = await serverAndClient(stack)
    const c = cbox.client
    readdirSync(c.cellPath)
    box.server.proc.kill('SIGSTOP')
    stack.push(async () => { box.server.proc.kill('SIGCONT') })
    // The create reaches the frozen server's socket; the client gives up on it and logs it.
    writeFileSync(join(c.cellPath, 'made-while-frozen.txt'), 'written while the server was frozen\n')
    t.is(await stateOf(c), 'disconnected')
    box.server.proc.kill('SIGCONT')
    t.true(await eventually(async () => (await st(c)).volumes[0].cml.records === 0 && await stateOf(c) === 'connected', 30_000))
    t.deepEqual((await st(c)).conflicts, [])
    const fresh = await addClient(stack, [box.server.address])
    t.is(readFileSync(join(fresh.cellPath, 'made-while-frozen.txt'), 'utf8'), 'written while the server was frozen\n')
    if (!/the server has this change already \(name\/name\)/.test(c.stderr())) t.log('the frozen server did not apply the create this time (nothing to recognise)')
  } finally { await stack.unwind() }
})

test.serial('a second client\'s changes while the first is offline are flagged as conflicts with both versions kept', async t => {
  const stack = new Stack()
  try {
    const { box, cbox } = await serverAndClient(stack)
    const a = cbox.client
    const b = await addClient(stack, [box.server.address])
    const pa = (x: string) => join(a.cellPath, x)
    const pb = (x: string) => join(b.cellPath, x)
    writeFileSync(pa('both.txt'), 'original\n')
    writeFileSync(pa('removed-there.txt'), 'original\n')
    writeFileSync(pa('calm.txt'), 'untouched\n')
    writeFileSync(pa('removed-here.txt'), 'original\n')
    writeFileSync(pa('renamed-here.txt'), 'original\n')
    for (const f of ['both.txt', 'removed-there.txt', 'calm.txt', 'removed-here.txt', 'renamed-here.txt']) readFileSync(pa(f))
    readdirSync(a.cellPath)
    t.is((await afs(['disconnect', '--cache', a.cache])).code, 0)
    t.is(await stateOf(a), 'disconnected')
    writeFileSync(pa('both.txt'), 'local version\n')
    writeFileSync(pa('removed-there.txt'), 'updated here\n')
    writeFileSync(pa('same-name.txt'), 'mine\n')
    writeFileSync(pa('calm.txt'), 'changed only here\n')
    unlinkSync(pa('removed-here.txt'))
    renameSync(pa('renamed-here.txt'), pa('renamed-to.txt'))
    writeFileSync(pb('both.txt'), 'server version\n')
    writeFileSync(pb('removed-here.txt'), 'updated there\n')
    renameSync(pb('renamed-here.txt'), pb('renamed-there.txt'))
    unlinkSync(pb('removed-there.txt'))
    writeFileSync(pb('same-name.txt'), 'theirs\n')
    t.is((await afs(['reconnect', '--cache', a.cache])).code, 0)
    t.true(await eventually(async () => (await st(a)).volumes[0].cml.records === 0 && (await st(a)).volumes[0].state === 'connected', 20_000))
    const conflicts = (await st(a)).conflicts
    const kinds = Object.fromEntries(conflicts.map(c => [c.path, c]))
    t.is(kinds['/test/both.txt']?.kind, 'update/update')
    t.is(kinds['/test/removed-there.txt']?.kind, 'remove/update')
    t.is(kinds['/test/same-name.txt']?.kind, 'name/name')
    t.is(kinds['/test/removed-here.txt']?.kind, 'update/remove')
    t.is(kinds['/test/renamed-to.txt']?.kind, 'rename')
    t.is(conflicts.length, 5)
    // Removing here what was updated there keeps the update on the server.
    t.is(readFileSync(pb('removed-here.txt'), 'utf8'), 'updated there\n')
    t.is(readFileSync(pb('renamed-there.txt'), 'utf8'), 'original\n')
    // Both versions are on disk.
    t.is(readFileSync(kinds['/test/both.txt'].localCopy!, 'utf8'), 'local version\n')
    t.is(readFileSync(kinds['/test/both.txt'].serverCopy!, 'utf8'), 'server version\n')
    t.is(readFileSync(kinds['/test/same-name.txt'].localCopy!, 'utf8'), 'mine\n')
    t.is(readFileSync(kinds['/test/same-name.txt'].serverCopy!, 'utf8'), 'theirs\n')
    t.is(readFileSync(kinds['/test/removed-there.txt'].localCopy!, 'utf8'), 'updated here\n')
    // The conflicted object is marked in the namespace and takes no writes. (Once the kernel's
    // attribute and entry timeouts, 1 s, have passed: until then the kernel, holding it as a
    // file, answers EIO for the symlink the marker is — the FUSE binding cannot invalidate it.)
    await new Promise(resolve => setTimeout(resolve, 1100))
    t.true(lstatSync(pa('both.txt')).isSymbolicLink())
    t.regex(readlinkSync(pa('both.txt')), /^\/afs-conflict\/update-update\//)
    t.throws(() => writeFileSync(pa('both.txt'), 'x'))
    // The change that did not conflict went through; the other client is untouched.
    t.is(readFileSync(pb('calm.txt'), 'utf8'), 'changed only here\n')
    t.is(readFileSync(pb('both.txt'), 'utf8'), 'server version\n')
    const list = await afs(['repair', 'list', '--json', '--cache', a.cache])
    t.is(JSON.parse(list.stdout).length, 5)
  } finally { await stack.unwind() }
})

test.serial('write-back mode logs changes and trickles them to the server; reconnect flushes', async t => {
  const stack = new Stack()
  try {
    const { box, cbox } = await serverAndClient(stack)
    const a = cbox.client
    const b = await addClient(stack, [box.server.address])
    t.is((await afs(['disconnect', '--write-back', '--age', '1', '--cache', a.cache])).code, 0)
    t.is(await stateOf(a), 'write-disconnected')
    for (let i = 0; i < 5; i++) writeFileSync(join(a.cellPath, 'wb.txt'), `version ${i}\n`)
    const trickled = await eventually(() => existsSync(join(b.cellPath, 'wb.txt')) && readFileSync(join(b.cellPath, 'wb.txt'), 'utf8') === 'version 4\n', 15_000)
    if (!trickled) t.log(JSON.stringify((await status(b) as { counters: unknown }).counters), existsSync(join(b.cellPath, 'wb.txt')) && readFileSync(join(b.cellPath, 'wb.txt'), 'utf8'), JSON.stringify(((await status(a)) as unknown as { reintegration: unknown }).reintegration))
    t.true(trickled, 'trickled out')
    writeFileSync(join(a.cellPath, 'late.txt'), 'late\n')
    t.is((await afs(['reconnect', '--cache', a.cache])).code, 0)
    t.is((await afs(['sync', '--wait', '--timeout', '10', '--cache', a.cache])).code, 0)
    t.is(readFileSync(join(b.cellPath, 'late.txt'), 'utf8'), 'late\n')
  } finally { await stack.unwind() }
})

/** Files made offline under `many/` (a create and a store each, replayed in batches), then reconnected. */
async function offlineMany (c: Client, n: number): Promise<void> {
  mkdirSync(join(c.cellPath, 'many'))
  readdirSync(join(c.cellPath, 'many'))
  if ((await afs(['disconnect', '--cache', c.cache])).code !== 0) throw new Error('afs disconnect failed')
  for (let i = 0; i < n; i++) writeFileSync(join(c.cellPath, 'many', `f${i}`), `contents of ${i}\n`.repeat(2000))
  if ((await st(c)).volumes[0].cml.records !== 2 * n) throw new Error('not every change was logged')
  await afs(['reconnect', '--cache', c.cache])
}

/** Records left in a client's log, asked through its control socket (quick enough to catch a replay under way). */
async function recordsLeft (c: Client): Promise<number> {
  return ((await controlCall(c.cache, 'status')) as unknown as { cml: { records: number } }).cml.records
}

/** After a cut replay resumed: nothing in conflict, and a fresh client sees every file once, whole. */
async function allThere (t: ExecutionContext, stack: Stack, c: Client, server: Server, n: number): Promise<void> {
  t.true(await eventually(async () => await recordsLeft(c) === 0 && await stateOf(c) === 'connected', 30_000))
  t.deepEqual((await st(c)).conflicts, [])
  const fresh = await addClient(stack, [server.address])
  const names = readdirSync(join(fresh.cellPath, 'many'))
  t.is(names.length, n)
  for (let i = 0; i < n; i += 37) t.is(readFileSync(join(fresh.cellPath, 'many', `f${i}`), 'utf8'), `contents of ${i}\n`.repeat(2000))
}

test.serial('a reintegration cut by a server SIGKILL resumes without applying a record twice', async t => {
  const stack = new Stack()
  try {
    const { box, cbox } = await serverAndClient(stack)
    const N = 600
    await offlineMany(cbox.client, N)
    // Kill the server as soon as the replay is under way: most likely in the middle of a batch.
    t.true(await eventually(async () => await recordsLeft(cbox.client) < 2 * N, 20_000))
    box.server.proc.kill('SIGKILL')
    await box.server.stop()
    t.true(await recordsLeft(cbox.client) > 0, 'the kill came mid-replay')
    box.server = await restartServer(stack, box.server)
    await allThere(t, stack, cbox.client, box.server, N)
  } finally { await stack.unwind() }
})

test.serial('a reintegration cut by the cache manager\'s SIGKILL resumes where the server got to, each record applied once', async t => {
  const stack = new Stack()
  try {
    const { box, cbox } = await serverAndClient(stack)
    const c = cbox.client
    const N = 600
    await offlineMany(c, N)
    t.true(await eventually(async () => await recordsLeft(c) < 2 * N, 20_000))
    // Batches the server applied whose replies never arrived, and records done but not yet written off the log.
    await c.stop('SIGKILL')
    cbox.client = await startClient([box.server.address], { cache: c.cache, mount: c.mount })
    await allThere(t, stack, cbox.client, box.server, N)
  } finally { await stack.unwind() }
})

test.serial('damaged cache metadata is rebuilt without losing the changes waiting in the log', async t => {
  const stack = new Stack()
  try {
    const { box, cbox } = await serverAndClient(stack)
    const c = cbox.client
    writeFileSync(join(c.cellPath, 'kept.txt'), 'v1')
    readdirSync(c.cellPath)
    t.is((await afs(['disconnect', '--cache', c.cache])).code, 0)
    writeFileSync(join(c.cellPath, 'kept.txt'), 'v2 offline')
    writeFileSync(join(c.cellPath, 'born.txt'), 'born offline')
    await cbox.client.stop('SIGKILL')
    const { openSync, writeSync, closeSync } = await import('node:fs')
    const fd = openSync(join(c.cache, 'cache.lmdb'), 'r+')
    writeSync(fd, Buffer.alloc(16384, 0xab), 0, 16384, 0)
    closeSync(fd)
    const c2 = await startClient([box.server.address], { cache: c.cache, mount: c.mount })
    cbox.client = c2
    t.regex(c2.stderr(), /cache metadata is damaged/)
    t.true(await eventually(async () => (await st(c2)).volumes[0]?.cml.records === 0, 20_000))
    t.is(readFileSync(join(c2.cellPath, 'kept.txt'), 'utf8'), 'v2 offline')
    t.is(readFileSync(join(c2.cellPath, 'born.txt'), 'utf8'), 'born offline')
  } finally { await stack.unwind() }
})
