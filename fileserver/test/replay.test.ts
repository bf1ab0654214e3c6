// Each numbered change of a client is applied once, whether it arrives as a connected
// request, as a replayed log record, or as both (the sender gave up waiting and logged it).
import test from 'ava'
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
