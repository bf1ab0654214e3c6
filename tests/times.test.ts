// Times to the nanosecond, before 1970 and after 2038, through the server, another
// client, a cache-manager restart, an offline replay and cp -p (the binding patch
// carries signed seconds and nanoseconds).
import test from 'ava'
import { execFile } from 'node:child_process'
import { readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Stack, afsOk, cell, drained, eventually, startClient, tempDir } from './helpers/cell.ts'

const run = promisify(execFile)

/** `touch -d` text, and the nanoseconds since the epoch it stands for. */
function at (iso: string, nsec: number): { text: string, ns: bigint } {
  const ns = BigInt(Date.parse(iso) / 1000) * 1_000_000_000n + BigInt(nsec)
  const abs = ns < 0n ? -ns : ns
  return { text: `@${ns < 0n ? '-' : ''}${abs / 1_000_000_000n}.${String(abs % 1_000_000_000n).padStart(9, '0')}`, ns }
}

const TIMES = {
  fine: at('2001-02-03T04:05:06Z', 123_456_789),
  future: at('2100-01-01T00:00:00Z', 1),
  past: at('1960-06-15T12:00:00Z', 500_000_000),
  beforeEpoch: at('1969-12-31T23:59:59Z', 999_999_999),
}

async function touch (flag: '-m' | '-a', t: { text: string }, path: string): Promise<void> {
  await run('touch', [flag, '-d', t.text, path])
}

const mtimeNs = (path: string) => statSync(path, { bigint: true }).mtimeNs
const atimeNs = (path: string) => statSync(path, { bigint: true }).atimeNs


test.serial('nanosecond, far-past and far-future times round-trip through the server, a restart and an offline replay', async t => {
  const stack = new Stack()
  try {
    const { server, clients: [a, b] } = await cell(stack, 2)
    for (const name of Object.keys(TIMES)) writeFileSync(join(a.cellPath, name), name)
    for (const [name, time] of Object.entries(TIMES)) await touch('-m', time, join(a.cellPath, name))
    await touch('-a', TIMES.beforeEpoch, join(a.cellPath, 'fine'))
    const check = (root: string, where: string) => {
      for (const [name, time] of Object.entries(TIMES)) t.is(mtimeNs(join(root, name)), time.ns, `${name}'s mtime ${where}`)
      t.is(atimeNs(join(root, 'fine')), TIMES.beforeEpoch.ns, `the atime ${where}`)
    }
    check(a.cellPath, 'where it was set')
    check(b.cellPath, 'on another client')

    await a.stop()
    const again = await startClient([server.address], { cache: a.cache, mount: a.mount })
    stack.push(() => again.stop())
    check(again.cellPath, 'after a cache-manager restart')

    readdirSync(again.cellPath)
    await afsOk(['disconnect', '--cache', again.cache])
    const later = at('2222-02-22T22:22:22Z', 222_222_222)
    await touch('-m', later, join(again.cellPath, 'fine'))
    t.is(mtimeNs(join(again.cellPath, 'fine')), later.ns, 'set offline')
    await afsOk(['reconnect', '--cache', again.cache])
    t.true(await drained(again), 'the log drains')
    t.true(await eventually(() => mtimeNs(join(b.cellPath, 'fine')) === later.ns, 5000), 'the replayed time reaches the other client')
    t.is(atimeNs(join(b.cellPath, 'fine')), TIMES.beforeEpoch.ns, 'the atime stays')
  } finally { await stack.unwind() }
})

test.serial('cp -p keeps nanoseconds; a write after utimensat sets a new time', async t => {
  const stack = new Stack()
  try {
    const { clients: [a] } = await cell(stack, 1)
    const local = await tempDir('afs-times-')
    stack.defer(local)
    const src = join(local, 'src')
    writeFileSync(src, 'copied\n')
    await touch('-m', TIMES.fine, src)
    await run('cp', ['-p', src, join(a.cellPath, 'copy')])
    t.is(mtimeNs(join(a.cellPath, 'copy')), TIMES.fine.ns)
    const before = Date.now()
    writeFileSync(join(a.cellPath, 'copy'), 'rewritten\n')
    const ms = Number(mtimeNs(join(a.cellPath, 'copy')) / 1_000_000n)
    t.true(ms >= before - 1000, 'the write set the mtime to now')
  } finally { await stack.unwind() }
})

test.serial('ctime changes with each change and only then; a new link shows the new nlink and ctime at once, the old name within the attribute timeout', async t => {
  const stack = new Stack()
  try {
    const { clients: [a] } = await cell(stack, 1)
    const f = join(a.cellPath, 'f')
    const ctime = () => statSync(f, { bigint: true }).ctimeNs
    const pause = () => new Promise(resolve => setTimeout(resolve, 20))
    writeFileSync(f, 'one\n')
    const written = ctime()
    await new Promise(resolve => setTimeout(resolve, 1200)) // past the kernel's attribute cache
    t.is(ctime(), written, 'the store at close does not change it again')
    await run('cat', [f])
    t.is(ctime(), written, 'a read does not change it')
    const steps: Array<[string, () => Promise<unknown>]> = [
      ['chmod', () => run('chmod', ['600', f])],
      ['chown', () => run('chown', ['65534', f])],
      ['utimes', () => touch('-m', TIMES.fine, f)],
      ['truncate', () => run('truncate', ['-s', '1', f])],
      ['write', () => run('sh', ['-c', 'echo more >> "$1"', 'sh', f])],
      ['rename', () => run('mv', [f, f + '.moved']).then(() => run('mv', [f + '.moved', f]))],
    ]
    let last = ctime()
    for (const [what, change] of steps) {
      await pause()
      await change()
      const now = ctime()
      t.true(now > last, `${what} changes ctime at once (${last} → ${now})`)
      last = now
    }
    await pause()
    await run('ln', [f, join(a.cellPath, 'g')])
    const g = statSync(join(a.cellPath, 'g'), { bigint: true })
    t.is(g.nlink, 2n, 'the new name shows both links at once')
    t.true(g.ctimeNs > last, 'the new name shows the link\'s ctime at once')
    // The old name is another kernel inode (libfuse 2's path API): it follows within the attribute timeout.
    t.true(await eventually(() => statSync(f, { bigint: true }).nlink === 2n, 1500), 'the old name shows both links')
    t.is(statSync(f, { bigint: true }).ctimeNs, g.ctimeNs)
  } finally { await stack.unwind() }
})
