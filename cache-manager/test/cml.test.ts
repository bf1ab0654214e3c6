// The client modification log: durability and each row of the cancellation table.
import test from 'ava'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { CmlRecordBody, Fid } from '@afs-ts/common'
import { ClientModifyLog, type CmlRecord } from '../src/cml.ts'

const dir: Fid = { volume: 9, vnode: 1, unique: 1 }
const a: Fid = { volume: 9, vnode: 5, unique: 1 }
const b: Fid = { volume: 9, vnode: 6, unique: 1 }

async function log (t: { teardown (fn: () => Promise<void>): void }) {
  const d = await mkdtemp(join(tmpdir(), 'afs-cml-'))
  let cml = new ClientModifyLog(d)
  t.teardown(async () => { await cml.close().catch(() => {}); await rm(d, { recursive: true, force: true }) })
  return {
    cml: () => cml,
    reopen: async () => { await cml.close(); cml = new ClientModifyLog(d); return cml },
  }
}

const names = new Map<string, string>([['9.5.1', 'a'], ['9.6.1', 'b']])
const render = (cml: ClientModifyLog) => cml.render((r: CmlRecord) => {
  const k = `${r.body.fid.volume}.${r.body.fid.vnode}.${r.body.fid.unique}`
  return names.get(k) ?? ('name' in r.body ? r.body.name : k)
})
const store = (fid: Fid, size = 1): CmlRecordBody => ({ op: 'store', fid, base: 3, size, mtimeMs: 1 })
const setattr = (fid: Fid, attrs: Record<string, number>): CmlRecordBody => ({ op: 'setattr', fid, base: 3, attrs })

test('row 1: a store cancels earlier stores and times-only setattrs of the same file', async t => {
  const { cml } = await log(t)
  await cml().append('c', store(a))
  await cml().append('c', setattr(a, { mtimeMs: 5 }))
  await cml().append('c', setattr(a, { mode: 0o600 }))
  await cml().append('c', store(b))
  await cml().append('c', store(a, 7))
  t.is(render(cml()), 'setattr a; store b; store a')
  t.deepEqual(cml().pending(), { records: 3, bytes: 8 })
})

test('row 2: a setattr folds earlier setattrs of the same object into itself', async t => {
  const { cml } = await log(t)
  await cml().append('c', setattr(a, { mode: 0o600 }))
  await cml().append('c', setattr(a, { uid: 7 }))
  t.is(render(cml()), 'setattr a')
  const r = cml().all()[0].body
  t.deepEqual(r.op === 'setattr' && r.attrs, { mode: 0o600, uid: 7 })
})

test('row 3: create … remove of an object born in the log cancels its whole history', async t => {
  const { cml } = await log(t)
  const local = await cml().newLocalFid(9)
  await cml().append('c', store(b))
  await cml().append('c', { op: 'create', dir, name: 'tmp', fid: local, mode: 0o644, uid: 0, gid: 0 })
  await cml().append('c', store(local))
  await cml().append('c', setattr(local, { mode: 0o600 }))
  await cml().append('c', { op: 'rename', fromDir: dir, fromName: 'tmp', toDir: dir, toName: 'tmp2', fid: local, base: null })
  t.is(cml().size, 5)
  await cml().append('c', { op: 'remove', dir, name: 'tmp2', fid: local, base: null })
  t.is(render(cml()), 'store b')
})

test('row 4: the remove of a server object\'s last name is logged and cancels its stores and setattrs', async t => {
  const { cml } = await log(t)
  await cml().append('c', store(a))
  await cml().append('c', setattr(a, { mode: 0o600 }))
  await cml().append('c', { op: 'rename', fromDir: dir, fromName: 'a', toDir: dir, toName: 'a2', fid: a, base: 3 })
  await cml().append('c', store(b))
  await cml().append('c', { op: 'remove', dir, name: 'a2', fid: a, base: 3 })
  t.is(render(cml()), 'rename a; store b; remove a')
})

test('a remove of one of several hard links cancels nothing', async t => {
  const { cml } = await log(t)
  await cml().append('c', store(a))
  await cml().append('c', { op: 'remove', dir, name: 'a', fid: a, base: 3 }, { lastName: false })
  t.is(render(cml()), 'store a; remove a')
})

