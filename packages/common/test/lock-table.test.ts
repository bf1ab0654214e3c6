import test from 'ava'
import { LockTable, type HeldLock, type LockRequest } from '../src/lock-table.ts'

const req = (client: string, kind: 'read' | 'write', start = 0, end = Infinity, extra: Partial<LockRequest> = {}): LockRequest =>
  ({ fid: '1.2.3', client, owner: 'o', family: 'posix', kind, start, end, ...extra })

/** Whether a promise has settled (after the microtasks queued so far). */
async function settled (p: Promise<unknown>): Promise<boolean> {
  let done = false
  void p.then(() => { done = true }, () => { done = true })
  await new Promise(resolve => setImmediate(resolve))
  return done
}

test('read locks share, a write lock excludes, byte ranges and the two families are apart', t => {
  const locks = new LockTable()
  t.true('granted' in locks.acquire(req('a', 'read')))
  t.true('granted' in locks.acquire(req('b', 'read')), 'two readers')
  const w = locks.acquire(req('c', 'write', 10, 20))
  t.true('blocked' in w, 'a writer waits for the readers')
  t.is(('blocked' in w) && w.blocked.client, 'a', 'and is told the first lock in its way')
  t.true('granted' in locks.acquire(req('c', 'write', 0, 10, { fid: 'other' })), 'another file')
  t.true('granted' in locks.acquire(req('c', 'write', 0, Infinity, { family: 'flock' })), 'flock locks are a family of their own')
  t.true('blocked' in locks.acquire(req('d', 'read', 0, Infinity, { family: 'flock' })))
  locks.release(req('a', 'read'))
  locks.release(req('b', 'read'))
  t.true('granted' in locks.acquire(req('c', 'write', 10, 20)))
  t.true('granted' in locks.acquire(req('d', 'read', 20, 30)), 'a range just past a write lock')
  t.throws(() => locks.acquire(req('e', 'read', 5, 5)), { message: /start < end/ })
})

test('an owner\'s own locks are replaced and split, as fcntl does; unlock takes a part', t => {
  const locks = new LockTable()
  locks.acquire(req('a', 'write', 0, 100))
  locks.acquire(req('a', 'read', 20, 30))
  const ranges = (client: string) => locks.heldBy(client).map(l => `${l.kind} ${l.start}-${l.end}`).sort()
  t.deepEqual(ranges('a'), ['read 20-30', 'write 0-20', 'write 30-100'])
  t.true('granted' in locks.acquire(req('b', 'read', 25, 26)), 'another reader in the part made a read lock')
  locks.release(req('a', 'write', 0, 50))
  t.deepEqual(ranges('a'), ['write 50-100'])
  locks.acquire(req('a', 'read', 0, Infinity, { family: 'flock' }))
  locks.acquire(req('a', 'write', 0, Infinity, { family: 'flock' }))
  t.deepEqual(locks.heldBy('a').filter(l => l.family === 'flock').map(l => l.kind), ['write'], 'one flock lock per owner, converted')
})

test('a waiter watches only the lock in its way, and waiters are served in order', async t => {
  const locks = new LockTable()
  locks.acquire(req('a', 'write', 0, 10))
  locks.acquire(req('b', 'write', 10, 20))
  const first = locks.wait(req('c', 'write', 0, 20))
  const second = locks.wait(req('d', 'write', 0, 20))
  locks.release(req('b', 'write', 10, 20))
  t.false(await settled(first), 'not woken: a lock it does not wait on went')
  locks.release(req('a', 'write', 0, 10))
  t.true(await settled(first), 'woken when its predecessor goes')
  t.false(await settled(second), 'the next waits on the lock just granted')
  const got = await first
  locks.release({ ...got })
  t.is((await second).client, 'd')
})

test('generations fence: a lock granted after a lease ran out carries a higher one; the old holder holds nothing', async t => {
  const locks = new LockTable(1000)
  const old = locks.acquire(req('a', 'write'), 0)
  t.true('granted' in old)
  const g = ('granted' in old ? old.granted : null as unknown as HeldLock).generation
  t.true(locks.holds('1.2.3', 'a', g))
  const waiting = locks.wait(req('b', 'write'), 500)
  locks.renew('b', 500)
  t.deepEqual(locks.expire(999), [], 'not yet')
  t.deepEqual(locks.expire(1000), ['a'], 'a stopped renewing')
  const next = await waiting
  t.true(next.generation > g)
  t.false(locks.holds('1.2.3', 'a', g), 'a write under the old lock is refused')
  t.true(locks.holds('1.2.3', 'b', next.generation))
  const waiter = locks.wait(req('c', 'read'))
  locks.dropClient('c')
  await t.throwsAsync(waiter, { message: /lost its locks/ })
})
