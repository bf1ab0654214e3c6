// Chunks of a file too big to cache whole: exactly the bytes asked for or nothing, one
// version per file, least recently read evicted first (those a reader needs next last),
// and found again after a restart.
import test from 'ava'
import { mkdtemp, mkdir, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ChunkStore, chunkSizeFor } from '../src/chunk-store.ts'
import type { AfsError } from '@afs-ts/common'

async function chunkStore (t: { teardown (fn: () => Promise<void>): void }) {
  const dir = await mkdtemp(join(tmpdir(), 'afs-chunks-'))
  await mkdir(join(dir, 'tmp'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const open = async (size = 1024) => { const s = new ChunkStore(join(dir, 'chunks'), join(dir, 'tmp'), size); await s.ready(); return s }
  return { dir, open }
}
async function * body (...parts: Buffer[]) { yield * parts }
const KEY = 'cell:7.3.9'

async function readChunk (s: ChunkStore, version: number, index: number, len = 100): Promise<Buffer | null> {
  const buf = Buffer.alloc(len)
  const n = await s.read(KEY, version, index, buf, 0, len, 0)
  return n === null ? null : buf.subarray(0, n)
}

test('a chunk holds exactly the bytes expected, or is not kept', async t => {
  const { dir, open } = await chunkStore(t)
  const s = await open()
  t.is(await s.put(KEY, 4, 0, body(Buffer.from('hello '), Buffer.from('world')), 11), 11)
  t.is((await readChunk(s, 4, 0))!.toString(), 'hello world')
  t.is(s.bytes, 11)
  t.is((await t.throwsAsync(s.put(KEY, 4, 1, body(Buffer.from('too long')), 3)) as AfsError).code, 'HASH_MISMATCH')
  t.is((await t.throwsAsync(s.put(KEY, 4, 1, body(Buffer.from('short')), 30)) as AfsError).code, 'HASH_MISMATCH')
  t.false(s.has(KEY, 4, 1))
  t.is(await readChunk(s, 4, 1), null)
  t.deepEqual(await readdir(join(dir, 'tmp')), [], 'no temp file left behind')
  t.is(s.bytes, 11)
})

test('a chunk of a newer version drops the older version\'s chunks', async t => {
  const { open } = await chunkStore(t)
  const s = await open()
  await s.put(KEY, 4, 0, body(Buffer.alloc(10, 1)), 10)
  await s.put(KEY, 4, 1, body(Buffer.alloc(10, 2)), 10)
  await s.put(KEY, 5, 1, body(Buffer.alloc(6, 3)), 6)
  t.false(s.has(KEY, 4, 0))
  t.is(await readChunk(s, 4, 1), null)
  t.true((await readChunk(s, 5, 1))!.equals(Buffer.alloc(6, 3)))
  t.is(s.versionOf(KEY), 5)
  t.is(s.bytes, 6)
  // A fetch of the older version that ends after the newer one's: not kept, nothing dropped.
  t.is(await s.put(KEY, 4, 2, body(Buffer.alloc(10, 4)), 10), 10)
  t.false(s.has(KEY, 4, 2))
  t.true(s.has(KEY, 5, 1))
  t.is(s.bytes, 6)
})

test('eviction: least recently read first, the chunks a reader needs next only when asked', async t => {
  const { open } = await chunkStore(t)
  const s = await open()
  const other = 'cell:7.5.1'
  for (let i = 0; i < 4; i++) await s.put(KEY, 1, i, body(Buffer.alloc(10, i)), 10)
  await s.put(other, 2, 0, body(Buffer.alloc(10)), 10)
  await new Promise(resolve => setTimeout(resolve, 5))
  await readChunk(s, 1, 0) // now the most recently read
  s.keep(KEY, 2, 3)
  t.is(await s.evict(() => s.bytes <= 30, false), 2)
  t.false(s.has(KEY, 1, 1))
  t.false(s.has(other, 2, 0))
  t.true(s.has(KEY, 1, 0) && s.has(KEY, 1, 2) && s.has(KEY, 1, 3))
  t.is(await s.evict(() => s.bytes <= 0, false), 1, 'the kept ones stay')
  t.true(s.has(KEY, 1, 2) && s.has(KEY, 1, 3))
  t.is(await s.evict(() => s.bytes <= 0, true), 2)
  t.is(s.bytes, 0)
  t.deepEqual(s.keys(), [])
})

test('chunks are found again after a restart; stray and second-version files are not', async t => {
  const { dir, open } = await chunkStore(t)
  const s = await open()
  await s.put(KEY, 3, 0, body(Buffer.alloc(10, 9)), 10)
  await s.put(KEY, 3, 2, body(Buffer.alloc(4, 8)), 4)
  const { writeFile } = await import('node:fs/promises')
  await writeFile(join(dir, 'chunks', '1024', 'garbage'), 'x')
  await writeFile(join(dir, 'chunks', '1024', `${KEY}@2@1`), 'older')
  const again = await open()
  t.is(again.bytes, 14)
  t.is(again.versionOf(KEY), 3)
  t.true((await readChunk(again, 3, 2))!.equals(Buffer.alloc(4, 8)))
  t.deepEqual((await readdir(join(dir, 'chunks', '1024'))).sort(), [`${KEY}@3@0`, `${KEY}@3@2`])
  await again.drop(KEY)
  t.is(again.bytes, 0)
  t.deepEqual(await readdir(join(dir, 'chunks', '1024')), [])
})

test('chunks of another size (the cache was resized) are not kept; the size follows the cache', async t => {
  const { dir, open } = await chunkStore(t)
  const s = await open(1024)
  await s.put(KEY, 3, 0, body(Buffer.alloc(10)), 10)
  const resized = await open(2048)
  t.is(resized.bytes, 0)
  t.false(resized.has(KEY, 3, 0))
  t.deepEqual(await readdir(join(dir, 'chunks')), ['2048'])
  t.is(chunkSizeFor(10 * 2 ** 30), 4 * 2 ** 20)
  t.is(chunkSizeFor(16 * 2 ** 20), 2 ** 20)
  t.is(chunkSizeFor(4 * 2 ** 20), 256 * 1024)
  t.is(chunkSizeFor(100), 64 * 1024)
})
