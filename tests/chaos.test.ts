// The no-lost-update guard: seeded random runs of real servers (one; two with the tree on
// the second; or three with the tree replicated on all) and cache managers with faults
// between operations (see helpers/chaos). A few fixed seeds and one fresh one, printed
// with the whole history when a run finds a silent loss, a divergence or a false
// conflict. `bench/chaos.ts` runs the same harness long.
import test from 'ava'
import { formatReport, runChaos } from './helpers/chaos/run.ts'

const OPS = 200
const fresh = Number(process.env.CHAOS_SEED ?? Date.now() % 1_000_000)
const seeds = process.env.CHAOS_SEED ? [fresh] : [1, 2, 3, fresh]
/** Seeds 1, 4, 7…: one server; 2, 5, 8…: the tree on a second; 3, 6, 9…: the tree replicated on three. */
const serversFor = (seed: number) => ([3, 1, 2] as const)[seed % 3]

for (const seed of seeds) {
  test.serial(`chaos seed ${seed}${seed === fresh && !process.env.CHAOS_SEED ? ' (fresh)' : ''}: nothing a client saw succeed is lost, every view converges`, async t => {
    const r = await runChaos({ seed, ops: OPS, clients: seed % 3 === 2 ? 3 : 2, servers: serversFor(seed) })
    t.log(formatReport({ ...r, history: [] }).split('\n').slice(0, 2).join('\n'))
    if (r.losses.length + r.divergences.length > 0) t.log(formatReport(r))
    else for (const f of [...r.falseConflicts, ...r.misplaced]) t.log(`reported, not failing: ${f}`)
    t.deepEqual(r.divergences, [], `seed ${seed}: views diverge (CHAOS_SEED=${seed} draws the same run)`)
    t.deepEqual(r.losses, [], `seed ${seed}: silent losses (CHAOS_SEED=${seed} draws the same run)`)
  })
}
