// A/B benchmark of two checkouts of afs-ts, run by hand (as root, with /dev/fuse):
//   node --import tsx bench/ab.ts DIR_A DIR_B [--rounds N]
// Each checkout brings up its own cell (one server, a writer and a reader client, from
// its own code: this file must be in both), and the same workloads run on the two in
// turn, round after round, so that whatever else the machine does falls on both alike.
// Prints the medians and B/A. (`node --import tsx bench/ab.ts hold` is the half that
// holds one cell up until its stdin closes.)
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, mkdirSync, openSync, readFileSync, readSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { MiB, dropCaches, readAll, time, writeFileOf } from './baselines.ts'

interface Mounts { writer: string, reader: string }

async function hold (): Promise<void> {
  const { Stack, cell } = await import('../tests/helpers/cell.ts')
  const stack = new Stack()
  try {
    const { clients: [writer, reader] } = await cell(stack, 2, { cacheSize: '4G' })
    console.log(JSON.stringify({ writer: writer.cellPath, reader: reader.cellPath }))
    await new Promise(res => process.stdin.on('end', res).resume())
  } finally { await stack.unwind() }
}

/** Starts `hold` in checkout `dir`; resolves with its mounts once its cell is up. */
async function start (dir: string): Promise<{ proc: ChildProcess, mounts: Mounts }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(dir, 'bench', 'ab.ts'), 'hold'], { cwd: dir, stdio: ['pipe', 'pipe', 'inherit'] })
  const mounts = await new Promise<Mounts>((res, rej) => {
    proc.once('exit', code => rej(new Error(`the cell of ${dir} did not come up (exit ${code})`)))
    createInterface({ input: proc.stdout! }).on('line', l => { if (l.startsWith('{')) res(JSON.parse(l) as Mounts) })
  })
  return { proc, mounts }
}

type Work = (m: Mounts, round: number) => number
const FILES = 5000
const works: Record<string, { unit: string, run: Work }> = {
  'cold open+read 256 MiB': {
    unit: 'MB/s',
    run: (m, i) => {
      writeFileOf(join(m.writer, `big${i}`), 256 * MiB)
      statSync(join(m.reader, `big${i}`)) // (its status known: the open only fetches)
      dropCaches()
      const mbps = 256 / time(() => readAll(join(m.reader, `big${i}`)))
      unlinkSync(join(m.writer, `big${i}`))
      return mbps
    },
  },
  'cold open+read of the first byte of 256 MiB': {
    unit: 'ms',
    run: (m, i) => {
      writeFileOf(join(m.writer, `first${i}`), 256 * MiB)
      statSync(join(m.reader, `first${i}`))
      dropCaches()
      const buf = Buffer.alloc(1)
      const ms = 1000 * time(() => { const fd = openSync(join(m.reader, `first${i}`), 'r'); readSync(fd, buf, 0, 1, 0); closeSync(fd) })
      unlinkSync(join(m.writer, `first${i}`))
      return ms
    },
  },
  '10,000 open+read+close 4 KiB, cached': {
    unit: 'ops/s',
    run: m => {
      const f = join(m.reader, 'small')
      readFileSync(f)
      return 10_000 / time(() => { for (let i = 0; i < 10_000; i++) readFileSync(f) })
    },
  },
  [`create ${FILES} files`]: {
    unit: 'ops/s',
    run: (m, i) => {
      const d = join(m.writer, `meta${i}`)
      mkdirSync(d)
      return FILES / time(() => { for (let k = 0; k < FILES; k++) closeSync(openSync(join(d, `n${k}`), 'w')) })
    },
  },
}

async function compare (a: string, b: string, rounds: number): Promise<void> {
  const cells = [await start(a), await start(b)]
  try {
    for (const { mounts } of cells) writeFileSync(join(mounts.writer, 'small'), Buffer.alloc(4096, 1))
    const got = new Map<string, number[][]>(Object.keys(works).map(k => [k, [[], []]]))
    for (let i = 0; i < rounds; i++) {
      for (const [name, w] of Object.entries(works)) {
        // Alternate who goes first, so neither always runs right after the other's work.
        const order = i % 2 === 0 ? [0, 1] : [1, 0]
        for (const c of order) got.get(name)![c].push(w.run(cells[c].mounts, i))
      }
      process.stderr.write(`round ${i + 1}/${rounds}\n`)
    }
    console.log(`A: ${a}\nB: ${b}\n\n${'work'.padEnd(40)} ${'A'.padStart(10)} ${'B'.padStart(10)}  unit    B/A`)
    for (const [name, [xa, xb]] of got) {
      const ma = median(xa)
      const mb = median(xb)
      console.log(`${name.padEnd(40)} ${ma.toFixed(1).padStart(10)} ${mb.toFixed(1).padStart(10)}  ${works[name].unit.padEnd(7)} ${(mb / ma).toFixed(2)}`)
    }
  } finally {
    for (const { proc } of cells) {
      proc.stdin!.end()
      await new Promise(res => proc.once('exit', res))
    }
  }
}

function median (xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

const { positionals, values } = parseArgs({ allowPositionals: true, options: { rounds: { type: 'string', default: '7' } } })
if (positionals[0] === 'hold') await hold()
else if (positionals.length === 2) await compare(resolve(positionals[0]), resolve(positionals[1]), Number(values.rounds))
else {
  console.error('usage: node --import tsx bench/ab.ts DIR_A DIR_B [--rounds N]')
  process.exit(2)
}
