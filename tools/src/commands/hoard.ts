// `afs hoard`: what to keep in the cache for disconnected work (Coda's hoard command).
import { readFile } from 'node:fs/promises'
import { basename, resolve } from 'node:path'
import { formatSize } from '@afs-ts/common'
import { cacheDirOf, cacheOption, need, UsageError, EXIT_OK, EXIT_FAILURE, type Command } from '../args.ts'
import { controlCall } from '../control-client.ts'
import { table } from '../table.ts'
import { progress } from '../progress.ts'

interface WalkProgress { entries: number, entriesDone: number, objects: number, fetched: number, bytes: number }

export const hoardCommand: Command = {
  name: 'hoard',
  usage: 'afs hoard add PATH [PRIORITY[:c|c+|d|d+]] | remove PATH | list | walk | verify | clear | load FILE | suggest  [--cache DIR] [--json]',
  options: { ...cacheOption(), json: { type: 'boolean' } },
  async run (v, pos) {
    const [sub, ...rest] = pos
    const cache = cacheDirOf(v)
    const json = (x: unknown) => process.stdout.write(JSON.stringify(x, null, 2) + '\n')
    switch (sub) {
      case 'add': {
        if (rest.length < 1 || rest.length > 2) throw new UsageError('expected hoard add PATH [PRIORITY[:c|c+|d|d+]]')
        await controlCall(cache, 'hoardAdd', { path: resolve(rest[0]), ...(rest[1] ? { priority: rest[1] } : {}) })
        process.stdout.write(`hoarding ${rest[0]}\n`)
        return EXIT_OK
      }
      case 'remove': {
        const [p] = need(rest, 1, 'hoard remove PATH')
        const r = await controlCall(cache, 'hoardRemove', { path: resolve(p) })
        process.stdout.write(r.removed ? `no longer hoarding ${p}\n` : `${p} was not hoarded\n`)
        return r.removed ? EXIT_OK : EXIT_FAILURE
      }
      case 'list': {
        need(rest, 0, 'hoard list')
        const r = await controlCall(cache, 'hoardList')
        if (v.json) { json(r); return EXIT_OK }
        process.stdout.write(r.entries.length ? table(['PATH', 'PRIORITY', 'EXPAND', 'SOURCE'], r.entries.map(e => [e.path, e.priority, e.expansion, e.source])) : 'nothing hoarded\n')
        for (const e of r.profileErrors) process.stdout.write(`profile not applied: ${e}\n`)
        return EXIT_OK
      }
      case 'walk': return await walk(cache, v.json === true)
      case 'verify': {
        need(rest, 0, 'hoard verify')
        const missing = await controlCall(cache, 'hoardVerify')
        if (v.json) { json(missing); return EXIT_OK }
        process.stdout.write(missing.length ? table(['NOT IN THE CACHE', 'WHY'], missing.map(m => [m.path, m.reason])) : 'every hoarded object is in the cache\n')
        return missing.length ? EXIT_FAILURE : EXIT_OK
      }
      case 'clear': need(rest, 0, 'hoard clear'); await controlCall(cache, 'hoardClear'); process.stdout.write('hoard database cleared\n'); return EXIT_OK
      case 'load': {
        const [file] = need(rest, 1, 'hoard load FILE')
        const r = await controlCall(cache, 'hoardLoad', { text: await readFile(file, 'utf8'), name: basename(file) })
        process.stdout.write(`${file}: ${r.applied} lines applied\n`)
        return EXIT_OK
      }
      case 'suggest': {
        need(rest, 0, 'hoard suggest')
        const lines = await controlCall(cache, 'hoardSuggest')
        process.stdout.write(lines.length ? `# misses while disconnected, as profile lines to review\n${lines.join('\n')}\n` : '# no misses recorded\n')
        return EXIT_OK
      }
      default: throw new UsageError(sub ? `unknown hoard command '${sub}'` : 'hoard needs a command: add, remove, list, walk, verify, clear, load, suggest')
    }
  },
}

/** A walk in the foreground with a progress line; Ctrl-C interrupts it. */
async function walk (cache: string, asJson: boolean): Promise<number> {
  const onInt = () => { void controlCall(cache, 'hoardCancel') }
  process.once('SIGINT', onInt)
  const line = progress()
  const timer = setInterval(() => {
    void controlCall(cache, 'hoardProgress').then(r => {
      const p = (r as { progress: WalkProgress | null }).progress
      if (p) line.show(`walking: entry ${p.entriesDone}/${p.entries}, ${p.objects} objects, ${p.fetched} fetched, ${formatSize(p.bytes)}`)
    }).catch(() => {})
  }, 200)
  try {
    const r = await controlCall(cache, 'hoardWalk')
    line.done()
    if (asJson) { process.stdout.write(JSON.stringify(r, null, 2) + '\n'); return EXIT_OK }
    process.stdout.write(`${r.interrupted ? 'interrupted' : 'walked'}: ${r.objects} objects, ${r.fetched} fetched (${formatSize(r.bytes)}) in ${(r.ms / 1000).toFixed(1)} s\n`)
    if (r.failures.length) process.stdout.write(table(['NOT IN THE CACHE', 'WHY'], r.failures.map(f => [f.path, f.reason])))
    return r.interrupted ? EXIT_FAILURE : EXIT_OK
  } finally {
    clearInterval(timer)
    process.off('SIGINT', onInt)
  }
}
