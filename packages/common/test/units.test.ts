import test from 'ava'
import { parseSize, parseHostPort, formatSize } from '../src/units.ts'
import { parseFid, fidKey } from '../src/fid.ts'
import { NAME_TOO_LONG_MESSAGE, requests } from '../src/protocol.ts'

test('sizes', t => {
  t.is(parseSize('10G'), 10 * 2 ** 30)
  t.is(parseSize('512M'), 512 * 2 ** 20)
  t.is(parseSize('1.5KiB'), 1536)
  t.is(parseSize('123'), 123)
  t.throws(() => parseSize('lots'), { message: /not a size/ })
  t.is(formatSize(1536), '1.5 KiB')
})

test('host:port', t => {
  t.deepEqual(parseHostPort('127.0.0.1:7000'), { host: '127.0.0.1', port: 7000 })
  t.deepEqual(parseHostPort('[::1]:80'), { host: '::1', port: 80 })
  t.throws(() => parseHostPort('nohost'))
  t.throws(() => parseHostPort('h:99999'))
})

test('fids', t => {
  t.is(fidKey(parseFid('536870912.5.1')), '536870912.5.1')
  t.throws(() => parseFid('1.2'))
})

test('names in requests are checked', t => {
  const dir = { volume: 1, vnode: 1, unique: 1 }
  for (const name of ['', '.', '..', 'a/b', 'nul\0', 'x'.repeat(256)]) {
    t.false(requests.create.safeParse({ dir, name, mode: 0o644, uid: 0, gid: 0 }).success, JSON.stringify(name))
  }
  t.true(requests.create.safeParse({ dir, name: 'ok ünïcode', mode: 0o644, uid: 0, gid: 0 }).success)
  // A name too long says so (the server answers ENAMETOOLONG for it, EINVAL for the others).
  const long = requests.create.safeParse({ dir, name: 'é'.repeat(128), mode: 0o644, uid: 0, gid: 0 })
  t.deepEqual(long.error?.issues.map(i => i.message), [NAME_TOO_LONG_MESSAGE])
  t.false(requests.fetchStatus.safeParse({ fid: { volume: -1, vnode: 1, unique: 1 } }).success)
})
