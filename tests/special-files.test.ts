// FIFOs, UNIX-domain sockets and device nodes as objects of a volume: made on one client
// and seen on another, renamed, hard-linked, removed, made offline and replayed; a FIFO
// and a socket pass data between two processes through their /afs path.
import test from 'ava'
import { execFile } from 'node:child_process'
import { linkSync, lstatSync, readdirSync, renameSync, rmSync, statSync, type Stats } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Stack, afsOk, cell, drained, eventually, type Client } from './helpers/cell.ts'

const run = promisify(execFile)
const DEV_NULL = statSync('/dev/null').rdev


/** Makes a FIFO, a character and a block device node under `dir` with the system's tools. */
async function makeNodes (dir: string): Promise<void> {
  await run('mkfifo', ['-m', '640', join(dir, 'fifo')])
  await run('mknod', ['-m', '600', join(dir, 'null'), 'c', '1', '3'])
  await run('mknod', ['-m', '660', join(dir, 'loop'), 'b', '7', '0'])
}

function seen (t: { true: (v: boolean, m?: string) => void, is: (a: unknown, b: unknown, m?: string) => void }, dir: string): void {
  const f = lstatSync(join(dir, 'fifo'))
  t.true(f.isFIFO(), 'a FIFO')
  t.is(f.mode & 0o7777, 0o640)
  const c = lstatSync(join(dir, 'null'))
  t.true(c.isCharacterDevice(), 'a character device')
  t.is(c.rdev, DEV_NULL, 'its device is 1,3')
  t.is(c.mode & 0o7777, 0o600)
  const b = lstatSync(join(dir, 'loop'))
  t.true(b.isBlockDevice(), 'a block device')
  t.is(b.rdev, 7 << 8, 'its device is 7,0')
}

const maybe = (path: string): Stats | null => { try { return lstatSync(path) } catch { return null } }

test.serial('FIFOs, sockets and device nodes made on one client are seen on the other, renamed, linked and removed', async t => {
  const stack = new Stack()
  try {
    const { clients: [a, b] } = await cell(stack, 2, {}, true)
    await makeNodes(a.cellPath)
    const server = createServer(s => s.end('over the socket\n'))
    await new Promise<void>(resolve => server.listen(join(a.cellPath, 'sock'), resolve))
    try {
      t.true(await eventually(() => maybe(join(b.cellPath, 'sock'))?.isSocket() === true, 3000), 'B sees the socket')
      seen(t, b.cellPath)
      // The socket's data path is the machine's own: a client on A's mount reaches the server.
      const got = await new Promise<string>((resolve, reject) => {
        let text = ''
        createConnection(join(a.cellPath, 'sock')).on('data', d => { text += d }).on('end', () => resolve(text)).on('error', reject)
      })
      t.is(got, 'over the socket\n')
    } finally { await new Promise(resolve => server.close(resolve)) }

    renameSync(join(a.cellPath, 'fifo'), join(a.cellPath, 'fifo2'))
    linkSync(join(a.cellPath, 'null'), join(a.cellPath, 'null2'))
    t.true(await eventually(() => maybe(join(b.cellPath, 'fifo2'))?.isFIFO() === true && maybe(join(b.cellPath, 'fifo')) === null, 3000), 'the rename is seen')
    t.true(await eventually(() => maybe(join(b.cellPath, 'null2'))?.nlink === 2, 3000), 'the link is seen')
    t.is(lstatSync(join(b.cellPath, 'null2')).ino, lstatSync(join(b.cellPath, 'null')).ino)
    t.is(maybe(join(b.cellPath, 'sock')), null, 'the socket went when its server closed (unlinked through A)')
    for (const n of ['fifo2', 'null', 'null2', 'loop']) rmSync(join(b.cellPath, n))
    t.true(await eventually(() => ['fifo2', 'null', 'loop'].every(n => maybe(join(a.cellPath, n)) === null), 3000), 'the removes are seen')
  } finally { await stack.unwind() }
})

test.serial('a FIFO in /afs passes data between two processes', async t => {
  const stack = new Stack()
  try {
    const { clients: [a] } = await cell(stack, 1, {}, true)
    const fifo = join(a.cellPath, 'pipe')
    await run('mkfifo', [fifo])
    const { stdout } = await run('sh', ['-c', `printf 'through the pipe' > "$1" & cat "$1"; wait`, 'sh', fifo], { timeout: 10_000 })
    t.is(stdout, 'through the pipe')
  } finally { await stack.unwind() }
})

test.serial('special files made offline are replayed to the server', async t => {
  const stack = new Stack()
  try {
    const { clients: [a, b] } = await cell(stack, 2, {}, true)
    readdirSync(a.cellPath) // cached, so that names can be made in it offline
    await afsOk(['disconnect', '--cache', a.cache])
    await makeNodes(a.cellPath)
    seen(t, a.cellPath)
    await afsOk(['reconnect', '--cache', a.cache])
    t.true(await drained(a), 'the log drains')
    t.true(await eventually(() => maybe(join(b.cellPath, 'loop')) !== null, 3000))
    seen(t, b.cellPath)
  } finally { await stack.unwind() }
})

test.serial('device nodes are root\'s to make; anyone makes a FIFO', async t => {
  const stack = new Stack()
  try {
    const { clients: [a] } = await cell(stack, 1, {}, true) as { clients: Client[] }
    await run('chmod', ['777', a.cellPath])
    const nobody = (...cmd: string[]) => run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...cmd])
    const err = await nobody('mknod', join(a.cellPath, 'dev'), 'c', '1', '3').then(() => null, (e: { stderr: string }) => e.stderr)
    t.regex(err ?? 'it succeeded', /Operation not permitted/)
    await nobody('mkfifo', join(a.cellPath, 'mine'))
    t.is(lstatSync(join(a.cellPath, 'mine')).uid, 65534, 'anyone makes a FIFO, and owns it')
  } finally { await stack.unwind() }
})
