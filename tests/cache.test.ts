// The cache's limits through a real mount: LRU eviction under --cache-size, a file
// larger than the cache, a directory of 100,000 entries, bulk status, a cold large file
// read as it comes in, bulk revalidation after a restart or a reconnection.
import test from 'ava'
import { openSync, closeSync, chmodSync, readFileSync, writeFileSync, readdirSync, statSync, mkdirSync, existsSync } from 'node:fs'
import { appendFile, open, readFile, writeFile } from 'node:fs/promises'
import { createHash, randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { Stack, addClient, afsOk, cell, status, eventually, rawConnection, tempDir } from './helpers/cell.ts'
import type { Fid } from '@afs-ts/common'

test('LRU eviction keeps the cache under its size, never evicting open files', async t => {
  const stack = new Stack()
  try {
    const { clients: [c] } = await cell(stack, 1, { cacheSize: '8M' })
    const mb = (n: number) => Buffer.alloc(n * 1024 * 1024, n)
    writeFileSync(join(c.cellPath, 'pinned'), mb(3))
    const fd = openSync(join(c.cellPath, 'pinned'), 'r')
    for (let i = 0; i < 6; i++) writeFileSync(join(c.cellPath, `f${i}`), mb(2))
    for (let i = 0; i < 6; i++) t.is(readFileSync(join(c.cellPath, `f${i}`)).length, 2 * 1024 * 1024)
    const s = await status(c) as unknown as { cache: { usedBytes: number, limitBytes: number }, counters: Record<string, number> }
    t.true(s.cache.usedBytes <= s.cache.limitBytes, `${s.cache.usedBytes} <= ${s.cache.limitBytes}`)
    t.true(s.counters.evictions > 0)
    closeSync(fd)
    t.is(readFileSync(join(c.cellPath, 'pinned')).length, 3 * 1024 * 1024)
  } finally { await stack.unwind() }
})

test('a file many times the cache is written whole and read back through it in chunks; opened for writing it is EFBIG with a log line', async t => {
  const stack = new Stack()
  try {
    const { clients: [a, b] } = await cell(stack, 2, { cacheSize: '4M' })
    // a writes it (a dirty container may exceed the cache while open) and stores it at close.
    const big = randomBytes(24 * 1024 * 1024 + 12345)
    const digest = createHash('sha256').update(big).digest('hex')
    await writeFile(join(a.cellPath, 'big'), big)
    t.is(statSync(join(b.cellPath, 'big')).size, big.length)
    // (Its container goes at its last close, which the kernel sends after close returns.)
    type Use = { cache: { usedBytes: number, limitBytes: number, chunks: { chunks: number } }, counters: Record<string, number> }
    const use = async (c: typeof a) => await status(c) as unknown as Use
    t.true(await eventually(async () => { const s = await use(a); return s.cache.usedBytes <= s.cache.limitBytes }))
    // Both read it through their 4 MiB caches, a chunk at a time: a, whose container went
    // then, and b, cold.
    for (const c of [a, b]) {
      t.is(createHash('sha256').update(await readFile(join(c.cellPath, 'big'))).digest('hex'), digest)
      const s = await use(c)
      t.true(s.cache.usedBytes <= s.cache.limitBytes, `${s.cache.usedBytes} <= ${s.cache.limitBytes}`)
      t.true(s.counters.chunkFetches >= 25, `${s.counters.chunkFetches} chunk fetches`)
      t.true(s.cache.chunks.chunks > 0, 'its last chunks stay cached')
    }
    // A part in the middle, and past the end.
    const fh = await open(join(b.cellPath, 'big'), 'r')
    try {
      const part = Buffer.alloc(3 * 1024 * 1024)
      const { bytesRead } = await fh.read(part, 0, part.length, 10 * 1024 * 1024 + 77)
      t.is(bytesRead, part.length)
      t.true(part.equals(big.subarray(10 * 1024 * 1024 + 77, 13 * 1024 * 1024 + 77)))
      t.is((await fh.read(Buffer.alloc(10), 0, 10, big.length + 5)).bytesRead, 0)
    } finally { await fh.close() }
    // Written to, it would have to be fetched whole: refused.
    const err = t.throws(() => openSync(join(b.cellPath, 'big'), 'r+')) as NodeJS.ErrnoException
    t.is(err.code, 'EFBIG')
    t.true(await eventually(() => /cannot cache .* it is 24\.0 MiB and the cache holds 4\.0 MiB/.test(b.stderr())), b.stderr())
  } finally { await stack.unwind() }
})

test('a file read in chunks: disconnected, the chunks here are read and a missing one fails at once as a listed miss; changed by another client, it is read new', async t => {
  const stack = new Stack()
  try {
    const { clients: [a, b] } = await cell(stack, 2, { cacheSize: '4M' })
    const MiB = 1024 * 1024
    const first = randomBytes(10 * MiB)
    await writeFile(join(a.cellPath, 'video'), first)
    const path = join(b.cellPath, 'video')
    const readAt = async (pos: number, len: number) => {
      const fh = await open(path, 'r')
      try { const buf = Buffer.alloc(len); return buf.subarray(0, (await fh.read(buf, 0, len, pos)).bytesRead) } finally { await fh.close() }
    }
    t.true((await readAt(0, 2 * MiB)).equals(first.subarray(0, 2 * MiB)))
    await afsOk(['disconnect', '--cache', b.cache])
    t.true((await readAt(MiB / 2, MiB)).equals(first.subarray(MiB / 2, 3 * MiB / 2)), 'a chunk here is read while disconnected')
    const err = await t.throwsAsync(readAt(8 * MiB, 100)) as NodeJS.ErrnoException
    t.is(err.code, 'ETIMEDOUT', 'a chunk not here fails, as a miss does')
    const s = await status(b) as unknown as { misses: Array<{ path: string }> }
    t.true(s.misses.some(m => m.path.endsWith('/video')), JSON.stringify(s.misses))
    await afsOk(['reconnect', '--cache', b.cache])
    t.true(await eventually(async () => (await status(b) as unknown as { volumes: Array<{ state: string }> }).volumes.every(v => v.state === 'connected'), 20_000))
    const second = randomBytes(9 * MiB + 3)
    await writeFile(join(a.cellPath, 'video'), second)
    // (The kernel trusts the size it has for a second.)
    t.true(await eventually(() => statSync(path).size === second.length))
    t.true((await readFile(path)).equals(second), 'the chunks of the old version are not read')
  } finally { await stack.unwind() }
})

test('files of a directory read in its order are fetched ahead of their opens; one changed since is read new; a reader out of order gets none ahead', async t => {
  const stack = new Stack()
  try {
    const { clients: [writer, inOrder, outOfOrder] } = await cell(stack, 3)
    const N = 40
    const name = (i: number) => `f${String(i).padStart(3, '0')}`
    const contents = (i: number) => Buffer.alloc(40 * 1024, i)
    mkdirSync(join(writer.cellPath, 'd'))
    for (let i = 0; i < N; i++) writeFileSync(join(writer.cellPath, 'd', name(i)), contents(i))
    const counters = async (c: typeof writer) => (await status(c)).counters
    const dir = join(inOrder.cellPath, 'd')
    t.deepEqual(readdirSync(dir), Array.from({ length: N }, (_, i) => name(i)))
    t.true(readFileSync(join(dir, name(0))).equals(contents(0)))
    t.true(readFileSync(join(dir, name(1))).equals(contents(1)))
    t.true(await eventually(async () => (await counters(inOrder)).readAheadFiles >= 16), 'the next 16 were fetched ahead')
    writeFileSync(join(writer.cellPath, 'd', name(10)), 'changed after it was read ahead\n')
    for (let i = 2; i < N; i++) t.deepEqual(readFileSync(join(dir, name(i))), i === 10 ? Buffer.from('changed after it was read ahead\n') : contents(i), name(i))
    const c = await counters(inOrder)
    t.true(c.readAheadFiles >= N - 4, `${c.readAheadFiles} of ${N} fetched ahead`)
    t.true(c.fetches <= N + 1, `${c.fetches} fetches: one a file, and the changed one again`)
    // Backwards, no file is fetched before its open.
    const back = join(outOfOrder.cellPath, 'd')
    readdirSync(back)
    for (let i = N - 1; i >= 0; i--) readFileSync(join(back, name(i)))
    t.is((await counters(outOfOrder)).readAheadFiles, 0)
  } finally { await stack.unwind() }
})

test('a directory of 100,000 entries creates, lists and looks up', async t => {
  const stack = new Stack()
  try {
    const { server, clients: [a, b] } = await cell(stack, 2, {}, true)
    const dir = join(a.cellPath, 'many')
    mkdirSync(dir)
    // 98,000 entries through the protocol (FUSE costs ~1 ms of CPU per create on 2 cores),
    // then 2,000 more through the mount, into the already large directory.
    const conn = await rawConnection(server.address)
    stack.push(async () => conn.close())
    const root = (await conn.request('vlGet', { name: 'root.cell' }) as { root: Fid }).root
    const d = await conn.request('fetchDir', { fid: root }) as { entries: Array<[string, Fid]> }
    const many = d.entries.find(([name]) => name === 'many')![1]
    const N = 100_000
    let next = 0
    await Promise.all(Array.from({ length: 128 }, async () => {
      while (next < N - 2000) { const i = next++; await conn.request('create', { dir: many, name: `entry-${i}`, mode: 0o644, uid: 0, gid: 0 }) }
    }))
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < N) { const i = next++; await writeFile(join(dir, `entry-${i}`), '') }
    }))
    const names = readdirSync(join(b.cellPath, 'many'))
    t.is(names.length, N)
    t.is(new Set(names).size, N)
    t.true(existsSync(join(b.cellPath, 'many', 'entry-99999')))
    t.true(existsSync(join(b.cellPath, 'many', 'entry-4242')))
    t.false(existsSync(join(b.cellPath, 'many', 'entry-100000')))
    t.is(readdirSync(dir).length, N)
  } finally { await stack.unwind() }
})

