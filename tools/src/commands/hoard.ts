// `afs hoard`: what to keep in the cache for disconnected work (Coda's hoard command).
import { readFile } from 'node:fs/promises'
import { basename, resolve } from 'node:path'
import { formatSize } from '@afs-ts/common'
import { act, cacheDirOf, verb, withJson, EXIT_OK, EXIT_FAILURE, type Define } from '../args.ts'
import { controlCall } from '../control-client.ts'
import { table } from '../table.ts'
import { progress } from '../progress.ts'

interface WalkProgress { entries: number, entriesDone: number, objects: number, fetched: number, bytes: number }

type HoardOptions = { cache?: string, json?: boolean }

export const defineHoard: Define = cmd => {
  const json = (x: unknown) => process.stdout.write(JSON.stringify(x, null, 2) + '\n')
  act<HoardOptions>(verb(cmd, 'add', 'keep PATH in the cache: PRIORITY 1-1000 (default 500), and :c its children, :c+ also children made later, :d its descendants, :d+ also ones made later')
    .argument('<path>').argument('[priority]'), async ([path, priority], v) => {
    await controlCall(cacheDirOf(v), 'hoardAdd', { path: resolve(path), ...(priority ? { priority } : {}) })
    process.stdout.write(`hoarding ${path}\n`)
    return EXIT_OK
  })
  act<HoardOptions>(verb(cmd, 'remove', 'stop hoarding PATH').argument('<path>'), async ([p], v) => {
    const r = await controlCall(cacheDirOf(v), 'hoardRemove', { path: resolve(p) })
    process.stdout.write(r.removed ? `no longer hoarding ${p}\n` : `${p} was not hoarded\n`)
    return r.removed ? EXIT_OK : EXIT_FAILURE
  })
  act<HoardOptions>(withJson(verb(cmd, 'list', 'what is hoarded, and from which profile')), async (_args, v) => {
    const r = await controlCall(cacheDirOf(v), 'hoardList')
    if (v.json) { json(r); return EXIT_OK }
    process.stdout.write(r.entries.length ? table(['PATH', 'PRIORITY', 'EXPAND', 'SOURCE'], r.entries.map(e => [e.path, e.priority, e.expansion, e.source])) : 'nothing hoarded\n')
    for (const e of r.profileErrors) process.stdout.write(`profile not applied: ${e}\n`)
    return EXIT_OK
  })
  act<HoardOptions>(withJson(verb(cmd, 'walk', 'fetch everything hoarded now, with progress (Ctrl-C interrupts)')), async (_args, v) => await walk(cacheDirOf(v), v.json === true))
  act<HoardOptions>(withJson(verb(cmd, 'verify', 'list hoarded objects that are not in the cache')), async (_args, v) => {
    const missing = await controlCall(cacheDirOf(v), 'hoardVerify')
    if (v.json) { json(missing); return EXIT_OK }
    process.stdout.write(missing.length ? table(['NOT IN THE CACHE', 'WHY'], missing.map(m => [m.path, m.reason])) : 'every hoarded object is in the cache\n')
    return missing.length ? EXIT_FAILURE : EXIT_OK
  })
  act<HoardOptions>(verb(cmd, 'clear', 'forget every hoard entry'), async (_args, v) => {
    await controlCall(cacheDirOf(v), 'hoardClear')
    process.stdout.write('hoard database cleared\n')
    return EXIT_OK
  })
  act<HoardOptions>(verb(cmd, 'load', 'apply a hoard profile file').argument('<file>'), async ([file], v) => {
    const r = await controlCall(cacheDirOf(v), 'hoardLoad', { text: await readFile(file, 'utf8'), name: basename(file) })
    process.stdout.write(`${file}: ${r.applied} lines applied\n`)
    return EXIT_OK
  })
  act<HoardOptions>(verb(cmd, 'suggest', 'the misses while disconnected, as profile lines to review'), async (_args, v) => {
    const lines = await controlCall(cacheDirOf(v), 'hoardSuggest')
    process.stdout.write(lines.length ? `# misses while disconnected, as profile lines to review\n${lines.join('\n')}\n` : '# no misses recorded\n')
    return EXIT_OK
  })
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
