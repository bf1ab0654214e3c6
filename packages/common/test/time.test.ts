import test from 'ava'
import fc from 'fast-check'
import { fromTimespec, toTimespec } from '../src/time.ts'

test('a timespec and milliseconds-plus-nanoseconds convert both ways, before 1970 too', t => {
  t.deepEqual(fromTimespec({ sec: -1, nsec: 999_999_999 }), { ms: -1, ns: 999_999 })
  t.deepEqual(toTimespec(-1, 999_999), { sec: -1, nsec: 999_999_999 })
  t.deepEqual(fromTimespec({ sec: 4_102_444_800, nsec: 1 }), { ms: 4_102_444_800_000, ns: 1 })
  fc.assert(fc.property(fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), fc.integer({ min: 0, max: 999_999_999 }), (sec, nsec) => {
    const p = fromTimespec({ sec, nsec })
    t.true(p.ns >= 0 && p.ns < 1e6)
    t.deepEqual(toTimespec(p.ms, p.ns), { sec, nsec })
  }))
})