test('a directory listed cold brings its children\'s statuses (bulk status): ls -l costs a request a page, a cold read one fetch at most', async t => {
  const stack = new Stack()
  try {
    const { clients: [writer, reader] } = await cell(stack, 2)
    const N = 200
    mkdirSync(join(writer.cellPath, 'many'))
    for (let i = 0; i < N; i++) writeFileSync(join(writer.cellPath, 'many', `f${i}`), `file ${i}\n`)
    statSync(join(reader.cellPath, 'many'))
    const rpcs = async () => (await status(reader)).counters.rpcs
    const before = await rpcs()
    const names = readdirSync(join(reader.cellPath, 'many'))
    t.is(names.length, N)
    for (const n of names) t.true(statSync(join(reader.cellPath, 'many', n)).isFile())
    const listed = await rpcs()
    t.true(listed - before <= 3, `${listed - before} requests for a cold ls -l of ${N} files`)
    for (let i = 0; i < N; i++) t.is(readFileSync(join(reader.cellPath, 'many', `f${i}`), 'utf8'), `file ${i}\n`)
    // (Small files' bytes came with the listing too: the reads cost a fetch each at most.)
    t.true(await rpcs() - listed <= N, 'at most one fetch per file, no status before it')
    // The statuses came with callbacks: a change elsewhere is seen.
    writeFileSync(join(writer.cellPath, 'many', 'f7'), 'changed\n')
    t.true(await eventually(() => readFileSync(join(reader.cellPath, 'many', 'f7'), 'utf8') === 'changed\n'))
  } finally { await stack.unwind() }
})

