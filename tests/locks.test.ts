// Advisory locks across clients, through real mounts: flock and fcntl locks taken on one
// client are seen on the other, byte ranges, F_GETLK, a blocked F_SETLKW that wakes when
// the lock is freed (the mount keeps answering meanwhile), a holder SIGKILLed whose lock
// goes with its lease, and a stale holder's write refused once another has the lock.
import test from 'ava'
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { promisify } from 'node:util'
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { Stack, afs, cell, eventually, status, type Client } from './helpers/cell.ts'

const LOCKER = join(import.meta.dirname, 'helpers', 'locker.py')
const run = promisify(execFile)

/** A process holding the file open, taking locks when told (tests/helpers/locker.py). */
interface Locker { ask (line: string): Promise<string>, pending (line: string): Promise<string>, kill (): void }

function locker (stack: Stack, path: string): Locker {
  const p: ChildProcessWithoutNullStreams = spawn('python3', [LOCKER, path])
  const answers: string[] = []
  const waiting: Array<(s: string) => void> = []
  createInterface({ input: p.stdout }).on('line', l => { const w = waiting.shift(); if (w) w(l); else answers.push(l) })
  stack.push(async () => { p.kill('SIGKILL') })
  const pending = (line: string) => {
    p.stdin.write(line + '\n')
    return new Promise<string>(resolve => { const a = answers.shift(); if (a !== undefined) resolve(a); else waiting.push(resolve) })
  }
  return { ask: pending, pending, kill: () => p.kill('SIGKILL') }
}

async function locks (c: Client): Promise<Array<{ family: string, kind: string, where: string }>> {
  return (await status(c) as unknown as { locks: Array<{ family: string, kind: string, where: string }> }).locks
}

test.serial('flock and fcntl locks taken on one client hold against the other; byte ranges and F_GETLK; afs status lists them', async t => {
  const stack = new Stack()
  try {
    const { clients: [a, b] } = await cell(stack, 2)
    writeFileSync(join(a.cellPath, 'f'), 'shared\n')
    const la = locker(stack, join(a.cellPath, 'f'))
    const lb = locker(stack, join(b.cellPath, 'f'))
    t.is(await la.ask('flock ex nb'), 'ok')
    t.is(await lb.ask('flock ex nb'), 'EAGAIN', 'flock: the other client is refused')
    t.is(await lb.ask('flock sh nb'), 'EAGAIN')
    t.deepEqual((await locks(a)).map(l => `${l.family} ${l.kind} ${l.where}`), ['flock write server'])
    t.regex((await afs(['status', '--cache', a.cache])).stdout, /flock\s+\S+\s+write\s+0-end\s+on the server/, 'the human table lists it')
    t.is(await la.ask('funlock'), 'ok')
    t.is(await lb.ask('flock sh nb'), 'ok', 'free once unlocked')
    t.is(await la.ask('flock sh nb'), 'ok', 'readers share')
    t.is(await lb.ask('funlock'), 'ok')
    t.is(await la.ask('funlock'), 'ok')

    t.is(await la.ask('lock ex nb 0 10'), 'ok')
    t.is(await lb.ask('lock ex nb 5 10'), 'EAGAIN', 'fcntl: an overlapping range is refused')
    t.is(await lb.ask('lock ex nb 10 10'), 'ok', 'the next range is free')
    t.is(await lb.ask('test 0 0'), 'write 0 10', 'F_GETLK names the lock in the way')
    t.is(await la.ask('test 20 5'), 'none')
    t.is(await la.ask('close'), 'ok')
    t.is(await lb.ask('lock ex nb 0 10'), 'ok', 'close frees fcntl locks, as POSIX says')
  } finally { await stack.unwind() }
})