test('the remove of an object whose create is being replayed is logged, never cancelled away', async t => {
  const { cml } = await log(t)
  const local = cml().newLocalFid(9)
  await cml().append('c', { op: 'create', dir, name: 'tmp', fid: local, mode: 0o644, uid: 0, gid: 0 })
  await cml().freeze(cml().all())
  await cml().append('c', { op: 'remove', dir, name: 'tmp', fid: local, base: null })
  t.is(render(cml()), 'create tmp; remove tmp')
})

test('a replayed create gives every later record naming its object the server fid, on disk too', async t => {
  const { cml, reopen } = await log(t)
  const local = cml().newLocalFid(9)
  const server: Fid = { volume: 9, vnode: 40, unique: 1 }
  await cml().append('c', { op: 'mkdir', dir, name: 'd', fid: local, mode: 0o755, uid: 0, gid: 0 })
  const child = cml().newLocalFid(9)
  await cml().append('c', { op: 'create', dir: local, name: 'f', fid: child, mode: 0o644, uid: 0, gid: 0 })
  await cml().append('c', { op: 'rename', fromDir: local, fromName: 'f', toDir: dir, toName: 'g', fid: child, base: null })
  const [made] = cml().all()
  await cml().freeze([made])
  cml().done(made.seq, { created: { local, server } })
  const names = (l: ClientModifyLog) => l.all().map(r => JSON.stringify(r.body))
  t.true(names(cml()).every(b => !b.includes('"vnode":1,"unique":0')))
  t.true(names(cml())[0].includes('"dir":{"volume":9,"vnode":40,"unique":1}'))
  t.deepEqual(cml().mentioning('c', local), [])
  t.is(cml().mentioning('c', server).length, 2)
  await cml().flushDone()
  const again = await reopen()
  t.is(again.size, 2)
  t.deepEqual(names(again), names(cml()))
  t.deepEqual(again.mapped(local), server)
})

test('frozen records (being replayed) are never cancelled', async t => {
  const { cml } = await log(t)
  await cml().append('c', store(a))
  await cml().freeze(cml().all())
  await cml().append('c', store(a, 2))
  t.is(render(cml()), 'store a; store a')
})

test('records survive a reopen; replayed ones go, moving later bases forward', async t => {
  const { cml, reopen } = await log(t)
  await cml().append('c', store(a))
  await cml().append('c', setattr(a, { mode: 0o640 }))
  await cml().append('other', store(b))
  const again = await reopen()
  t.is(render(again), 'store a; setattr a; store b')
  t.true(again.hasRecordsFor('other'))
  const [first] = again.all()
  await again.done(first.seq, { rebase: { fid: a, from: 3, to: 4 } })
  const rest = again.all()
  t.is(rest.length, 2)
  t.is(rest[0].body.op === 'setattr' ? rest[0].body.base : -1, 4)
  t.false(again.references('c', b))
  t.true(again.references('other', b))
})

test('a change logged under the number it was sent with goes before those logged meanwhile, and is never cancelled or folded', async t => {
  const { cml, reopen } = await log(t)
  const sent = await cml().reserve()
  await cml().append('c', setattr(a, { mode: 0o600 })) // logged while the sent one still waited
  await cml().append('c', setattr(a, { uid: 5 }), { sent })
  await cml().append('c', store(a))
  await cml().append('c', setattr(a, { gid: 7 }))
  const seqs = (x: ClientModifyLog) => x.all().map(r => [r.seq === sent ? 'sent' : 'new', r.body.op, r.maybeApplied === true].join(' '))
  // The sent setattr is neither folded into the later ones nor cancelled by the store; the other setattrs fold as ever.
  t.deepEqual(seqs(cml()), ['sent setattr true', 'new store false', 'new setattr false'])
  t.deepEqual(seqs(await reopen()), ['sent setattr true', 'new store false', 'new setattr false'], 'the same order on disk')
  const last = cml().all().at(-1)!.body
  t.deepEqual(last.op === 'setattr' ? last.attrs : null, { mode: 0o600, gid: 7 })
})

test('numbers are never used twice, across a reopen too', async t => {
  const { cml, reopen } = await log(t)
  const used = new Set<number>()
  for (let i = 0; i < 5; i++) used.add(await cml().reserve())
  used.add(await cml().append('c', store(a)))
  const again = await reopen()
  for (let i = 0; i < 3; i++) {
    const n = await again.reserve()
    t.false(used.has(n), `number ${n} again after a reopen`)
    used.add(n)
  }
  const next = await again.append('c', store(b))
  t.false(used.has(next))
  t.is(used.size, 9)
})
