// The native pieces load (npm 11 does not run their install scripts) and the project's
// fuse-native patch is in place and built.
import test from 'ava'
import { createRequire } from 'node:module'
import { existsSync, readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { ROOT } from './helpers/cell.ts'

const require = createRequire(import.meta.url)

test('lmdb, msgpackr (with its native extension) and fuse-native load', t => {
  const lmdb = require('lmdb')
  t.is(typeof lmdb.open, 'function')
  const { pack, unpack } = require('msgpackr')
  t.deepEqual(unpack(pack({ a: [1, 'x'] })), { a: [1, 'x'] })
  t.notThrows(() => require('msgpackr-extract'))
  const Fuse = require('fuse-native')
  t.is(typeof Fuse, 'function')
})

test('the patched fuse-native binding is the one that loads', t => {
  const js = readFileSync(join(ROOT, 'node_modules', 'fuse-native', 'index.js'), 'utf8')
  t.regex(js, /afs-ts patch/)
  const binding = require(join(ROOT, 'node_modules', 'fuse-native', 'build', 'Release', 'fuse.node'))
  t.is(typeof binding.fuse_native_caller, 'function', 'the binding exports the caller accessor of the patch')
})

test('the afs command runs compiled (setup builds it), and from the sources with the same answers', async t => {
  const dist = join(ROOT, 'tools', 'dist', 'cli.mjs')
  t.true(existsSync(dist), 'setup built tools/dist')
  const run = (env: Record<string, string>, ...args: string[]) => execFileSync(process.execPath, [join(ROOT, 'tools', 'bin', 'afs.js'), ...args], { env: { ...process.env, ...env }, encoding: 'utf8' })
  t.is(run({}, '--help'), run({ AFS_FROM_SOURCES: '1' }, '--help'))
  t.is(run({}, 'vos', '--help'), run({ AFS_FROM_SOURCES: '1' }, 'vos', '--help'))
  t.regex(run({}, 'repair', '--help'), /conflicts found by reintegration/)
})