test('a cold read of a large file is read as it comes in, byte for byte, by concurrent readers too; a second open reads the cache', async t => {
  const stack = new Stack()
  try {
    const { clients: [writer, reader] } = await cell(stack, 2)
    const data = randomBytes(48 * 1024 * 1024)
    await writeFile(join(writer.cellPath, 'big'), data)
    const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex')
    const before = (await status(reader)).counters
    const [one, two] = await Promise.all([readFile(join(reader.cellPath, 'big')), readFile(join(reader.cellPath, 'big'))])
    t.is(digest(one), digest(data))
    t.is(digest(two), digest(data))
    const after = (await status(reader)).counters
    t.is(after.fetches - before.fetches, 1, 'one fetch for both readers')
    t.true(after.streamedOpens - before.streamedOpens >= 1, 'read while it was fetched')
    t.is(digest(await readFile(join(reader.cellPath, 'big'))), digest(data))
    t.is((await status(reader)).counters.streamedOpens, after.streamedOpens, 'cached: read from the container')
    // A write through the reader works on the whole file, fetched or not.
    await appendFile(join(reader.cellPath, 'big'), 'tail')
    t.is(digest(await readFile(join(writer.cellPath, 'big'))), digest(Buffer.concat([data, Buffer.from('tail')])))
  } finally { await stack.unwind() }
})

