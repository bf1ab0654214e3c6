// `afs repair`: list, inspect and resolve the conflicts reintegration found (Coda's
// repair tool). The cache manager does the repairs; this file asks and shows.
import { lstatSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { resolve as resolvePath } from 'node:path'
import { createInterface } from 'node:readline/promises'
import { createTwoFilesPatch } from 'diff'
import { formatSize, isText } from '@afs-ts/common'
import { cacheDirOf, cacheOption, need, UsageError, EXIT_OK, EXIT_FAILURE, type Command } from '../args.ts'
import { controlCall } from '../control-client.ts'
import { table } from '../table.ts'
import { interactive } from './repair-interactive.ts'

interface SideView { type: string, size: number | null, sha256: string | null, mtimeMs: number | null, copy: string | null, target?: string }
export interface ConflictView {
  id: string
  path: string
  fullPath: string
  name: string | null
  kind: string
  time: number
  message: string
  local: SideView & { op: string, changedAt: number, client: string }
  server: SideView & { dataVersion: number | null, movedTo?: string[] }
  base: { dataVersion: number, copy: string, size: number, sha256: string } | null
}
export interface ShowView extends ConflictView {
  meaning: string
  mergeAuto: { ok: boolean, reason?: string }
  entries: Array<{ name: string, where: string, here: string | null, server: string | null }> | null
  /** Set when this conflict was resolved (shown from the history). */
  resolution?: ResolutionView
}
export interface ResolutionView {
  id: string
  path: string
  fullPath: string
  kind: string
  choice: string
  by: string
  at: number
  action: string
  result: { fullPath: string } | null
  undoneAt?: number
}

/** What a resolution did, with where the result went when that is not the conflicted path. */
export function did (r: ResolutionView): string {
  return r.result && r.result.fullPath !== r.fullPath ? `${r.action}: ${r.result.fullPath}` : r.action
}

/** Larger versions are not diffed by `show` (the files are named for other tools). */
const MAX_DIFF_BYTES = 4 * 1024 * 1024
const KINDS = ['update/update', 'remove/update', 'update/remove', 'name/name', 'rename']
const SUBCOMMANDS = 'list, show, resolve, discard-local, interactive, history, undo, resolver'

export const repairCommand: Command = {
  name: 'repair',
  summary: `conflicts found by reintegration: ${SUBCOMMANDS}`,
  usage: [
    'afs repair list [--json]',
    '       afs repair show PATH|ID [--json]',
    '       afs repair resolve PATH|ID (--keep local|server|both [--as NAME] | --merge FILE | --merge-auto) [--json]',
    '       afs repair resolve --all (--keep local|server|both | --merge-auto) [--prefix PATH] [--kind KIND] [--json]',
    '         (resolve also takes --dry-run: what it would do, changing nothing)',
    '       afs repair discard-local PATH|ID [--yes]',
    '       afs repair interactive',
    '       afs repair history [--json] | undo ID',
    '       afs repair resolver add PATTERN COMMAND [--kind KIND] | remove PATTERN | list [--json]',
    '  (every command takes --cache DIR)',
  ].join('\n'),
  options: {
    ...cacheOption(),
    json: { type: 'boolean' },
    keep: { type: 'string' },
    as: { type: 'string' },
    merge: { type: 'string' },
    'merge-auto': { type: 'boolean' },
    all: { type: 'boolean' },
    prefix: { type: 'string' },
    kind: { type: 'string' },
    yes: { type: 'boolean', short: 'y' },
    'dry-run': { type: 'boolean', short: 'n' },
  },
  async run (v, pos) {
    const [sub, ...rest] = pos
    const cache = cacheDirOf(v)
    const json = (x: unknown) => { process.stdout.write(JSON.stringify(x, null, 2) + '\n'); return EXIT_OK }
    switch (sub) {
      case 'list': {
        need(rest, 0, 'repair list')
        const list = await controlCall(cache, 'repairList') as ConflictView[]
        if (v.json) return json(list)
        if (list.length === 0) { process.stdout.write('no conflicts\n'); return EXIT_OK }
        process.stdout.write(table(['PATH', 'KIND', 'CHANGED HERE', 'BY', 'SERVER', 'LOCAL SIZE', 'SERVER SIZE'],
          list.map(c => [c.fullPath, c.kind, when(c.local.changedAt), c.local.client, c.server.type === 'none' ? 'removed' : `v${c.server.dataVersion} ${when(c.server.mtimeMs)}`, size(c.local), size(c.server)])))
        return EXIT_OK
      }
      case 'show': {
        const [ref] = need(rest, 1, 'repair show PATH|ID')
        const c = await controlCall(cache, 'repairShow', { ref: refOf(ref) }) as ShowView
        if (v.json) return json(c)
        process.stdout.write(await describe(c))
        return EXIT_OK
      }
      case 'resolve': return await resolveCommand(cache, v, rest)
      case 'discard-local': {
        const [ref] = need(rest, 1, 'repair discard-local PATH|ID')
        const c = await controlCall(cache, 'repairShow', { ref: refOf(ref) }) as ShowView
        if (!v.yes) {
          if (!process.stdin.isTTY) throw new UsageError('discard-local asks first; add --yes to drop the local version without asking')
          if (!await confirm(`Drop the local version of ${c.fullPath} (${c.local.type}, ${size(c.local)})? The server's version stays. [y/N] `)) { process.stdout.write('nothing changed\n'); return EXIT_FAILURE }
        }
        const r = await controlCall(cache, 'repairResolve', { ref: c.id, discardLocal: true }) as ResolutionView
        process.stdout.write(`${r.fullPath}: ${did(r)}\n`)
        return EXIT_OK
      }
      case 'interactive': need(rest, 0, 'repair interactive'); return await interactive(cache)
      case 'history': {
        need(rest, 0, 'repair history')
        const h = await controlCall(cache, 'repairHistory') as ResolutionView[]
        if (v.json) return json(h)
        process.stdout.write(h.length ? table(['ID', 'WHEN', 'PATH', 'KIND', 'CHOICE', 'BY', 'WHAT'], h.map(r => [r.id, when(r.at), r.fullPath, r.kind, r.choice, r.by, r.undoneAt ? `${did(r)} (undone)` : did(r)])) : 'no repairs yet\n')
        return EXIT_OK
      }
      case 'undo': {
        const [id] = need(rest, 1, 'repair undo ID')
        const c = await controlCall(cache, 'repairUndo', { ref: id }) as ConflictView
        process.stdout.write(`${c.fullPath}: the repair was undone; it is in conflict again (afs repair show ${c.id})\n`)
        return EXIT_OK
      }
      case 'resolver': return await resolverCommand(cache, v, rest)
      default: throw new UsageError(sub ? `unknown repair command '${sub}'` : `repair needs a command: ${SUBCOMMANDS}`)
    }
  },
}

/** A conflict id as is, or a path as the cache manager takes it (absolute; relative ones from here). */
function refOf (ref: string): string {
  const looksLikeId = /^[a-z0-9]+-[0-9a-f]{6}$/.test(ref)
  if (looksLikeId) { try { lstatSync(ref) } catch { return ref } }
  return resolvePath(ref)
}

async function resolveCommand (cache: string, v: Record<string, unknown>, rest: string[]): Promise<number> {
  const choices = [v.keep !== undefined, v.merge !== undefined, v['merge-auto'] === true].filter(Boolean).length
  if (choices !== 1) throw new UsageError('resolve takes one of --keep local|server|both, --merge FILE, --merge-auto')
  if (v.keep !== undefined && !['local', 'server', 'both'].includes(v.keep as string)) throw new UsageError(`--keep ${v.keep as string}: say local, server or both`)
  if (v.as !== undefined && v.keep !== 'both') throw new UsageError('--as goes with --keep both')
  if (v.kind !== undefined && !KINDS.includes(v.kind as string)) throw new UsageError(`--kind ${v.kind as string}: one of ${KINDS.join(', ')}`)
  const choice = { keep: v.keep, as: v.as, merge: v.merge === undefined ? undefined : resolvePath(v.merge as string), mergeAuto: v['merge-auto'] === true ? true : undefined }
  let refs: Array<{ ref: string, label: string }>
  if (v.all) {
    need(rest, 0, 'resolve --all without a path (filter with --prefix and --kind)')
    if (v.merge !== undefined || v.as !== undefined) throw new UsageError('--all goes with --keep or --merge-auto')
    const prefix = v.prefix === undefined ? null : resolvePath(v.prefix as string)
    const list = await controlCall(cache, 'repairList') as ConflictView[]
    refs = list.filter(c => (!prefix || c.fullPath === prefix || c.fullPath.startsWith(prefix.endsWith('/') ? prefix : prefix + '/')) && (!v.kind || c.kind === v.kind))
      .map(c => ({ ref: c.id, label: c.fullPath }))
    if (refs.length === 0) { process.stdout.write('no conflicts to resolve\n'); return EXIT_OK }
  } else {
    if (v.prefix !== undefined || v.kind !== undefined) throw new UsageError('--prefix and --kind go with --all')
    const ref = need(rest, 1, 'resolve PATH|ID (or --all)')[0]
    refs = [{ ref: refOf(ref), label: ref }]
  }
  if (v['dry-run']) return await preview(cache, refs.map(r => r.ref), choice, v.json === true)
  const results: Array<{ ref: string, ok: boolean, path?: string, action?: string, error?: string }> = []
  for (const { ref, label } of refs) {
    try {
      const r = await controlCall(cache, 'repairResolve', { ref, ...choice }) as ResolutionView
      results.push({ ref, ok: true, path: r.fullPath, action: did(r) })
      if (!v.json) process.stdout.write(`${r.fullPath}: ${did(r)}\n`)
    } catch (err) {
      results.push({ ref, ok: false, path: label, error: (err as Error).message })
      if (!v.json) process.stdout.write(`${label}: not resolved: ${(err as Error).message}\n`)
    }
  }
  if (v.json) process.stdout.write(JSON.stringify(results, null, 2) + '\n')
  else if (refs.length > 1) process.stdout.write(`${results.filter(r => r.ok).length} of ${refs.length} resolved\n`)
  return results.every(r => r.ok) ? EXIT_OK : EXIT_FAILURE
}

/** `resolve --dry-run`: what each resolution would do, changing nothing. */
async function preview (cache: string, refs: string[], choice: { keep?: unknown, merge?: string, mergeAuto?: boolean }, asJson: boolean): Promise<number> {
  const plans: Array<{ path: string, ok: boolean, plan: string }> = []
  for (const ref of refs) {
    const c = await controlCall(cache, 'repairShow', { ref }) as ShowView
    const server = c.server.type === 'none' ? 'nothing there' : `the server's version ${c.server.dataVersion} (${size(c.server)})`
    const local = c.local.type === 'none' ? 'the local removal' : `the local version (${size(c.local)}, changed ${when(c.local.changedAt)})`
    let plan = ''
    let ok = true
    if (choice.mergeAuto) { ok = c.mergeAuto.ok; plan = ok ? `would merge ${local} with ${server}` : `would not merge: ${c.mergeAuto.reason}` }
    else if (choice.merge) plan = `would put ${choice.merge} in place of ${server}`
    else if (choice.keep === 'local') plan = `would put ${local} in place of ${server}`
    else if (choice.keep === 'server') plan = `would keep ${server} and drop ${local}`
    else plan = c.local.type === 'none' ? `would keep ${server} (nothing local to keep beside it)` : `would keep ${server} and put ${local} beside it`
    plans.push({ path: c.fullPath, ok, plan })
    if (!asJson) process.stdout.write(`${c.fullPath}: ${plan}\n`)
  }
  if (asJson) process.stdout.write(JSON.stringify(plans, null, 2) + '\n')
  else process.stdout.write(`nothing changed (--dry-run); ${plans.filter(p => p.ok).length} of ${plans.length} would be resolved\n`)
  return plans.every(p => p.ok) ? EXIT_OK : EXIT_FAILURE
}

async function resolverCommand (cache: string, v: Record<string, unknown>, rest: string[]): Promise<number> {
  const [op, ...args] = rest
  switch (op) {
    case 'add': {
      if (args.length < 2) throw new UsageError('expected resolver add PATTERN COMMAND (COMMAND gets %L %S %B %O %P, or is merge-auto)')
      const kinds = v.kind === undefined ? undefined : [v.kind as string]
      if (kinds && !KINDS.includes(kinds[0])) throw new UsageError(`--kind ${kinds[0]}: one of ${KINDS.join(', ')}`)
      await controlCall(cache, 'resolverAdd', { pattern: args[0], command: args.slice(1).join(' '), kinds })
      process.stdout.write(`new conflicts on ${args[0]} will be resolved by: ${args.slice(1).join(' ')}\n`)
      return EXIT_OK
    }
    case 'remove': {
      const [pattern] = need(args, 1, 'resolver remove PATTERN')
      const r = await controlCall(cache, 'resolverRemove', { pattern }) as { removed: boolean }
      process.stdout.write(r.removed ? `no resolver for ${pattern} any more\n` : `no resolver was registered for ${pattern}\n`)
      return r.removed ? EXIT_OK : EXIT_FAILURE
    }
    case 'list': {
      const list = await controlCall(cache, 'resolverList') as Array<{ pattern: string, command: string, kinds?: string[] }>
      if (v.json) { process.stdout.write(JSON.stringify(list, null, 2) + '\n'); return EXIT_OK }
      process.stdout.write(list.length ? table(['PATTERN', 'KINDS', 'COMMAND'], list.map(r => [r.pattern, r.kinds?.join(',') ?? 'all', r.command])) : 'no resolvers\n')
      return EXIT_OK
    }
    default: throw new UsageError('resolver needs add, remove or list')
  }
}

/** `afs repair show`: both versions side by side, the diffs, and what can be done. */
export async function describe (c: ShowView): Promise<string> {
  const out: string[] = [`${c.fullPath}: ${c.kind} conflict — ${c.meaning}`, `found ${when(c.time)}: ${c.message}`]
  const r = c.resolution
  if (r) out.push(`resolved ${when(r.at)} by ${r.by} (${r.choice}): ${did(r)}${r.undoneAt ? `; undone ${when(r.undoneAt)}` : ` (afs repair undo ${r.id})`}`)
  out.push('')
  const cols: Array<[string, SideView | null]> = [['HERE', c.local], ['SERVER', c.server], ['ANCESTOR', c.base ? { type: 'file', ...c.base, mtimeMs: null } : null]]
  const shown = cols.filter(([, s]) => s !== null) as Array<[string, SideView]>
  const row = (label: string, f: (s: SideView, i: number) => string) => [label, ...shown.map(([, s], i) => f(s, i))]
  out.push(table(['', ...shown.map(([n]) => n)], [
    row('change', (_, i) => i === 0 ? `${c.local.op} at ${when(c.local.changedAt)}` : i === 1 ? (c.server.type === 'none' ? 'nothing there' : `version ${c.server.dataVersion}`) : `version ${c.base!.dataVersion}`),
    row('by', (_, i) => i === 0 ? c.local.client : ''),
    row('type', s => s.type === 'none' ? 'removed' : s.type + (s.target ? ` → ${s.target}` : '')),
    row('size', s => size(s)),
    row('modified', s => when(s.mtimeMs)),
    row('sha256', s => s.sha256 ? s.sha256.slice(0, 16) : '-'),
    row('file', s => s.copy ?? '-'),
  ]).trimEnd())
  if (c.server.movedTo?.length) out.push(`the server has the object at ${c.server.movedTo.join(', ')}`)
  if (c.entries) {
    const where = (e: { where: string, here: string | null, server: string | null }) => e.where === 'here'
      ? `only here (a ${e.here}; a conflict of its own: resolve it after the directory)`
      : e.where === 'server' ? `only on the server (a ${e.server})` : e.where === 'both' ? `on both sides, the same ${e.here}` : `on both sides: here a ${e.here}, there another ${e.server}`
    out.push('', 'directory entries:', table(['ENTRY', 'WHERE'], c.entries.map(e => [e.name, where(e)])).trimEnd())
  }
  const [l, s, b] = await Promise.all([c.local.copy, c.server.copy, c.base?.copy].map(f => f ? readFile(f).catch(() => null) : Promise.resolve(null)))
  if ([l, s, b].some(x => x && x.length > MAX_DIFF_BYTES)) {
    out.push('', `too large to diff here (over ${formatSize(MAX_DIFF_BYTES)}): compare the files above with diff(1) or a merge tool`)
  } else if (l && s) {
    if (!isText(l) || !isText(s)) out.push('', `binary contents: ${l.equals(s) ? 'identical' : 'they differ'} (compare the sha256 above)`)
    else if (b && isText(b)) {
      out.push('', patch('ancestor', 'here', b, l), patch('ancestor', 'server', b, s))
    } else out.push('', patch('server', 'here', s, l))
  } else if (l && isText(l)) out.push('', patch('(nothing)', 'here', Buffer.alloc(0), l))
  else if (s && isText(s)) out.push('', patch('(nothing)', 'server', Buffer.alloc(0), s))
  if (r) return out.join('\n') + '\n'
  out.push(c.mergeAuto.ok ? 'merge-auto: the changes do not overlap; --merge-auto merges them' : `merge-auto: not possible: ${c.mergeAuto.reason}`)
  out.push(`resolve: afs repair resolve ${c.fullPath} --keep local|server|both [--as NAME] | --merge FILE${c.mergeAuto.ok ? ' | --merge-auto' : ''}`)
  return out.join('\n') + '\n'
}

function patch (from: string, to: string, a: Buffer, b: Buffer): string {
  if (a.equals(b)) return `(${from} and ${to} are identical)\n`
  const lines = createTwoFilesPatch(from, to, a.toString('utf8'), b.toString('utf8'), undefined, undefined, { context: 3 }).split('\n').slice(1)
  return (COLOR ? lines.map(colored) : lines).join('\n')
}

/** Diffs in colour on a terminal, as git shows them (NO_COLOR turns it off). */
const COLOR = process.stdout.isTTY === true && !process.env.NO_COLOR
function colored (line: string): string {
  const paint = (code: number) => `\u001b[${code}m${line}\u001b[0m`
  if (line.startsWith('---') || line.startsWith('+++')) return paint(1)
  if (line.startsWith('@@')) return paint(36)
  if (line.startsWith('+')) return paint(32)
  if (line.startsWith('-')) return paint(31)
  return line
}

function size (s: SideView): string {
  return s.type === 'none' ? '-' : s.size === null ? '?' : formatSize(s.size)
}

function when (ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString().replace('T', ' ').slice(0, 19)
}

async function confirm (question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stdout })
  try { return /^y(es)?$/i.test((await rl.question(question)).trim()) } finally { rl.close() }
}

