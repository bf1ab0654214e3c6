import test from 'ava'
import { CallbackTable, callbackLifetimeMs } from '../src/callback-table.ts'

test('breaking a promise notifies every holder but the writer, once', t => {
  const cb = new CallbackTable()
  cb.grant('f', 'a', 0)
  cb.grant('f', 'b', 0)
  cb.grant('f', 'c', 0)
  const breaks = cb.breakFor(['f'], 'a', 1)
  t.deepEqual([...breaks.keys()].sort(), ['b', 'c'])
  t.deepEqual(cb.breakFor(['f'], 'a', 1).size, 0)
  t.true(cb.holds('f', 'a', 1))
})

test('expired promises are dropped without a break', t => {
  const cb = new CallbackTable()
  const { expiresAt } = cb.grant('f', 'a', 0)
  t.is(cb.breakFor(['f'], null, expiresAt + 1).size, 0)
  t.is(cb.size, 0)
})

test('lifetime shrinks as more clients hold a promise on the same object', t => {
  const cb = new CallbackTable()
  const lifetimes = Array.from({ length: 300 }, (_, i) => cb.grant('hot', `c${i}`, 0).expiresAt)
  t.is(lifetimes[0], 2 * 3_600_000)
  t.true(lifetimes[299] <= 5 * 60_000)
  t.true(callbackLifetimeMs(3) > callbackLifetimeMs(100))
})

test('a full table breaks the least recently active client\'s promises first', t => {
  const cb = new CallbackTable(3)
  cb.grant('x', 'old', 0)
  cb.grant('y', 'mid', 0)
  cb.grant('z', 'new', 0)
  const { evicted } = cb.grant('w', 'new', 0)
  t.deepEqual([...evicted], [['old', ['x']]])
  t.is(cb.size, 3)
  t.false(cb.holds('x', 'old', 1))
})

test('an unreachable client loses all its promises', t => {
  const cb = new CallbackTable()
  cb.grant('x', 'gone', 0)
  cb.grant('y', 'gone', 0)
  cb.grant('y', 'here', 0)
  cb.dropClient('gone')
  t.is(cb.size, 1)
  t.deepEqual([...cb.breakFor(['x', 'y'], null, 1).keys()], ['here'])
})
