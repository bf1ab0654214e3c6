import test from 'ava'
import { mkdtemp, rm, readdir, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { VolumeStore } from '../src/volume-store.ts'
import { rootFid, MAX_LINKS, type AfsError, type Fid } from '@afs-ts/common'
import { INLINE_BLOB_BYTES } from '../src/blob-store.ts'

const VOL = 7
const root = rootFid(VOL)
const owner = { uid: 1, gid: 2 }

async function store (t: { teardown (fn: () => Promise<void>): void }) {
  const dir = await mkdtemp(join(tmpdir(), 'afs-vs-'))
  const s = await VolumeStore.open(dir)
  await s.createVolume(VOL, 'v', 0)
  t.teardown(async () => { await s.close().catch(() => {}); await rm(dir, { recursive: true, force: true }) })
  return { s, dir }
}
async function * bytes (b: Buffer) { yield b }
/** A file's bytes as the server holds them. */
async function contentsOf (s: VolumeStore, fid: Fid): Promise<Buffer> {
  const { blob } = s.blobOf(fid)
  if (!blob) return Buffer.alloc(0)
  const parts: Buffer[] = []
  for await (const c of await s.blobs.open(fid.volume, blob)) parts.push(c)
  return Buffer.concat(parts)
}

test('create, store, fetch, and data versions', async t => {
  const { s } = await store(t)
  const { status } = await s.create(root, 'a', { type: 'file', mode: 0o644, ...owner })
  t.is(status.dataVersion, 1)
  const after = await s.store(status.fid, bytes(Buffer.from('hello')), 5, { mtimeMs: 1234 })
  t.is(after.dataVersion, 2)
  t.is(after.size, 5)
  t.is(after.mtimeMs, 1234)
  t.is((await contentsOf(s, status.fid)).toString(), 'hello')
  t.is((await t.throwsAsync(s.store(status.fid, bytes(Buffer.from('toolong')), 3)) as AfsError).code, 'INVALID')
  t.is((await contentsOf(s, status.fid)).toString(), 'hello', 'a short or long body changes nothing')
})

test('quota: a store past it fails with QUOTA and changes nothing', async t => {
  const { s } = await store(t)
  await s.setQuota(VOL, 100)
  const { status } = await s.create(root, 'q', { type: 'file', mode: 0o644, ...owner })
  await s.store(status.fid, bytes(Buffer.alloc(60)), 60)
  t.is((await t.throwsAsync(s.store(status.fid, bytes(Buffer.alloc(200)), 200)) as AfsError).code, 'QUOTA')
  t.is(s.status(status.fid).size, 60)
  t.is((await s.statfs(VOL)).usage, 60)
})

test('remove, rmdir, link counts and renames', async t => {
  const { s } = await store(t)
  const d = await s.create(root, 'd', { type: 'dir', mode: 0o755, ...owner })
  const f = await s.create(d.status.fid, 'f', { type: 'file', mode: 0o644, ...owner })
  t.is(s.status(root).nlink, 3)
  await s.link(root, 'hard', f.status.fid)
  t.is(s.status(f.status.fid).nlink, 2)
  t.is((await t.throwsAsync(s.remove(root, 'd', true)) as AfsError).code, 'NOT_EMPTY')
  t.is((await t.throwsAsync(s.remove(root, 'd', false)) as AfsError).code, 'IS_DIR')
  await s.remove(d.status.fid, 'f', false)
  t.is(s.status(f.status.fid).nlink, 1)
  await s.remove(root, 'd', true)
  t.is(s.status(root).nlink, 2)
  const sub = await s.create(root, 'x', { type: 'dir', mode: 0o755, ...owner })
  const inner = await s.create(sub.status.fid, 'y', { type: 'dir', mode: 0o755, ...owner })
  t.is((await t.throwsAsync(s.rename(root, 'x', inner.status.fid, 'z')) as AfsError).code, 'INVALID')
  const r = await s.rename(root, 'hard', sub.status.fid, 'moved')
  t.is(r.replaced, null)
  t.deepEqual(s.lookup(sub.status.fid, 'moved'), f.status.fid)
  t.is(s.lookup(root, 'hard'), null)
  const other = await s.create(root, 'o', { type: 'file', mode: 0o644, ...owner })
  const r2 = await s.rename(root, 'o', sub.status.fid, 'moved')
  t.deepEqual(r2.replaced, { fid: f.status.fid, status: null })
  t.deepEqual(s.lookup(sub.status.fid, 'moved'), other.status.fid)
  t.is((await t.throwsAsync(s.rename(root, 'x', { ...root, volume: 8 }, 'q')) as AfsError).code, 'CROSS_VOLUME')
})

test('directory listings page in name order', async t => {
  const { s } = await store(t)
  for (let i = 0; i < 50; i++) await s.create(root, `n${String(i).padStart(2, '0')}`, { type: 'file', mode: 0o644, ...owner })
  const page = s.listDir(root)
  t.is(page.entries.length, 50)
  t.false(page.more)
  t.deepEqual(s.listDir(root, 'n47').entries.map(e => e[0]), ['n48', 'n49'])
})

test('truncate through setattr keeps a prefix and zero-fills past the end', async t => {
  const { s } = await store(t)
  const { status } = await s.create(root, 't', { type: 'file', mode: 0o644, ...owner })
  await s.store(status.fid, bytes(Buffer.from('abcdef')), 6)
  await s.setattr(status.fid, { size: 3 })
  t.is((await contentsOf(s, status.fid)).toString(), 'abc')
  await s.setattr(status.fid, { size: 5 })
  t.deepEqual(await contentsOf(s, status.fid), Buffer.from('abc\0\0'))
})

test('a blob no record points to (crash between rename and commit) is removed at start', async t => {
  const { s, dir } = await store(t)
  const big = Buffer.alloc(INLINE_BLOB_BYTES + 1, 0x6b)
  const { status } = await s.create(root, 'f', { type: 'file', mode: 0o644, ...owner })
  await s.store(status.fid, bytes(big), big.length)
  const { status: small } = await s.create(root, 'g', { type: 'file', mode: 0o644, ...owner })
  await s.store(small.fid, bytes(Buffer.from('inline')), 6)
  await mkdir(join(dir, 'vols', String(VOL)), { recursive: true })
  await writeFile(join(dir, 'vols', String(VOL), '2.1.deadbeef0000'), 'orphan')
  await writeFile(join(dir, 'tmp', 'half-written'), 'torn')
  const inline = s.root.openDB<Uint8Array, [number, string]>({ name: 'inline-blobs', encoding: 'binary' })
  await inline.put([VOL, '3.1.deadbeef0000~i'], Buffer.from('orphan'))
  await s.close()
  const again = await VolumeStore.open(dir)
  t.teardown(() => again.close())
  t.deepEqual(await readdir(join(dir, 'vols', String(VOL))), [again.get(status.fid).blob])
  t.deepEqual(await readdir(join(dir, 'tmp')), [])
  t.deepEqual(await contentsOf(again, status.fid), big)
  t.is((await contentsOf(again, small.fid)).toString(), 'inline', 'a small file\'s bytes are kept inline')
  t.true(again.get(small.fid).blob?.endsWith('~i'))
  const keys = [...again.root.openDB<Uint8Array, [number, string]>({ name: 'inline-blobs', encoding: 'binary' }).getKeys()]
  t.deepEqual(keys, [[VOL, again.get(small.fid).blob]], 'the inline orphan is gone')
})

test('conditional store and remove change nothing when the object moved on; locate finds every name', async t => {
  const { s } = await store(t)
  const { status } = await s.create(root, 'a', { type: 'file', mode: 0o644, ...owner })
  const v2 = await s.store(status.fid, bytes(Buffer.from('one')), 3, undefined, undefined, { ifVersion: 1 })
  const stale = await t.throwsAsync(s.store(status.fid, bytes(Buffer.from('two')), 3, undefined, undefined, { ifVersion: 1 })) as AfsError
  t.is(stale.code, 'CONFLICT')
  t.is((stale.data as { serverVersion: number }).serverVersion, v2.dataVersion)
  t.is((await contentsOf(s, status.fid)).toString(), 'one')
  const { status: other } = await s.create(root, 'b', { type: 'file', mode: 0o644, ...owner })
  t.is((await t.throwsAsync(s.remove(root, 'a', false, undefined, { ifFid: other.fid })) as AfsError).code, 'CONFLICT')
  t.is((await t.throwsAsync(s.remove(root, 'a', false, undefined, { ifVersion: 1 })) as AfsError).code, 'CONFLICT')
  t.truthy(s.lookup(root, 'a'))
  const d = await s.create(root, 'd', { type: 'dir', mode: 0o755, ...owner })
  await s.link(d.status.fid, 'again', status.fid)
  t.deepEqual(s.locate(status.fid).map(p => p.name).sort(), ['a', 'again'])
  await s.remove(root, 'a', false, undefined, { ifFid: status.fid, ifVersion: v2.dataVersion })
  t.deepEqual(s.locate(status.fid), [{ dir: d.status.fid, name: 'again' }])
})

test('a file takes at most MAX_LINKS names: one more is EMLINK', async t => {
  const { s } = await store(t)
  const { status } = await s.create(root, 'f', { type: 'file', mode: 0o644, ...owner })
  const { status: d } = await s.create(root, 'd', { type: 'dir', mode: 0o755, ...owner })
  const batch = 500
  for (let i = 1; i < MAX_LINKS; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, MAX_LINKS - i) }, (_, j) => s.link(d.fid, `l${i + j}`, status.fid)))
  }
  t.is(s.status(status.fid).nlink, MAX_LINKS)
  t.is((await t.throwsAsync(s.link(d.fid, 'one-more', status.fid)) as AfsError).code, 'TOO_MANY_LINKS')
})

