// What every benchmark measures beside afs-ts in the same run: local disk, and a plain
// fuse-native passthrough of a local directory (the floor of any Node FUSE file system).
import { spawn, spawnSync } from 'node:child_process'
import { openSync, readSync, closeSync, writeFileSync, rmSync, writeSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { tempDir, isMounted, type Stack } from '../tests/helpers/cell.ts'

export const MiB = 1024 * 1024
const here = resolve(import.meta.dirname)

export function dropCaches (): void {
  try { writeFileSync('/proc/sys/vm/drop_caches', '3') } catch { /* not root: warm server caches */ }
}

export function readAll (path: string): number {
  const fd = openSync(path, 'r')
  const buf = Buffer.allocUnsafe(MiB)
  let total = 0
  for (let n; (n = readSync(fd, buf, 0, MiB, null)) > 0;) total += n
  closeSync(fd)
  return total
}

export function time (fn: () => unknown): number {
  const t = process.hrtime.bigint()
  fn()
  return Number(process.hrtime.bigint() - t) / 1e9
}

export function writeFileOf (path: string, bytes: number): void {
  const fd = openSync(path, 'w')
  const chunk = Buffer.alloc(MiB, 0x5a)
  for (let left = bytes; left > 0; left -= MiB) writeSync(fd, chunk, 0, Math.min(MiB, left))
  closeSync(fd)
}

export async function passthrough (stack: Stack): Promise<string> {
  const src = await tempDir('afs-bench-src-')
  const mnt = await tempDir('afs-bench-pt-')
  const proc = spawn(process.execPath, ['--import', 'tsx', join(here, 'passthrough.mts'), src, mnt], { stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise<void>(res => createInterface({ input: proc.stdout! }).on('line', l => { if (l.includes('ready')) res() }))
  stack.push(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM')
      await new Promise(r => proc.once('exit', r))
    }
    // (One that died leaves its mount behind.)
    if (await isMounted(mnt)) spawnSync('fusermount', ['-u', '-z', mnt])
    rmSync(mnt, { recursive: true, force: true })
    rmSync(src, { recursive: true, force: true })
  })
  return mnt
}

