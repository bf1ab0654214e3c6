// The divergences a new user hit, each a plain test: removes that never reached the
// server after write-back, files written offline that left the cache once they
// reached the server, and a damaged cache whose offline creates were invisible.
import test from 'ava'
import { appendFileSync, chmodSync, existsSync, linkSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { Stack, addClient, afsOk, cell, drained, eventually, startClient, status, type Client } from './helpers/cell.ts'

type Status = Awaited<ReturnType<typeof status>> & { volumes: Array<{ state: string, cml: { records: number } }>, conflicts: Array<{ path: string }> }
const st = async (c: Client) => await status(c) as Status



test.serial('a tree made in write-back mode and removed after reconnecting is removed on the server too', async t => {
  const stack = new Stack()
  try {
    const { clients: [a, b] } = await cell(stack, 2)
    await afsOk(['disconnect', '--write-back', '--age', '1', '--cache', a.cache])
    const A = (...p: string[]) => join(a.cellPath, 't', ...p)
    mkdirSync(A('d1'), { recursive: true })
    mkdirSync(A('d2'))
    const N = 120
    for (let i = 1; i <= N; i++) writeFileSync(A(`d${i % 2 + 1}`, `f${i}`), `${i}\n`)
    await afsOk(['sync', '--wait', '--timeout', '60', '--cache', a.cache])
    t.is(readdirSync(join(b.cellPath, 't', 'd1')).length + readdirSync(join(b.cellPath, 't', 'd2')).length, N)
    await afsOk(['reconnect', '--cache', a.cache])
    t.true(await drained(a))
    rmSync(A(), { recursive: true })
    t.false(existsSync(A()))
    t.true(await drained(a))
    t.deepEqual((await st(a)).conflicts, [])
    // (Within the kernel's entry timeout, 1 s, b's kernel may still answer from the name it cached.)
    await new Promise(resolve => setTimeout(resolve, 1100))
    t.false(existsSync(join(b.cellPath, 't')), 'the other client sees the tree gone')
    const fresh = await addClient(stack, [(await st(a) as unknown as { servers: Array<{ address: string }> }).servers[0].address])
    t.false(existsSync(join(fresh.cellPath, 't')), 'a fresh client sees the tree gone')
    t.false(/\/local\//.test(a.stderr()), 'no wrong paths in the log')
  } finally { await stack.unwind() }
})

test.serial('files written offline stay cached once they reach the server, and read offline again', async t => {
  const stack = new Stack()
  try {
    const { clients: [a] } = await cell(stack, 1)
    const A = (...p: string[]) => join(a.cellPath, ...p)
    readdirSync(A())
    await afsOk(['disconnect', '--cache', a.cache])
    mkdirSync(A('offline'))
    for (let i = 0; i < 20; i++) writeFileSync(A('offline', `f${i}`), `offline ${i}\n`)
    await afsOk(['reconnect', '--cache', a.cache])
    await afsOk(['sync', '--wait', '--timeout', '60', '--cache', a.cache])
    t.true(await drained(a))
    const before = (await st(a)).counters.fetches
    await afsOk(['disconnect', '--cache', a.cache])
    let readable = 0
    for (let i = 0; i < 20; i++) if (readFileSync(A('offline', `f${i}`), 'utf8') === `offline ${i}\n`) readable++
    t.is(readable, 20)
    await afsOk(['reconnect', '--cache', a.cache])
    t.true(await drained(a))
    for (let i = 0; i < 20; i++) t.is(readFileSync(A('offline', `f${i}`), 'utf8'), `offline ${i}\n`)
    t.is((await st(a)).counters.fetches, before, 'revalidated, not fetched again')
  } finally { await stack.unwind() }
})

test.serial('after damaged cache metadata is rebuilt, files and directories created offline are visible at once', async t => {
  const stack = new Stack()
  try {
    const { server, clients: [a] } = await cell(stack, 1)
    writeFileSync(join(a.cellPath, 'kept.txt'), 'v1')
    readdirSync(a.cellPath)
    await afsOk(['disconnect', '--cache', a.cache])
    writeFileSync(join(a.cellPath, 'kept.txt'), 'v2 offline')
    mkdirSync(join(a.cellPath, 'newdir'))
    writeFileSync(join(a.cellPath, 'newdir', 'inner.txt'), 'inner offline')
    writeFileSync(join(a.cellPath, 'born.txt'), 'born offline')
    await a.stop('SIGKILL')
    const { openSync, writeSync, closeSync } = await import('node:fs')
    const fd = openSync(join(a.cache, 'cache.lmdb'), 'r+')
    writeSync(fd, Buffer.alloc(16384, 0xab), 0, 16384, 0)
    closeSync(fd)
    // The user is still disconnected: the log must not replay yet.
    server.proc.kill('SIGSTOP')
    const a2 = await startClient([server.address], { cache: a.cache, mount: a.mount })
    stack.push(() => a2.stop())
    server.proc.kill('SIGCONT')
    t.regex(a2.stderr(), /cache metadata is damaged/)
    await afsOk(['disconnect', '--cache', a.cache])
    // What the log named is there (kept.txt's offline change is safe, but the log holds no name for it).
    const names = readdirSync(a2.cellPath)
    t.true(names.includes('born.txt') && names.includes('newdir'), names.join(' '))
    t.is(readFileSync(join(a2.cellPath, 'born.txt'), 'utf8'), 'born offline')
    t.is(readFileSync(join(a2.cellPath, 'newdir', 'inner.txt'), 'utf8'), 'inner offline')
    await afsOk(['reconnect', '--cache', a.cache])
    t.true(await drained(a2))
    t.is(readFileSync(join(a2.cellPath, 'newdir', 'inner.txt'), 'utf8'), 'inner offline')
    t.is(readFileSync(join(a2.cellPath, 'kept.txt'), 'utf8'), 'v2 offline')
  } finally { await stack.unwind() }
})

// Found by the fault harness: a remove logged after a store of the same file was absorbed
// into the store's conflict, so the name stayed on the server and nothing said so.
test.serial('a name removed offline from a file that goes into conflict is removed, or flagged', async t => {
  const stack = new Stack()
  try {
    const { clients: [a, b] } = await cell(stack, 2)
    writeFileSync(join(a.cellPath, 'f'), 'original\n')
    linkSync(join(a.cellPath, 'f'), join(a.cellPath, 'g'))
    readFileSync(join(a.cellPath, 'f'))
    t.is(readFileSync(join(b.cellPath, 'g'), 'utf8'), 'original\n')
    await afsOk(['disconnect', '--cache', a.cache])
    writeFileSync(join(a.cellPath, 'f'), 'changed here\n')
    rmSync(join(a.cellPath, 'g'))
    writeFileSync(join(b.cellPath, 'f'), 'changed there\n')
    await afsOk(['reconnect', '--cache', a.cache])
    t.true(await drained(a))
    const paths = (await st(a)).conflicts.map(c => c.path)
    t.true(paths.includes('/test/f'), `the store conflicts at f: ${paths.join(', ')}`)
    const gone = await eventually(() => !existsSync(join(b.cellPath, 'g')), 3000)
    t.true(gone || paths.includes('/test/g'), `the remove of g reached the server or is flagged at g (conflicts: ${paths.join(', ')})`)
  } finally { await stack.unwind() }
})

// Found by the fault harness: a conflict on a file its listing no longer named (the
// server removed it, and the directory was listed again) was reported at the cell's root.
test.serial('a conflict on a file the server removed is reported at the file\'s path', async t => {
  const stack = new Stack()
  try {
    const { clients: [a, b] } = await cell(stack, 2)
    mkdirSync(join(a.cellPath, 'd'))
    writeFileSync(join(a.cellPath, 'd', 'f'), 'original\n')
    readFileSync(join(a.cellPath, 'd', 'f'))
    await afsOk(['disconnect', '--write-back', '--age', '600', '--cache', a.cache])
    writeFileSync(join(a.cellPath, 'd', 'f'), 'changed here\n')
    rmSync(join(b.cellPath, 'd', 'f'))
    // A lists the directory again (connected, write-back): the server no longer names f.
    await new Promise(resolve => setTimeout(resolve, 1500)) // the kernel's entry cache (1 s)
    readdirSync(join(a.cellPath, 'd'))
    await afsOk(['sync', '--wait', '--timeout', '30', '--cache', a.cache])
    const paths = (await st(a)).conflicts.map(c => c.path)
    t.deepEqual(paths, ['/test/d/f'])
  } finally { await stack.unwind() }
})

test.serial('a link that conflicts offline leaves the file\'s later changes to reach the server', async t => {
  const stack = new Stack()
  try {
    const { clients: [a, b] } = await cell(stack, 2)
    writeFileSync(join(a.cellPath, 'c'), 'original\n')
    readFileSync(join(a.cellPath, 'c'))
    await afsOk(['disconnect', '--cache', a.cache])
    linkSync(join(a.cellPath, 'c'), join(a.cellPath, 'x'))
    writeFileSync(join(a.cellPath, 'c'), 'changed after the link\n')
    chmodSync(join(a.cellPath, 'c'), 0o600)
    mkdirSync(join(b.cellPath, 'x')) // the name the link wants, taken on the server
    await afsOk(['reconnect', '--cache', a.cache])
    t.true(await drained(a))
    t.deepEqual((await st(a)).conflicts.map(c => c.path), ['/test/x'], 'only the link conflicts')
    t.true(await eventually(() => (statSync(join(b.cellPath, 'c')).mode & 0o777) === 0o600, 3000), 'the chmod reached the server')
    t.is(readFileSync(join(b.cellPath, 'c'), 'utf8'), 'changed after the link\n')
  } finally { await stack.unwind() }
})

test.serial('bytes written through a handle opened before its file went into conflict are kept in the conflict', async t => {
  const stack = new Stack()
  try {
    const { clients: [a, b] } = await cell(stack, 2)
    const f = join(a.cellPath, 'f')
    writeFileSync(f, 'original\n')
    readFileSync(join(b.cellPath, 'f'))
    await afsOk(['disconnect', '--cache', a.cache])
    writeFileSync(f, 'here\n')
    writeFileSync(join(b.cellPath, 'f'), 'there\n')
    const fh = await open(f, 'a')
    try {
      await afsOk(['reconnect', '--cache', a.cache])
      t.true(await eventually(async () => (await st(a)).conflicts.length > 0, 15_000), 'the store conflicts')
      await fh.write('later\n')
    } finally { await fh.close() }
    const list = JSON.parse(await afsOk(['repair', 'list', '--json', '--cache', a.cache])) as Array<{ path: string, localCopy: string | null }>
    t.deepEqual(list.map(c => c.path), ['/test/f'])
    t.is(readFileSync(list[0].localCopy!, 'utf8'), 'here\nlater\n')
  } finally { await stack.unwind() }
})

test.serial('two clients appending to one file in turn keep every line (an append lands at the end the cache holds, not the kernel\'s older idea of it)', async t => {
  const stack = new Stack()
  try {
    const { clients: [a, b] } = await cell(stack, 2)
    const lines: string[] = []
    writeFileSync(join(a.cellPath, 'log'), '')
    readFileSync(join(b.cellPath, 'log'))
    for (let i = 0; i < 10; i++) {
      const [who, c] = i % 2 === 0 ? ['a', a] : ['b', b]
      const line = `line ${i} from ${who}\n`
      appendFileSync(join(c.cellPath, 'log'), line)
      lines.push(line)
    }
    t.is(readFileSync(join(a.cellPath, 'log'), 'utf8'), lines.join(''))
    t.true(await eventually(() => readFileSync(join(b.cellPath, 'log'), 'utf8') === lines.join(''), 3000))
  } finally { await stack.unwind() }
})