test.serial('a blocked F_SETLKW waits without stopping the mount and wakes when the lock is freed', async t => {
  const stack = new Stack()
  try {
    const { clients: [a, b] } = await cell(stack, 2)
    writeFileSync(join(a.cellPath, 'f'), '')
    const la = locker(stack, join(a.cellPath, 'f'))
    const lb = locker(stack, join(b.cellPath, 'f'))
    t.is(await la.ask('lock ex'), 'ok')
    let woke = false
    const waiting = lb.pending('lock ex').then(r => { woke = true; return r })
    await new Promise(resolve => setTimeout(resolve, 500))
    t.false(woke, 'B waits')
    writeFileSync(join(b.cellPath, 'meanwhile'), 'B still works')
    t.true(readdirSync(b.cellPath).includes('meanwhile'), 'and its mount answers meanwhile')
    t.is(await la.ask('unlock'), 'ok')
    t.is(await waiting, 'ok', 'B has it once A let go')
  } finally { await stack.unwind() }
})

test.serial('a holder\'s cache manager SIGKILLed: its lock goes with its lease; a stale holder\'s write is refused and kept', async t => {
  const stack = new Stack()
  try {
    const { clients: [a, b, c] } = await cell(stack, 3)
    writeFileSync(join(a.cellPath, 'f'), 'start\n')
    readFileSync(join(c.cellPath, 'f'))
    const la = locker(stack, join(a.cellPath, 'f'))
    t.is(await la.ask('lock ex'), 'ok')
    await a.stop('SIGKILL')
    la.kill()
    await run('fusermount', ['-u', '-z', a.mount]) // a dead cache manager leaves its mount behind
    const lb = locker(stack, join(b.cellPath, 'f'))
    const started = Date.now()
    t.is(await lb.ask('lock ex'), 'ok', 'granted once the dead holder\'s lease ran out')
    t.log(`waited ${Date.now() - started} ms for the lease`)

    // A stale holder: C holds the lock, stops (SIGSTOP: no renewals), loses it to B, wakes up and writes.
    t.is(await lb.ask('unlock'), 'ok')
    const lc = locker(stack, join(c.cellPath, 'f'))
    t.is(await lc.ask('lock ex'), 'ok')
    t.is(await lc.ask('write from c, under a lock it will lose'), 'ok')
    c.proc.kill('SIGSTOP')
    try {
      t.is(await lb.ask('lock ex'), 'ok', 'B gets the lock C no longer renews')
      t.is(await lb.ask('write from b, the holder now'), 'ok')
      t.is(await lb.ask('close'), 'ok')
    } finally { c.proc.kill('SIGCONT') }
    // Refused by the server (ENOLCK), or logged when C finds its server gone (the server dropped
    // it for not taking callback breaks) and flagged when replayed: never stored over B's.
    t.true(['ENOLCK', 'ok'].includes(await lc.ask('close')))
    t.true(await eventually(async () => (await status(c) as unknown as { conflicts: unknown[] }).conflicts.length === 1, 15_000), 'its bytes are kept in a conflict')
    t.regex(readFileSync(join(b.cellPath, 'f'), 'utf8'), /from b, the holder now/, 'the holder\'s write stays')
  } finally { await stack.unwind() }
})

test.serial('while disconnected a lock is this machine\'s only, and the log and afs status say so', async t => {
  const stack = new Stack()
  try {
    const { clients: [a] } = await cell(stack, 1)
    writeFileSync(join(a.cellPath, 'f'), '')
    const r = await afs(['disconnect', '--cache', a.cache])
    t.is(r.code, 0)
    const one = locker(stack, join(a.cellPath, 'f'))
    const two = locker(stack, join(a.cellPath, 'f'))
    t.is(await one.ask('lock ex nb'), 'ok')
    t.is(await two.ask('lock ex nb'), 'EAGAIN', 'processes on this machine still exclude each other')
    t.deepEqual((await locks(a)).map(l => `${l.family} ${l.kind} ${l.where}`), ['posix write local'])
    t.regex(a.stderr(), /taken on this machine only/)
    t.regex((await afs(['status', '--cache', a.cache])).stdout, /this machine only/)
  } finally { await stack.unwind() }
})
