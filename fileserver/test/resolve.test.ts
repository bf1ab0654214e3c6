import test from 'ava'
import { compareVv, type VnodeStatus } from '@afs-ts/common'
import { covers } from '../src/resolve.ts'

const status = (vv: Record<string, number>, history: string[]): VnodeStatus => ({
  fid: { volume: 1, vnode: 8, unique: 1 }, type: 'file', mode: 0o100644, uid: 0, gid: 0, nlink: 1, size: 0,
  atimeMs: 0, mtimeMs: 0, ctimeMs: 0, dataVersion: 1, vv, sid: history[history.length - 1], history,
})

test('version vectors compare as equal, dominating, dominated or incomparable; absent members count 0', t => {
  t.is(compareVv({ a: 1, b: 2 }, { b: 2, a: 1 }), 'equal')
  t.is(compareVv({ a: 1 }, { a: 1, b: 0 }), 'equal')
  t.is(compareVv({ a: 2, b: 1 }, { a: 1, b: 1 }), 'dominates')
  t.is(compareVv({ a: 1 }, { a: 1, b: 1 }), 'dominated')
  t.is(compareVv({ a: 2, b: 1 }, { a: 1, b: 2 }), 'incomparable')
  t.is(compareVv(undefined, {}), 'equal')
})

test('a version covers another when its vector dominates, or when it took every update the other remembers', t => {
  // Dominance by vector.
  t.true(covers(status({ a: 2, b: 1 }, ['c', 'x']), status({ a: 1, b: 1 }, ['c'])))
  // A member took the create after its client gave up (counted alone, no COP2): the other holds it and more.
  t.true(covers(status({ a: 2 }, ['create', 'store']), status({ b: 1 }, ['create'])))
  t.false(covers(status({ b: 1 }, ['create']), status({ a: 2 }, ['create', 'store'])))
  // Each took a write the other did not: neither covers, a server/server conflict.
  t.false(covers(status({ a: 3, b: 2 }, ['c', 'common', 'A']), status({ a: 2, b: 3 }, ['c', 'common', 'B'])))
  t.false(covers(status({ a: 2, b: 3 }, ['c', 'common', 'B']), status({ a: 3, b: 2 }, ['c', 'common', 'A'])))
  // The same updates counted differently (a lost COP2): each covers the other.
  t.true(covers(status({ a: 1 }, ['u']), status({ b: 1 }, ['u'])))
  t.true(covers(status({ b: 1 }, ['u']), status({ a: 1 }, ['u'])))
  // Nothing remembered: only the vectors speak.
  t.false(covers(status({ a: 1 }, []), status({ b: 1 }, [])))
})
