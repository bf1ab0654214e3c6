// Property: random interleavings of offline changes on one client and online changes on
// another never lose a write — every client's last write to a file is on the server, or
// (for the offline client) kept as the local version of a flagged conflict.
import test from 'ava'
import fc from 'fast-check'
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { controlCall } from '@afs-ts/tools'
import { Stack, cell, eventually } from './helpers/cell.ts'

interface Op { who: 'A' | 'B', file: number, action: 'write' | 'remove' }
const FILES = 3
const opArb = fc.record({ who: fc.constantFrom<'A' | 'B'>('A', 'B'), file: fc.integer({ min: 0, max: FILES - 1 }), action: fc.constantFrom<'write' | 'remove'>('write', 'write', 'remove') })

interface Conflict { path: string, localCopy: string | null }
const note = (m: string) => { if (process.env.PROP_LOG) appendFileSync(process.env.PROP_LOG, m + '\n') }

test('offline and online writes on two clients: none is lost', async t => {
  const stack = new Stack()
  try {
    const { clients: [a, b] } = await cell(stack, 2, { env: { AFS_LOG: 'quiet' } })
    let run = 0
    await fc.assert(fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 8 }), async ops => { try { return await check(ops) } catch (err) { note(`threw: ${(err as Error).stack}`); note(`A root ${JSON.stringify(readdirSync(a.cellPath))}; B root ${JSON.stringify(readdirSync(b.cellPath))}`); note(`A status ${JSON.stringify(await controlCall(a.cache, 'status'))}`); note(a.stderr().slice(-3000)) ; throw err } }), { numRuns: 8, endOnFailure: true, ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED), path: process.env.FC_PATH } : {}) })
    async function check (ops: Op[]): Promise<boolean> {
      const dir = `run${run++}`
      mkdirSync(join(b.cellPath, dir))
      for (let f = 0; f < FILES; f++) writeFileSync(join(b.cellPath, dir, `f${f}`), 'initial\n')
      for (let f = 0; f < FILES; f++) readFileSync(join(a.cellPath, dir, `f${f}`))
      await controlCall(a.cache, 'disconnect', { writeBack: false })
      const last: Record<string, Map<number, string | null>> = { A: new Map(), B: new Map() }
      ops.forEach((op, i) => {
        const path = join((op.who === 'A' ? a : b).cellPath, dir, `f${op.file}`)
        if (op.action === 'write') {
          const text = `${op.who} write ${i}\n`
          writeFileSync(path, text)
          last[op.who].set(op.file, text)
        } else if (existsSync(path)) {
          rmSync(path)
          last[op.who].set(op.file, null)
        }
      })
      await controlCall(a.cache, 'reconnect')
      const synced = await eventually(async () => ((await controlCall(a.cache, 'sync', { waitMs: 0 })) as { pending: { records: number } }).pending.records === 0 &&
        ((await controlCall(a.cache, 'status')) as { volumes: Array<{ state: string }> }).volumes.every(v => v.state === 'connected'), 30_000)
      if (!synced) { note(`${dir}: not reconnected and drained: ${JSON.stringify(await controlCall(a.cache, 'status'))}`); return false }
      const conflicts = await controlCall(a.cache, 'repairList') as Conflict[]
      const server = (f: number) => existsSync(join(b.cellPath, dir, `f${f}`)) ? readFileSync(join(b.cellPath, dir, `f${f}`), 'utf8') : null
      for (let f = 0; f < FILES; f++) {
        const bw = last.B.get(f)
        if (typeof bw === 'string' && server(f) !== bw) { note(`${dir}/f${f}: B's write ${JSON.stringify(bw)} lost; server has ${JSON.stringify(server(f))}`); return false }
        const aw = last.A.get(f)
        if (typeof aw !== 'string') continue
        const kept = server(f) === aw || conflicts.some(c => c.path === `/test/${dir}/f${f}` && c.localCopy !== null && readFileSync(c.localCopy, 'utf8') === aw)
        if (!kept) { note(`${dir}/f${f}: A's write ${JSON.stringify(aw)} lost; server has ${JSON.stringify(server(f))}; conflicts ${JSON.stringify(conflicts)}`); return false }
      }
      t.true(readdirSync(join(b.cellPath, dir)).length <= FILES)
      return true
    }
    t.pass()
  } finally { await stack.unwind() }
})