test('user attributes are kept on files and directories only, as Linux keeps them', async t => {
  const { s } = await store(t)
  const { status: fifo } = await s.create(root, 'p', { type: 'fifo', mode: 0o644, ...owner })
  const { status: file } = await s.create(root, 'f', { type: 'file', mode: 0o644, ...owner })
  const v = Buffer.from('x')
  t.is((await t.throwsAsync(s.setxattr(fifo.fid, 'user.k', v, 'either')) as AfsError).code, 'NOT_PERMITTED')
  t.deepEqual(Object.keys((await s.setxattr(fifo.fid, 'trusted.k', v, 'either')).xattrs ?? {}), ['trusted.k'])
  t.deepEqual(Object.keys((await s.setxattr(file.fid, 'user.k', v, 'create')).xattrs ?? {}), ['user.k'])
  t.is((await t.throwsAsync(s.setxattr(file.fid, 'user.k', v, 'create')) as AfsError).code, 'EXISTS')
  t.is((await t.throwsAsync(s.setxattr(file.fid, 'user.none', null, 'replace')) as AfsError).code, 'NO_DATA')
})

test('a replica that takes another member\'s directory but keeps entries the other lacks makes a newer version of its own, for the others to take', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'afs-vs-'))
  const s = await VolumeStore.open(dir)
  t.teardown(async () => { await s.close().catch(() => {}); await rm(dir, { recursive: true, force: true }) })
  await s.createVolume(VOL, 'v', 0, { self: 'me', slot: 0 })
  const { status: mine } = await s.create(root, 'only-here', { type: 'file', mode: 0o644, ...owner })
  const here = s.status(root)
  // The other member's version of the root: one update of its own, and not our entry.
  const theirs = { ...here, vv: { other: 1 }, sid: 'other:1', history: ['other:1'], dataVersion: here.dataVersion + 5 }
  const other = { volume: VOL, vnode: 99, unique: 1 }
  const kept = await s.installDir(theirs, [['from-there', other, 'file']], () => 'keep', f => ({
    vnode: f.vnode, unique: f.unique, type: 'file', mode: 0o644, uid: 0, gid: 0, nlink: 1, size: 0, atimeMs: 0, mtimeMs: 0, ctimeMs: 0, dataVersion: 0, parent: f.vnode, vv: {}, sid: 'stub',
  }))
  t.deepEqual(kept, ['only-here'])
  const after = s.status(root)
  t.deepEqual(s.listAll(root).map(([n]) => n).sort(), ['from-there', 'only-here'])
  t.deepEqual(after.vv, { other: 1, me: 1 }, 'newer than the version taken')
  t.is(after.dataVersion, theirs.dataVersion + 1)
  t.not(after.conflict, true)
  t.true(s.get(mine.fid) !== undefined)
})

