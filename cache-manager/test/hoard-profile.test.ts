import test from 'ava'
import { parsePriority } from '../src/hoard/hoard-db.ts'
import { parseProfile, ProfileError } from '../src/hoard/profile.ts'

test('priorities and expansions', t => {
  t.deepEqual(parsePriority('600:d+'), { priority: 600, expansion: 'd+' })
  t.deepEqual(parsePriority('10'), { priority: 10, expansion: 'none' })
  t.deepEqual(parsePriority(':c'), { priority: 500, expansion: 'c' })
  t.deepEqual(parsePriority(undefined), { priority: 500, expansion: 'none' })
  for (const bad of ['0', '1001', 'x', '5:e', '5:', ':']) t.throws(() => parsePriority(bad), undefined, bad)
})

test('a profile parses whole, or reports every bad line and yields nothing', t => {
  const toPath = (p: string) => { if (!p.startsWith('/afs/')) throw new Error(`${p} is not under the mount /afs`); return p.slice(4) }
  t.deepEqual(parseProfile('# c\nadd /afs/c/a 700:d+  # trailing\n\nremove /afs/c/b\n', 'p', toPath).map(l => [l.line, l.op, l.path, l.priority, l.expansion]),
    [[2, 'add', '/c/a', 700, 'd+'], [4, 'remove', '/c/b', 0, 'none']])
  const err = t.throws(() => parseProfile('add /afs/c/a\nadd /tmp/x\nzap /afs/y\nadd /afs/c 2000\n', 'work', toPath)) as ProfileError
  t.true(err instanceof ProfileError)
  t.deepEqual(err.problems.map(p => p.split(':')[0]), ['line 2', 'line 3', 'line 4'])
})
