// Locks and extended attributes, run by hand: `node --import tsx bench/locks.ts [--n 2000]`
// (as root, with /dev/fuse). Prints lock+unlock pairs/s (fcntl and flock, uncontended)
// and xattr gets/s on a cached file, through the mount and on local disk in the same run,
// and the RPCs the xattr gets cost (none: attributes come with the cached status).
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Stack, cell, status, tempDir } from '../tests/helpers/cell.ts'

const { values } = parseArgs({ options: { n: { type: 'string', default: '2000' } } })
const N = Number(values.n)

/** Runs `body` N times in one Python process on `path`; returns operations per second. */
function rate (path: string, body: string): number {
  const code = `import fcntl, os, sys, time\nfd = os.open(sys.argv[1], os.O_RDWR)\nn = int(sys.argv[2])\nt = time.perf_counter()\nfor _ in range(n):\n  ${body}\nprint(n / (time.perf_counter() - t))`
  return Number(execFileSync('python3', ['-c', code, path, String(N)], { encoding: 'utf8' }).trim())
}

const WORK: Array<[string, string]> = [
  ['fcntl lock+unlock pairs/s', 'fcntl.lockf(fd, fcntl.LOCK_EX); fcntl.lockf(fd, fcntl.LOCK_UN)'],
  ['flock lock+unlock pairs/s', 'fcntl.flock(fd, fcntl.LOCK_EX); fcntl.flock(fd, fcntl.LOCK_UN)'],
  ['xattr gets/s (cached file)', 'os.getxattr(sys.argv[1], "user.bench")'],
]

const stack = new Stack()
try {
  const { clients: [a] } = await cell(stack, 1)
  const local = await tempDir('afs-bench-locks-')
  stack.defer(local)
  const files = { afs: join(a.cellPath, 'f'), local: join(local, 'f') }
  for (const f of Object.values(files)) {
    writeFileSync(f, 'x')
    execFileSync('setfattr', ['-n', 'user.bench', '-v', 'value', f])
  }
  console.log(`${N} operations each; afs-ts ÷ local disk`)
  for (const [work, body] of WORK) {
    const before = (await status(a)).counters.rpcs
    const afs = rate(files.afs, body)
    const rpcs = (await status(a)).counters.rpcs - before
    const disk = rate(files.local, body)
    console.log(`${work.padEnd(28)} afs-ts ${afs.toFixed(0).padStart(7)}   local ${disk.toFixed(0).padStart(8)}   ratio ${(afs / disk).toFixed(3)}   RPCs ${rpcs}`)
  }
} finally { await stack.unwind() }
