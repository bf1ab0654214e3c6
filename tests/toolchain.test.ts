// The native pieces load (npm 11 does not run their install scripts) and the project's
// fuse-native patch is in place and built.
import test from 'ava'
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
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
