// The `afs` CLI against a running cell: volumes, mount points, quotas, where things are.
import test from 'ava'
import { mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync, existsSync, statSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { Stack, addClient, afs, cell, eventually, isMounted, startDaemon, startServer, status, tempDir } from './helpers/cell.ts'

test('vos create, fs mkmount/lsmount/whereis, setquota with EDQUOT, EXDEV across volumes', async t => {
  const stack = new Stack()
  try {
    const { server, clients: [c] } = await cell(stack, 1)
    const cache = ['--cache', c.cache]
    let r = await afs(['vos', 'create', 'proj', '--server', server.address, '--quota', '1M'])
    t.is(r.code, 0, r.stderr)
    r = await afs(['vos', 'list', '--server', server.address, '--json'])
    t.deepEqual((JSON.parse(r.stdout) as Array<{ name: string }>).map(v => v.name).sort(), ['proj', 'root.cell'])
    r = await afs(['fs', 'mkmount', join(c.cellPath, 'proj'), 'proj', ...cache])
    t.is(r.code, 0, r.stderr)
    r = await afs(['fs', 'lsmount', join(c.cellPath, 'proj'), ...cache, '--json'])
    t.is(JSON.parse(r.stdout).volume, 'proj')
    writeFileSync(join(c.cellPath, 'proj', 'inside.txt'), 'in the proj volume')
    r = await afs(['fs', 'whereis', join(c.cellPath, 'proj', 'inside.txt'), ...cache, '--json'])
    const where = JSON.parse(r.stdout)
    t.is(where.volume, 'proj')
    t.deepEqual(where.servers, [server.address])
    // Quota: a store past it fails with EDQUOT and changes nothing.
    writeFileSync(join(c.cellPath, 'proj', 'q.bin'), Buffer.alloc(512 * 1024, 1))
    const err = t.throws(() => writeFileSync(join(c.cellPath, 'proj', 'q.bin'), Buffer.alloc(2 * 1024 * 1024, 2))) as NodeJS.ErrnoException
    t.is(err.errno, -122, 'EDQUOT (node has no name for it)')
    await afs(['fs', 'flush', join(c.cellPath, 'proj', 'q.bin'), ...cache])
    const after = readFileSync(join(c.cellPath, 'proj', 'q.bin'))
    t.is(after.length, 512 * 1024)
    t.true(after.every(b => b === 1))
    r = await afs(['fs', 'listquota', join(c.cellPath, 'proj'), ...cache, '--json'])
    t.is(JSON.parse(r.stdout).quota, 1024 * 1024)
    r = await afs(['vos', 'setquota', 'proj', '4M', '--server', server.address])
    t.is(r.code, 0, r.stderr)
    writeFileSync(join(c.cellPath, 'proj', 'q.bin'), Buffer.alloc(2 * 1024 * 1024, 2))
    t.is(statSync(join(c.cellPath, 'proj', 'q.bin')).size, 2 * 1024 * 1024)
    // Rename across volumes is EXDEV (mv falls back to copy).
    t.is((t.throws(() => renameSync(join(c.cellPath, 'proj', 'inside.txt'), join(c.cellPath, 'moved.txt'))) as NodeJS.ErrnoException).code, 'EXDEV')
    t.true(existsSync(join(c.cellPath, 'proj', 'inside.txt')))
  } finally { await stack.unwind() }
})

test('the mount root lists every cell of a cache manager serving several', async t => {
  const stack = new Stack()
  try {
    const one = await startServer(undefined, 'one.example')
    stack.defer(one.dataDir); stack.push(() => one.stop())
    const two = await startServer(undefined, 'two.example')
    stack.defer(two.dataDir); stack.push(() => two.stop())
    const c = await addClient(stack, [one.address, two.address])
    const { readdirSync } = await import('node:fs')
    t.deepEqual(readdirSync(c.mount).sort(), ['one.example', 'two.example'])
    writeFileSync(join(c.mount, 'one.example', 'a'), '1')
    mkdirSync(join(c.mount, 'two.example', 'd'))
    t.deepEqual(readdirSync(join(c.mount, 'two.example')), ['d'])
    t.deepEqual(readdirSync(join(c.mount, 'one.example')), ['a'])
  } finally { await stack.unwind() }
})

test('status has a human table and JSON counters', async t => {
  const stack = new Stack()
  try {
    const { clients: [c] } = await cell(stack, 1)
    writeFileSync(join(c.cellPath, 'f'), 'x')
    const s = await status(c)
    for (const k of ['rpcs', 'fetches', 'stores', 'callbackBreaks']) t.is(typeof s.counters[k], 'number', k)
    t.true(s.counters.stores >= 1)
    const human = await afs(['status', '--cache', c.cache])
    t.regex(human.stdout, /root\.cell\s+\d+\s+127\.0\.0\.1:\d+\s+connected/)
  } finally { await stack.unwind() }
})

test('bad arguments give a one-line error and exit 2; --help everywhere', async t => {
  for (const args of [['vos', 'create'], ['client', '--server', 'nohostport', '--mount', '/x', '--cache', '/y'], ['up', '--port', 'abc'], ['status', '--bogus'], ['nosuch'], ['fs', 'frobnicate']]) {
    const r = await afs(args)
    t.is(r.code, 2, args.join(' '))
    t.regex(r.stderr.split('\n')[0], /^afs/, args.join(' '))
  }
  for (const cmd of ['up', 'server', 'client', 'status', 'vos', 'fs']) {
    const r = await afs([cmd, '--help'])
    t.is(r.code, 0)
    t.regex(r.stdout, /^Usage: afs/)
  }
  const r = await afs(['status', '--cache', '/nonexistent-afs-cache'])
  t.is(r.code, 1)
  t.regex(r.stderr, /no cache manager at/)
})

test('afs up brings up a one-machine cell and unmounts cleanly on SIGINT', async t => {
  const stack = new Stack()
  try {
    const state = await tempDir('afs-up-state-')
    const mount = await tempDir('afs-up-mnt-')
    stack.defer(state)
    stack.push(async () => { if (!await isMounted(mount)) await rm(mount, { recursive: true, force: true }) })
    const up = await startDaemon(['up', '--mount', mount, '--state', state, '--port', '0', '--cell', 'home.example'])
    stack.push(() => up.stop())
    t.deepEqual(readdirSync(mount), ['home.example'])
    writeFileSync(join(mount, 'home.example', 'hello.txt'), 'hello\n')
    t.is(readFileSync(join(mount, 'home.example', 'hello.txt'), 'utf8'), 'hello\n')
    // The one who ran it works as the cell's admin at once; its password is printed once and kept.
    t.true(await eventually(() => /the cell's admin password is \S+ \(kept in .*admin\.password, mode 0600\)/.test(up.stderr()), 5_000), up.stderr())
    t.is(statSync(join(state, 'server', 'admin.password')).mode & 0o777, 0o600)
    const held = JSON.parse((await afs(['tokens', '--json', '--cache', join(state, 'cache')])).stdout) as Array<{ user: string, cell: string }>
    t.deepEqual(held.map(h => [h.user, h.cell]), [['admin', 'home.example']])
    const made = await afs(['vos', 'setquota', 'root.cell', '1G', '--cache', join(state, 'cache')], { env: { AFS_LOCALAUTH: '' } })
    t.is(made.code, 0, made.stderr)
    t.is(await up.stop('SIGINT'), 0)
    t.false(await isMounted(mount))
  } finally { await stack.unwind() }
})
