// Two clients on one server, connected: session semantics and callbacks, through real mounts.
import test from 'ava'
import { readFileSync, writeFileSync, statSync, readdirSync, openSync, closeSync, writeSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { Stack, cell, status } from './helpers/cell.ts'
import { KERNEL_ATTR_TIMEOUT_S } from '@afs-ts/cache-manager'

test('a closed write on one client is read on the other, whose cached copy a callback break invalidates', async t => {
  const stack = new Stack()
  try {
    const { clients: [a, b] } = await cell(stack, 2)
    const fa = join(a.cellPath, 'shared.txt')
    const fb = join(b.cellPath, 'shared.txt')
    writeFileSync(fa, 'version one\n')
    t.is(readFileSync(fb, 'utf8'), 'version one\n')
    const before = (await status(b)).counters
    writeFileSync(fa, 'version two, longer\n')
    const after = (await status(b)).counters
    t.true(after.callbackBreaks > before.callbackBreaks, 'b received a callback break before a\'s close returned')
    // The break reaches b's cache manager, not b's kernel: the kernel trusts the size it
    // holds for KERNEL_ATTR_TIMEOUT_S (libfuse2's path API cannot be told to drop it).
    await new Promise(resolve => setTimeout(resolve, KERNEL_ATTR_TIMEOUT_S * 1000 + 100))
    t.is(readFileSync(fb, 'utf8'), 'version two, longer\n')
    t.true((await status(b)).counters.fetches > after.fetches, 'b refetched the new version')
  } finally { await stack.unwind() }
})

test('with valid callbacks, stat, ls and open+read of cached objects send no RPC', async t => {
  const stack = new Stack()
  try {
    const { clients: [a] } = await cell(stack, 1)
    mkdirSync(join(a.cellPath, 'dir'))
    for (let i = 0; i < 20; i++) writeFileSync(join(a.cellPath, 'dir', `f${i}`), `file ${i}\n`)
    for (let i = 0; i < 20; i++) readFileSync(join(a.cellPath, 'dir', `f${i}`))
    const before = (await status(a)).counters
    for (let round = 0; round < 10; round++) {
      t.is(readdirSync(join(a.cellPath, 'dir')).length, 20)
      for (let i = 0; i < 20; i++) {
        statSync(join(a.cellPath, 'dir', `f${i}`))
        t.is(readFileSync(join(a.cellPath, 'dir', `f${i}`), 'utf8'), `file ${i}\n`)
      }
    }
    const after = (await status(a)).counters
    t.is(after.rpcs, before.rpcs)
    t.is(after.fetches, before.fetches)
  } finally { await stack.unwind() }
})

test('concurrent writers: the last close wins and nobody reads a torn file', async t => {
  const stack = new Stack()
  try {
    const { clients: [a, b] } = await cell(stack, 2)
    const size = 4 * 1024 * 1024
    const fa = openSync(join(a.cellPath, 'race.bin'), 'w')
    const fb = openSync(join(b.cellPath, 'race.bin'), 'w')
    writeSync(fa, Buffer.alloc(size, 'a'))
    writeSync(fb, Buffer.alloc(size, 'b'))
    closeSync(fa)
    closeSync(fb) // b closes last
    for (const c of [a, b]) {
      const data = readFileSync(join(c.cellPath, 'race.bin'))
      t.is(data.length, size)
      t.true(data.every(x => x === 0x62), `${c.mount} sees b's whole file`)
    }
  } finally { await stack.unwind() }
})
