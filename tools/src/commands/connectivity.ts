// `afs disconnect`, `afs reconnect`, `afs sync`: force a cache manager's connectivity
// (like Coda's `cfs disconnect`) and push its modification log to the servers.
import { formatSize } from '@afs-ts/common'
import { cacheDirOf, cacheOption, need, UsageError, EXIT_OK, EXIT_FAILURE, type Command } from '../args.ts'
import { controlCall } from '../control-client.ts'

export const disconnectCommand: Command = {
  name: 'disconnect',
  usage: 'afs disconnect [--write-back [--age SECONDS]] [--cache DIR]',
  options: { ...cacheOption(), 'write-back': { type: 'boolean' }, age: { type: 'string' } },
  async run (v, pos) {
    need(pos, 0, 'no arguments')
    const age = v.age === undefined ? undefined : Number(v.age)
    if (age !== undefined && (!Number.isFinite(age) || age < 0)) throw new UsageError(`--age must be a number of seconds, not ${v.age}`)
    if (age !== undefined && !v['write-back']) throw new UsageError('--age goes with --write-back')
    await controlCall(cacheDirOf(v), 'disconnect', { writeBack: v['write-back'] === true, ...(age !== undefined ? { ageMs: Math.round(age * 1000) } : {}) })
    process.stdout.write(v['write-back'] ? 'write-disconnected: changes are logged and trickle to the servers\n' : 'disconnected: working from the cache; changes are logged\n')
    return EXIT_OK
  },
}

export const reconnectCommand: Command = {
  name: 'reconnect',
  usage: 'afs reconnect [--cache DIR]',
  options: { ...cacheOption() },
  async run (v, pos) {
    need(pos, 0, 'no arguments')
    await controlCall(cacheDirOf(v), 'reconnect')
    process.stdout.write('reconnecting: the log is replayed as soon as the servers answer\n')
    return EXIT_OK
  },
}

export const syncCommand: Command = {
  name: 'sync',
  usage: 'afs sync [--wait] [--timeout SECONDS] [--cache DIR] [--json]',
  options: { ...cacheOption(), wait: { type: 'boolean' }, timeout: { type: 'string' }, json: { type: 'boolean' } },
  async run (v, pos) {
    need(pos, 0, 'no arguments')
    const timeout = v.timeout === undefined ? 600 : Number(v.timeout)
    if (!Number.isFinite(timeout) || timeout < 0) throw new UsageError(`--timeout must be a number of seconds, not ${v.timeout}`)
    const r = await controlCall(cacheDirOf(v), 'sync', { waitMs: v.wait ? Math.round(timeout * 1000) : 0 })
    if (v.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n')
    else if (r.pending.records === 0) process.stdout.write('all local changes are on the servers\n')
    else process.stdout.write(`${r.pending.records} changes (${formatSize(r.pending.bytes)}) still pending:\n${r.why.map(w => `  ${w}\n`).join('')}`)
    return r.pending.records === 0 || !v.wait ? EXIT_OK : EXIT_FAILURE
  },
}