test('a move\'s marks: switching is kept on disk until settled; moved away, the volume is no longer kept here', async t => {
  const { s } = await store(t)
  t.is(s.movingTo(VOL), undefined)
  await s.markMoving(VOL, '127.0.0.1:7001')
  t.is(s.movingTo(VOL), '127.0.0.1:7001')
  t.true(s.hasVolume(VOL), 'still kept here while the switch is unsettled')
  await s.markMoving(VOL, undefined)
  t.is(s.movingTo(VOL), undefined, 'settled: it stayed')
  await s.markMoving(VOL, '127.0.0.1:7001')
  await s.markMoved(VOL, '127.0.0.1:7001')
  t.is(s.movingTo(VOL), undefined)
  t.is(s.movedTo(VOL), '127.0.0.1:7001')
  t.false(s.hasVolume(VOL))
  t.is(s.volumeCount(), 0)
})

test('a blob\'s range: the bytes of that part only, none past the end, inline and in a file alike', async t => {
  const { s } = await store(t)
  for (const size of [INLINE_BLOB_BYTES, 3 * 1024 * 1024 + 7]) {
    const data = Buffer.from(Array.from({ length: size }, (_, i) => (i * 31 + (i >> 8)) & 0xff))
    const { status } = await s.create(root, `r${size}`, { type: 'file', mode: 0o644, ...owner })
    await s.store(status.fid, bytes(data), size)
    const { blob } = s.blobOf(status.fid)
    const range = async (offset: number, length: number) => {
      const parts: Buffer[] = []
      for await (const c of await s.blobs.open(VOL, blob!, { offset, length })) parts.push(c)
      return Buffer.concat(parts)
    }
    t.true((await range(0, 100)).equals(data.subarray(0, 100)))
    t.true((await range(size - 10, 1000)).equals(data.subarray(size - 10)), 'cut at the end')
    t.true((await range(1000, 2 * 1024 * 1024)).equals(data.subarray(1000, 1000 + 2 * 1024 * 1024)))
    t.is((await range(size, 10)).length, 0)
  }
})
