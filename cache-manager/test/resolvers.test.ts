import test from 'ava'
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Resolvers } from '../src/repair/resolvers.ts'
import type { CacheManager } from '../src/cache-manager.ts'
import type { Repairer } from '../src/repair/repairer.ts'
import type { ConflictRecord } from '../src/repair/conflict.ts'

/** Resolvers need only the cache directory and the open conflicts to be matched and kept. */
async function resolvers (t: { teardown (fn: () => Promise<void>): void }) {
  const cacheDir = await mkdtemp(join(tmpdir(), 'afs-resolvers-'))
  t.teardown(() => rm(cacheDir, { recursive: true, force: true }))
  const cm = { opts: { cacheDir }, cml: { conflicts: () => [] } } as unknown as CacheManager
  const make = () => new Resolvers(cm, null as unknown as Repairer)
  return { cacheDir, make }
}

const conflictAt = (path: string, kind: ConflictRecord['kind'] = 'update/update') =>
  ({ path, name: path.slice(path.lastIndexOf('/') + 1), kind }) as ConflictRecord

test('a pattern without a slash matches names, with one the whole path; kinds filter; the first match wins', async t => {
  const { make } = await resolvers(t)
  const r = make()
  await r.add({ pattern: '*.ics', command: 'ics-merge %L %S > %O' })
  await r.add({ pattern: '/cell/notes/**/*.md', command: 'merge-auto', kinds: ['update/update'] })
  await r.add({ pattern: '*', command: 'fallback' })
  t.is(r.match(conflictAt('/cell/cal/work.ics'))?.command, 'ics-merge %L %S > %O')
  t.is(r.match(conflictAt('/cell/notes/a/b/todo.md'))?.command, 'merge-auto')
  t.is(r.match(conflictAt('/cell/notes/a/b/todo.md', 'name/name'))?.command, 'fallback', 'another kind goes on to the next resolver')
  t.is(r.match(conflictAt('/cell/other/todo.md'))?.command, 'fallback')
  t.is(r.match(conflictAt('/cell/x/.hidden'))?.command, 'fallback', 'dot files match too')
})

test('resolvers are kept in resolvers.json and read back; a damaged file runs none and says so', async t => {
  const { cacheDir, make } = await resolvers(t)
  const first = make()
  await first.add({ pattern: '*.md', command: 'merge-auto' })
  await first.add({ pattern: '*.md', command: 'my-merge %B %L %S > %O' })
  t.deepEqual(first.all(), [{ pattern: '*.md', command: 'my-merge %B %L %S > %O' }], 'one resolver per pattern: the newer replaces')
  const again = make()
  await again.load()
  t.deepEqual(again.all(), first.all())
  t.true(await again.remove('*.md'))
  t.false(await again.remove('*.md'))
  t.deepEqual(JSON.parse(await readFile(join(cacheDir, 'resolvers.json'), 'utf8')), [])
  await writeFile(join(cacheDir, 'resolvers.json'), '{ not json')
  const damaged = make()
  await damaged.load()
  t.deepEqual(damaged.all(), [])
  await writeFile(join(cacheDir, 'resolvers.json'), JSON.stringify([{ pattern: '', command: 'x' }]))
  await damaged.load()
  t.deepEqual(damaged.all(), [])
})
