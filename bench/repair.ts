// Repair benchmark, run by hand: `node --import tsx bench/repair.ts` (as root, with /dev/fuse).
// N files changed offline on one client and on the server by another: how long
// reintegration takes to keep N conflicts (both versions and the ancestor on disk),
// then `afs repair list`, `resolve --all --merge-auto` (three-way merges) and
// `resolve --all --keep local`, against writing the same files to local disk.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { controlCall } from '@afs-ts/tools'
import { Stack, afs, cell, eventually } from '../tests/helpers/cell.ts'

const N = Number(process.env.N ?? 500)
const LINES = Number(process.env.LINES ?? 200)

const text = (i: number, edit: (l: number) => string | null) => Array.from({ length: LINES }, (_, l) => edit(l) ?? `line ${l} of file ${i}\n`).join('')

function timed (fn: () => void): number {
  const t = process.hrtime.bigint()
  fn()
  return Number(process.hrtime.bigint() - t) / 1e9
}

async function timedAsync (fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint()
  await fn()
  return Number(process.hrtime.bigint() - t) / 1e9
}

async function main (): Promise<void> {
  const stack = new Stack()
  try {
    const { clients: [a, b] } = await cell(stack, 2)
    // Half the files in m/ (to be merged), half in k/ (to be kept).
    const dir = (c: { cellPath: string }, i?: number) => join(c.cellPath, i === undefined || i % 2 === 0 ? 'm' : 'k', i === undefined ? '' : `f${i}.txt`)
    const k = (c: { cellPath: string }) => join(c.cellPath, 'k')
    mkdirSync(dir(a))
    mkdirSync(k(a))
    for (let i = 0; i < N; i++) writeFileSync(dir(a, i), text(i, () => null))
    for (let i = 0; i < N; i++) readFileSync(dir(a, i))
    readdirSync(dir(a))
    readdirSync(k(a))
    const local = mkdtempSync(join(tmpdir(), 'afs-bench-'))
    const baseline = timed(() => { for (let i = 0; i < N; i++) writeFileSync(join(local, `f${i}.txt`), text(i, () => null)) })
    rmSync(local, { recursive: true, force: true })

    await afs(['disconnect', '--cache', a.cache])
    // Here the first line changes, there the last: every conflict merges cleanly.
    for (let i = 0; i < N; i++) writeFileSync(dir(a, i), text(i, l => l === 0 ? `first line, changed here ${i}\n` : null))
    for (let i = 0; i < N; i++) writeFileSync(dir(b, i), text(i, l => l === LINES - 1 ? `last line, changed there ${i}\n` : null))
    type Report = { cml: { records: number }, conflicts: unknown[], reintegration: { running: unknown[] } }
    const reint = await timedAsync(async () => {
      await afs(['reconnect', '--cache', a.cache])
      await eventually(async () => { const r = await controlCall(a.cache, 'status') as unknown as Report; return r.cml.records === 0 && r.reintegration.running.length === 0 }, 600_000)
    })
    const kept = ((await controlCall(a.cache, 'status')) as unknown as Report).conflicts.length
    let listed = 0
    const list = await timedAsync(async () => { listed = JSON.parse((await afs(['repair', 'list', '--json', '--cache', a.cache])).stdout).length })
    const merge = await timedAsync(() => afs(['repair', 'resolve', '--all', '--merge-auto', '--prefix', dir(a), '--cache', a.cache]))
    const merged = N - JSON.parse((await afs(['repair', 'list', '--json', '--cache', a.cache])).stdout).length
    const keep = await timedAsync(() => afs(['repair', 'resolve', '--all', '--keep', 'local', '--cache', a.cache]))
    const left = JSON.parse((await afs(['repair', 'list', '--json', '--cache', a.cache])).stdout).length
    const ms = (s: number, n: number) => `${(s * 1000 / Math.max(1, n)).toFixed(1)} ms each`
    console.log(`${N} files of ${LINES} lines (${(Buffer.byteLength(text(0, () => null)) / 1024).toFixed(1)} KiB); local-disk write of all: ${(baseline * 1000).toFixed(0)} ms (${ms(baseline, N)})`)
    console.log(`reintegration keeping ${kept} conflicts: ${reint.toFixed(1)} s (${ms(reint, kept)}; ${(reint / baseline).toFixed(0)}x the local write)`)
    console.log(`afs repair list --json of ${listed}: ${(list * 1000).toFixed(0)} ms`)
    console.log(`resolve --all --merge-auto of ${merged} (three-way merge + conditional store): ${merge.toFixed(1)} s (${ms(merge, merged)})`)
    console.log(`resolve --all --keep local of ${N - merged - left} (conditional store): ${keep.toFixed(1)} s (${ms(keep, N - merged)}); ${left} left open`)
  } finally { await stack.unwind() }
}

await main()
