// `afs disconnect`, `afs reconnect`, `afs sync`: force a cache manager's connectivity
// (like Coda's `cfs disconnect`) and push its modification log to the servers.
import { formatSize } from '@afs-ts/common'
import { act, cacheDirOf, secondsArg, withCache, withJson, UsageError, EXIT_OK, EXIT_FAILURE, type Define } from '../args.ts'
import { controlCall } from '../control-client.ts'

export const defineDisconnect: Define = cmd => {
  withCache(cmd)
    .option('--write-back', 'keep reading from the servers; log changes and trickle them out')
    .option('--age <seconds>', 'with --write-back: how long a change waits in the log before it goes out')
  act<{ cache?: string, writeBack?: boolean, age?: string }>(cmd, async (_args, v) => {
    const age = secondsArg(v.age, '--age', 0)
    if (age !== undefined && !v.writeBack) throw new UsageError('--age goes with --write-back')
    await controlCall(cacheDirOf(v), 'disconnect', { writeBack: v.writeBack === true, ...(age !== undefined ? { ageMs: Math.round(age * 1000) } : {}) })
    process.stdout.write(v.writeBack ? 'write-disconnected: changes are logged and trickle to the servers\n' : 'disconnected: working from the cache; changes are logged\n')
    return EXIT_OK
  })
}

export const defineReconnect: Define = cmd => {
  act<{ cache?: string }>(withCache(cmd), async (_args, v) => {
    await controlCall(cacheDirOf(v), 'reconnect')
    process.stdout.write('reconnecting: the log is replayed as soon as the servers answer\n')
    return EXIT_OK
  })
}

export const defineSync: Define = cmd => {
  withJson(withCache(cmd))
    .option('--wait', 'return once every change is on the servers')
    .option('--timeout <seconds>', 'with --wait: how long to wait at most', '600')
  act<{ cache?: string, json?: boolean, wait?: boolean, timeout: string }>(cmd, async (_args, v) => {
    const timeout = secondsArg(v.timeout, '--timeout', 0)!
    const r = await controlCall(cacheDirOf(v), 'sync', { waitMs: v.wait ? Math.round(timeout * 1000) : 0 })
    if (v.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n')
    else if (r.pending.records === 0) process.stdout.write('all local changes are on the servers\n')
    else process.stdout.write(`${r.pending.records} changes (${formatSize(r.pending.bytes)}) still pending:\n${r.why.map(w => `  ${w}\n`).join('')}`)
    return r.pending.records === 0 || !v.wait ? EXIT_OK : EXIT_FAILURE
  })
}
