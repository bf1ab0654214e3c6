// What `tar x` does to each file: create, write, then fchown, fchmod and futimens on the
// open file before close. Those attributes go with the file's store at close, so each
// file costs two requests, and every attribute still reaches the server (and, when the
// server is gone at close, the log).
import test from 'ava'
import { execFileSync } from 'node:child_process'
import { closeSync, fchmodSync, fchownSync, fstatSync, futimesSync, mkdirSync, openSync, statSync, writeFileSync, writeSync, utimesSync, chmodSync, chownSync } from 'node:fs'
import { join } from 'node:path'
import { Stack, afsOk, cell, drained, status, tempDir } from './helpers/cell.ts'

test.serial('tar x: each file is a create and a store; its mode, owner and times arrive with it', async t => {
  const stack = new Stack()
  try {
    const { clients: [writer, reader] } = await cell(stack, 2)
    const src = await tempDir('afs-tar-src-')
    stack.defer(src)
    const N = 40
    mkdirSync(join(src, 'tree'))
    for (let i = 0; i < N; i++) {
      const f = join(src, 'tree', `f${i}`)
      writeFileSync(f, `file ${i}\n`)
      chmodSync(f, i % 2 ? 0o640 : 0o755)
      chownSync(f, 65534, 65534)
      utimesSync(f, new Date('2001-02-03T04:05:06Z'), new Date(Date.UTC(2002, 0, 1 + i)))
    }
    const tarball = join(src, 'tree.tar')
    execFileSync('tar', ['cf', tarball, '-C', src, 'tree'])
    mkdirSync(join(writer.cellPath, 'x'))
    const before = (await status(writer)).counters.rpcs
    execFileSync('tar', ['xf', tarball, '-C', join(writer.cellPath, 'x')])
    const rpcs = (await status(writer)).counters.rpcs - before
    // A create and a store a file; the directory (its create, its attributes) and a few lookups besides.
    t.true(rpcs <= 2 * N + 10, `${rpcs} requests for ${N} files`)
    t.log(`${rpcs} requests for ${N} files`)
    for (let i = 0; i < N; i++) {
      const s = statSync(join(reader.cellPath, 'x', 'tree', `f${i}`))
      t.is(s.mode & 0o7777, i % 2 ? 0o640 : 0o755)
      t.is(s.uid, 65534)
      t.is(s.gid, 65534)
      t.is(s.mtime.toISOString(), new Date(Date.UTC(2002, 0, 1 + i)).toISOString())
    }
  } finally { await stack.unwind() }
})

test.serial('attributes set on a file open for writing are shown at once, and reach the log when its server is gone at close', async t => {
  const stack = new Stack()
  try {
    const { clients: [writer, reader] } = await cell(stack, 2)
    const f = join(writer.cellPath, 'held')
    const fd = openSync(f, 'w')
    writeSync(fd, 'contents\n')
    fchmodSync(fd, 0o600)
    fchownSync(fd, 65534, 65534)
    futimesSync(fd, new Date('2010-01-01T00:00:00Z'), new Date('2011-01-01T00:00:00Z'))
    t.is(fstatSync(fd).mode & 0o7777, 0o600, 'the change is seen on this client before close')
    t.is(statSync(f).uid, 65534)
    await afsOk(['disconnect', '--cache', writer.cache])
    closeSync(fd)
    await afsOk(['reconnect', '--cache', writer.cache])
    t.true(await drained(writer))
    const s = statSync(join(reader.cellPath, 'held'))
    t.is(s.mode & 0o7777, 0o600)
    t.is(s.uid, 65534)
    t.is(s.mtime.toISOString(), '2011-01-01T00:00:00.000Z')
    t.is(s.size, 9)
  } finally { await stack.unwind() }
})

test.serial('a change time shown while attributes were held is the one the file keeps once stored', async t => {
  const stack = new Stack()
  try {
    const { clients: [writer, reader] } = await cell(stack, 2)
    const f = join(writer.cellPath, 'ctime')
    const fd = openSync(f, 'w')
    writeSync(fd, 'x')
    await new Promise(resolve => setTimeout(resolve, 50))
    fchmodSync(fd, 0o640)
    const shown = fstatSync(fd).ctimeMs
    closeSync(fd)
    // (After the kernel's attribute timeout: what the server has now.)
    await new Promise(resolve => setTimeout(resolve, 1500))
    t.is(statSync(f).ctimeMs, shown)
    t.is(statSync(join(reader.cellPath, 'ctime')).ctimeMs, shown)
  } finally { await stack.unwind() }
})
