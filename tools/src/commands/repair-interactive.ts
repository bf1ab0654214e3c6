// `afs repair interactive`: walks through every open conflict, shows it, and asks.
import { spawnSync } from 'node:child_process'
import { copyFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline/promises'
import { EXIT_OK, EXIT_FAILURE } from '../args.ts'
import { controlCall } from '../control-client.ts'
import { describe, did, type ConflictView } from './repair-view.ts'

const PROMPT = '[l]ocal  [s]erver  [b]oth  [m]erge-auto  [e]dit a merge  [d]iscard local  [n]ext  [q]uit > '

export async function interactive (cache: string): Promise<number> {
  const list = await controlCall(cache, 'repairList')
  if (list.length === 0) { process.stdout.write('no conflicts\n'); return EXIT_OK }
  const rl = createInterface({ input: process.stdin, output: process.stdout })
  // Lines through the iterator: it buffers what arrives before a question (piped answers).
  const lines = rl[Symbol.asyncIterator]()
  const ask: Ask = async q => { process.stdout.write(q); const l = await lines.next(); return l.done ? null : l.value }
  let resolved = 0
  try {
    for (const [i, item] of list.entries()) {
      const c = await controlCall(cache, 'repairShow', { ref: item.id })
      process.stdout.write(`\n(${i + 1}/${list.length}) ${await describe(c)}`)
      for (;;) {
        const answer = (await ask(PROMPT))?.trim().toLowerCase() ?? 'q'
        if (answer === 'q') { process.stdout.write(`${resolved} resolved\n`); return EXIT_OK }
        if (answer === 'n' || answer === '') break
        const choice = await choose(answer, item, ask, fn => { rl.pause(); try { return fn() } finally { rl.resume() } })
        if (!choice) { process.stdout.write('say one of l s b m e d n q\n'); continue }
        try {
          const r = await controlCall(cache, 'repairResolve', { ref: item.id, ...choice })
          process.stdout.write(`${r.fullPath}: ${did(r)}\n`)
          resolved++
          break
        } catch (err) {
          process.stdout.write(`not resolved: ${(err as Error).message}\n`)
        } finally {
          if (choice.merge) await rm(join(choice.merge, '..'), { recursive: true, force: true })
        }
      }
    }
  } finally { rl.close() }
  process.stdout.write(`${resolved} of ${list.length} resolved\n`)
  return resolved === list.length ? EXIT_OK : EXIT_FAILURE
}

interface Choice { keep?: 'local' | 'server' | 'both', as?: string, merge?: string, mergeAuto?: boolean, discardLocal?: boolean }

type Ask = (question: string) => Promise<string | null>

/** `paused` runs an editor with the terminal to itself. */
async function choose (answer: string, c: ConflictView, ask: Ask, paused: <T>(fn: () => T) => T): Promise<Choice | null> {
  switch (answer) {
    case 'l': return { keep: 'local' }
    case 's': return { keep: 'server' }
    case 'b': {
      const as = (await ask('name for the local version (empty: a generated one) > '))?.trim()
      return as ? { keep: 'both', as } : { keep: 'both' }
    }
    case 'm': return { mergeAuto: true }
    case 'd': return /^y/i.test(await ask('drop the local version? [y/N] ') ?? '') ? { discardLocal: true } : null
    case 'e': {
      // The local version, edited into the merge the user wants, becomes the new version.
      const dir = await mkdtemp(join(tmpdir(), 'afs-merge-'))
      const file = join(dir, c.name ?? 'merge')
      await copyFile(c.local.copy ?? c.server.copy ?? '/dev/null', file)
      const editor = process.env.VISUAL ?? process.env.EDITOR ?? 'vi'
      const r = paused(() => spawnSync('/bin/sh', ['-c', `${editor} "$1"`, 'sh', file], { stdio: 'inherit' }))
      if (r.status !== 0) { await rm(dir, { recursive: true, force: true }); return null }
      return { merge: file }
    }
    default: return null
  }
}