test('after a restart or a reconnection, the cached objects of a volume are revalidated in bulk: a few requests, not one each; what changed meanwhile is seen', async t => {
  const stack = new Stack()
  try {
    const { server, clients: [writer] } = await cell(stack, 1)
    const cache = await tempDir('afs-cache-')
    stack.defer(cache)
    const mount = await tempDir('afs-mnt-')
    let reader = await addClient(stack, [server.address], { cache, mount })
    const N = 300
    mkdirSync(join(writer.cellPath, 'd'))
    for (let i = 0; i < N; i++) writeFileSync(join(writer.cellPath, 'd', `f${i}`), `file ${i}\n`)
    const readAll = () => { for (let i = 0; i < N; i++) t.is(readFileSync(join(reader.cellPath, 'd', `f${i}`), 'utf8'), i === 7 ? 'changed while it was away\n' : `file ${i}\n`) }
    for (let i = 0; i < N; i++) readFileSync(join(reader.cellPath, 'd', `f${i}`))
    await reader.stop()
    writeFileSync(join(writer.cellPath, 'd', 'f7'), 'changed while it was away\n')
    chmodSync(join(writer.cellPath, 'd', 'f8'), 0o600)
    reader = await addClient(stack, [server.address], { cache, mount })
    const rpcs = async () => (await status(reader)).counters.rpcs
    let before = await rpcs()
    readAll()
    t.is(statSync(join(reader.cellPath, 'd', 'f8')).mode & 0o777, 0o600)
    let used = await rpcs() - before
    t.log(`after a restart: ${used} requests for ${N} cached files`)
    t.true(used <= 10, `${used} requests to revalidate ${N} cached files after a restart (one fetch among them: f7 changed)`)
    await afsOk(['disconnect', '--cache', cache])
    await afsOk(['reconnect', '--cache', cache])
    t.true(await eventually(async () => (await status(reader) as unknown as { volumes: Array<{ state: string }> }).volumes.every(v => v.state === 'connected'), 20_000))
    before = await rpcs()
    readAll()
    used = await rpcs() - before
    t.log(`after a reconnection: ${used} requests`)
    t.true(used <= 5, `${used} requests to revalidate ${N} cached files after a reconnection`)
  } finally { await stack.unwind() }
})

test('a cold listing brings small files\' bytes: opening them then costs no request each; one changed since is read new; no bytes for a caller without the read right', async t => {
  const stack = new Stack()
  try {
    const { server, clients: [writer, reader] } = await cell(stack, 2)
    const N = 100
    mkdirSync(join(writer.cellPath, 'small'))
    for (let i = 0; i < N; i++) writeFileSync(join(writer.cellPath, 'small', `f${i}`), `small file ${i}\n`.repeat(i + 1))
    writeFileSync(join(writer.cellPath, 'small', 'big'), Buffer.alloc(64 * 1024, 7))
    const counters = async () => (await status(reader)).counters
    t.is(readdirSync(join(reader.cellPath, 'small')).length, N + 1)
    t.true(await eventually(async () => (await counters()).prefetchedFiles >= N), 'the small files\' containers were filled from the listing')
    writeFileSync(join(writer.cellPath, 'small', 'f5'), 'changed after the listing\n')
    const before = await counters()
    for (let i = 0; i < N; i++) t.is(readFileSync(join(reader.cellPath, 'small', `f${i}`), 'utf8'), i === 5 ? 'changed after the listing\n' : `small file ${i}\n`.repeat(i + 1))
    t.deepEqual(readFileSync(join(reader.cellPath, 'small', 'big')), Buffer.alloc(64 * 1024, 7))
    const after = await counters()
    t.is(after.fetches - before.fetches, 2, 'fetched: the big one, and the one changed since (a callback break)')
    // The bytes come only to a caller who may read them: one with the lookup right alone gets the statuses.
    const dir = join(writer.cellPath, 'small')
    await afsOk(['fs', 'setacl', dir, 'system:anyuser', 'l', '--cache', writer.cache])
    const { fid } = JSON.parse(await afsOk(['fs', 'whereis', dir, '--json', '--cache', writer.cache])) as { fid: string }
    const [volume, vnode, unique] = fid.split('.').map(Number)
    const conn = await rawConnection(server.address)
    try {
      const page = await conn.request('fetchDir', { fid: { volume, vnode, unique }, statuses: true, data: 16 * 1024 }) as { statuses: Array<{ data?: Uint8Array } | null> }
      t.true(page.statuses.length === N + 1 && page.statuses.every(s => s !== null && s.data === undefined), 'statuses, without bytes')
      await afsOk(['fs', 'setacl', dir, 'system:anyuser', 'rl', '--cache', writer.cache])
      const readable = await conn.request('fetchDir', { fid: { volume, vnode, unique }, statuses: true, data: 16 * 1024 }) as { entries: Array<[string]>, statuses: Array<{ data?: Uint8Array } | null> }
      const withData = readable.entries.map(([name], i) => [name, readable.statuses[i]?.data !== undefined])
      t.true(withData.every(([name, has]) => has === (name !== 'big')), 'the bytes of each small file, not of the big one')
    } finally { conn.close() }
  } finally { await stack.unwind() }
})
