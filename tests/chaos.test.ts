// The no-lost-update guard: seeded random runs of real servers (one, or two with the tree
// on the second) and cache managers with faults between operations (see helpers/chaos). A few fixed seeds and one fresh one,
// printed with the whole history when a run finds a silent loss, a divergence or a
// false conflict. `bench/chaos.ts` runs the same harness long.
import test from 'ava'
import { formatReport, runChaos } from './helpers/chaos/run.ts'

const OPS = 200
const fresh = Number(process.env.CHAOS_SEED ?? Date.now() % 1_000_000)
const seeds = process.env.CHAOS_SEED ? [fresh] : [1, 2, fresh]
/**
 * Odd seeds: one server; even seeds: the tree on a second. (`bench/chaos.ts --servers 3`
 * runs the tree replicated on three; it still finds members that end apart, see issue 11.)
 */
const serversFor = (seed: number) => (seed % 2 === 0 ? 2 : 1) as 1 | 2

for (const seed of seeds) {
  test.serial(`chaos seed ${seed}${seed === fresh && !process.env.CHAOS_SEED ? ' (fresh)' : ''}: nothing a client saw succeed is lost, every view converges`, async t => {
    const r = await runChaos({ seed, ops: OPS, clients: seed % 2 === 0 ? 3 : 2, servers: serversFor(seed) })
    t.log(formatReport({ ...r, history: [] }).split('\n').slice(0, 2).join('\n'))
    if (r.losses.length + r.divergences.length > 0) t.log(formatReport(r))
    else for (const f of [...r.falseConflicts, ...r.misplaced]) t.log(`reported, not failing: ${f}`)
    t.deepEqual(r.divergences, [], `seed ${seed}: views diverge (CHAOS_SEED=${seed} draws the same run)`)
    t.deepEqual(r.losses, [], `seed ${seed}: silent losses (CHAOS_SEED=${seed} draws the same run)`)
  })
}
