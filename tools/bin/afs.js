#!/usr/bin/env node
// The `afs` command: the compiled JavaScript (tools/dist, made by scripts/build.mjs) when
// it is newer than every source file, else the TypeScript sources through tsx.
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

// Servers and cache managers keep many small files' syncs and renames under way at once.
process.env.UV_THREADPOOL_SIZE ??= '16'

const root = join(import.meta.dirname, '..', '..')
const SOURCES = ['tools/src', 'cache-manager/src', 'fileserver/src', 'volumes/src', 'protection/src', 'packages/common/src']

function newest (dir) {
  let t = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs)
  }
  return t
}

function built () {
  try {
    const at = statSync(join(root, 'tools', 'dist', 'cli.mjs')).mtimeMs
    return SOURCES.every(d => newest(join(root, d)) <= at)
  } catch {
    return false
  }
}

if (built() && !process.env.AFS_FROM_SOURCES) {
  await import('../dist/cli.mjs')
} else {
  const { register } = await import('tsx/esm/api')
  register()
  await import('../src/cli.ts')
}
