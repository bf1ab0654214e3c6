// The randomized fault harness, by hand and long:
//   node --import tsx bench/chaos.ts --ops 10000 --seed N [--clients 3] [--servers 2|3] [--verbose]
// Prints operations, faults, silent losses, divergences, conflicts and false conflicts;
// the same seed replays the same run. Exits 1 when anything was lost or diverged.
import { parseArgs } from 'node:util'
import { formatReport, runChaos } from '../tests/helpers/chaos/run.ts'

const { values } = parseArgs({
  options: {
    ops: { type: 'string', default: '1000' },
    seed: { type: 'string', default: String(Date.now() % 1_000_000) },
    clients: { type: 'string', default: '2' },
    servers: { type: 'string', default: '1' },
    verbose: { type: 'boolean', default: false },
  },
})
const num = (name: string, v: string, min: number, max: number) => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < min || n > max) { console.error(`--${name}: a whole number from ${min} to ${max}, not ${v}`); process.exit(2) }
  return n
}
const ops = num('ops', values.ops, 1, 10_000_000)
const seed = num('seed', values.seed, 0, 2 ** 32 - 1)
const clients = num('clients', values.clients, 2, 3)
const servers = num('servers', values.servers, 1, 3) as 1 | 2 | 3
let done = 0
const report = await runChaos({
  seed, ops, clients, servers,
  log: line => {
    if (values.verbose) console.log(line)
    else if (!line.startsWith('fault') && ++done % 500 === 0) console.error(`${done}/${ops} operations`)
  },
})
console.log(formatReport(report))
process.exit(report.losses.length + report.divergences.length > 0 ? 1 : 0)
