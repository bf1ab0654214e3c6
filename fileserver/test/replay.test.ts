// Each numbered change of a client is applied once, whether it arrives as a connected
// request, as a replayed log record, or as both (the sender gave up waiting and logged it).
import test from 'ava'
import { existsSync, readdirSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { rootFid, type AfsError } from '@afs-ts/common'
import { VolumeStore } from '../src/volume-store.ts'
import { Replayer } from '../src/replay.ts'

const VOL = 7
const root = rootFid(VOL)

async function setup (t: { teardown (fn: () => Promise<void>): void }) {
  const dir = await mkdtemp(join(tmpdir(), 'afs-replay-'))
  const s = await VolumeStore.open(dir)
  await s.createVolume(VOL, 'v', 0)
  t.teardown(async () => { await s.close().catch(() => {}); await rm(dir, { recursive: true, force: true }) })
  return { s, r: new Replayer(s) }
}
const made = (name: string) => ({ op: 'create' as const, dir: root, name, fid: { volume: VOL, vnode: 1, unique: 0 }, mode: 0o644, uid: 0, gid: 0 })

test('a connected change replayed later under its number is answered with its result, not applied again', async t => {
  const { s, r } = await setup(t)
  const c = await r.connected({ client: 'A', seq: 5 }, VOL, {}, u => s.create(root, 'x', { type: 'file', mode: 0o644, uid: 0, gid: 0 }, u))
  // Someone renames it away; the replay of change 5 must not make a second x.
  await s.rename(root, 'x', root, 'y')
  const again = await r.apply('A', 5, made('x'), null)
  t.true(again.reply.duplicate)
  t.deepEqual(again.reply.status?.fid, c.status.fid, 'the result names the object the change made')
  t.is(s.lookup(root, 'x'), null)
  t.deepEqual(s.lookup(root, 'y'), c.status.fid)
})

test('a connected request arriving after its record was replayed changes nothing', async t => {
  const { s, r } = await setup(t)
  await r.apply('A', 9, made('x'), null)
  await s.rename(root, 'x', root, 'z')
  const e = await t.throwsAsync(r.connected({ client: 'A', seq: 9 }, VOL, {}, u => s.create(root, 'x', { type: 'file', mode: 0o644, uid: 0, gid: 0 }, u))) as AfsError
  t.is(e.code, 'STALE')
  t.is(s.lookup(root, 'x'), null)
})

test('numbers apply in any order, per client; the removal a rename stands for is known by its own number', async t => {
  const { s, r } = await setup(t)
  await r.apply('A', 3, made('a'), null)
  await r.apply('B', 3, made('b'), null)
  t.truthy(s.lookup(root, 'b'), 'another client\'s number 3 is another change')
  await r.apply('A', 2, made('c'), null)
  t.truthy(s.lookup(root, 'c'), 'a lower number not yet seen still applies')
  await r.connected({ client: 'A', seq: 11, removeSeq: 10 }, VOL, {}, u => s.rename(root, 'a', root, 'c', u))
  const removal = await r.apply('A', 10, { op: 'remove', dir: root, name: 'c', fid: { volume: VOL, vnode: 99, unique: 1 }, base: null }, null)
  t.true(removal.reply.duplicate)
  t.truthy(s.lookup(root, 'c'), 'the renamed object stays')
})

test('the same number arriving twice at once is applied once', async t => {
  const { s, r } = await setup(t)
  const results = await Promise.allSettled([
    r.connected({ client: 'A', seq: 4 }, VOL, {}, u => s.create(root, 'x', { type: 'file', mode: 0o644, uid: 0, gid: 0 }, u)),
    r.apply('A', 4, made('x'), null),
  ])
  t.is(results[0].status, 'fulfilled')
  t.true(results[1].status === 'fulfilled' && results[1].value.reply.duplicate)
  t.is(s.listDir(root).entries.length, 1)
})

/** A batch's hooks that check nothing and keep nothing. */
const open = { check: () => {}, update: () => ({}), applied: () => {} }
const local = (vnode: number) => ({ volume: VOL, vnode, unique: 0 })
const bytes = (text: string) => new Uint8Array(Buffer.from(text))
/** Offline: mkdir d, create d/f, store f, chmod f (based on the version the store left), rename f to g. */
const offlineWork = () => [
  { seq: 1, record: { op: 'mkdir' as const, dir: root, name: 'd', fid: local(1), mode: 0o755, uid: 0, gid: 0 } },
  { seq: 2, record: { op: 'create' as const, dir: local(1), name: 'f', fid: local(2), mode: 0o644, uid: 0, gid: 0 } },
  { seq: 3, record: { op: 'store' as const, fid: local(2), base: null, size: 5, mtimeMs: 1_000 }, data: bytes('hello') },
  { seq: 4, record: { op: 'setattr' as const, fid: local(2), base: null, attrs: { mode: 0o600 } } },
  { seq: 5, record: { op: 'rename' as const, fromDir: local(1), fromName: 'f', toDir: local(1), toName: 'g', fid: local(2), base: null } },
]

test('a batch applies records that name what earlier ones made, on the versions earlier ones left', async t => {
  const { s, r } = await setup(t)
  const out = await r.applyBatch('A', VOL, offlineWork(), open)
  t.is(out.failed, null)
  t.deepEqual(out.results.map(x => x.duplicate), [false, false, false, false, false])
  const d = s.lookup(root, 'd')!
  const g = s.lookup(d, 'g')!
  t.truthy(g)
  t.is(s.lookup(d, 'f'), null)
  const v = s.get(g)
  t.is(v.mode & 0o777, 0o600, 'the chmod was based on the version the store made')
  t.is(v.size, 5)
  t.deepEqual(out.results[1].status?.fid, g, 'the create\'s reply names the server fid')
})

test('a record of a batch is based on the version an earlier one of its object left', async t => {
  const { s, r } = await setup(t)
  const e = (await s.create(root, 'e', { type: 'file', mode: 0o644, uid: 0, gid: 0 })).status
  const out = await r.applyBatch('A', VOL, [
    { seq: 1, record: { op: 'store', fid: e.fid, base: e.dataVersion, size: 2, mtimeMs: 1_000 }, data: bytes('hi') },
    { seq: 2, record: { op: 'setattr', fid: e.fid, base: e.dataVersion, attrs: { mode: 0o640 } } },
  ], open)
  t.is(out.failed, null, 'the chmod logged after the write is not a conflict with it')
  t.is(s.get(e.fid).mode & 0o777, 0o640)
  t.is(s.get(e.fid).size, 2)
})

test('a batch cut by a crash is sent again: what was applied answers with its results, the rest applies', async t => {
  const { s, r } = await setup(t)
  const work = offlineWork()
  // The server took the first three, then the client died before it heard.
  await r.applyBatch('A', VOL, work.slice(0, 3), open)
  const again = await r.applyBatch('A', VOL, work, open)
  t.is(again.failed, null)
  t.deepEqual(again.results.map(x => x.duplicate), [true, true, true, false, false])
  const d = s.lookup(root, 'd')!
  t.is(s.listDir(root).entries.length, 1, 'no second d')
  t.deepEqual(s.listDir(d).entries.map(e => e[0]), ['g'])
  t.is(s.get(s.lookup(d, 'g')!).mode & 0o777, 0o600)
  const files = existsSync(join(s.blobs.dir, 'vols', String(VOL))) ? readdirSync(join(s.blobs.dir, 'vols', String(VOL))) : []
  const inline = [...s.root.openDB({ name: 'inline-blobs', encoding: 'binary' }).getKeys()]
  t.is(files.length + inline.length, 1, 'the store sent again left no second blob')
})

test('a batch stops at the first record the server refuses and leaves the rest untried', async t => {
  const { s, r } = await setup(t)
  await s.create(root, 'taken', { type: 'file', mode: 0o644, uid: 0, gid: 0 })
  const out = await r.applyBatch('A', VOL, [
    { seq: 1, record: { ...made('a'), fid: local(1) } },
    { seq: 2, record: { ...made('taken'), fid: local(2) } },
    { seq: 3, record: { ...made('c'), fid: local(3) } },
  ], open)
  t.is(out.results.length, 1)
  t.is(out.failed?.seq, 2)
  t.is(out.failed?.error.code, 'CONFLICT')
  t.is(s.lookup(root, 'c'), null, 'the record after the refused one was not tried')
  t.truthy(s.lookup(root, 'a'))
})

test('a batch\'s stores carry their bytes, and only they; every record is of the batch\'s volume', async t => {
  const { r } = await setup(t)
  const work = offlineWork()
  const e1 = await t.throwsAsync(r.applyBatch('A', VOL, [{ ...work[2], data: undefined }], open)) as AfsError
  t.is(e1.code, 'BAD_REQUEST')
  const e2 = await t.throwsAsync(r.applyBatch('A', VOL + 1, work, open)) as AfsError
  t.is(e2.code, 'BAD_REQUEST')
})
