// `afs repair`: list, inspect and resolve the conflicts reintegration found (Coda's
// repair tool). The cache manager does the repairs; this file asks and shows.
import { lstatSync } from 'node:fs'
import { formatSize } from '@afs-ts/common'
import { resolve as resolvePath } from 'node:path'
import { createInterface } from 'node:readline/promises'
import { cacheDirOf, cacheOption, need, UsageError, EXIT_OK, EXIT_FAILURE, type Command } from '../args.ts'
import { controlCall } from '../control-client.ts'
import { table } from '../table.ts'
import { interactive } from './repair-interactive.ts'
import { describe, describeReplicas, did, size, when } from './repair-view.ts'

const KINDS = ['update/update', 'remove/update', 'update/remove', 'name/name', 'rename']
const SUBCOMMANDS = 'list, show, resolve, discard-local, interactive, history, undo, resolver'

export const repairCommand: Command = {
  name: 'repair',
  usage: [
    'afs repair list [--json]',
    '       afs repair show PATH|ID [--json]',
    '       afs repair resolve PATH|ID (--keep local|server|both [--as NAME] | --merge FILE | --merge-auto) [--json]',
    '       afs repair resolve --all (--keep local|server|both | --merge-auto) [--prefix PATH] [--kind KIND] [--json]',
    '       afs repair resolve PATH --keep-replica HOST:PORT | --merge FILE   (a server/server conflict: every member takes that one\'s version, or FILE)',
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
    'keep-replica': { type: 'string' },
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
        const list = await controlCall(cache, 'repairList')
        const replicas = await controlCall(cache, 'replicaConflicts')
        if (v.json) return json([...list, ...replicas])
        if (list.length + replicas.length === 0) { process.stdout.write('no conflicts\n'); return EXIT_OK }
        if (list.length) {
          process.stdout.write(table(['PATH', 'KIND', 'CHANGED HERE', 'BY', 'SERVER', 'LOCAL SIZE', 'SERVER SIZE'],
            list.map(c => [c.fullPath, c.kind, when(c.local.changedAt), c.local.client, c.server.type === 'none' ? 'removed' : `v${c.server.dataVersion} ${when(c.server.mtimeMs)}`, size(c.local), size(c.server)])))
        }
        if (replicas.length) {
          process.stdout.write(`${list.length ? '\n' : ''}server/server conflicts (resolve with --keep-replica HOST:PORT):\n`)
          process.stdout.write(table(['PATH', 'SERVER', 'SIZE', 'MODIFIED', 'BY', 'VECTOR'], replicas.flatMap(c => c.versions.map(r => [
            c.fullPath, r.server, r.size === null ? '-' : formatSize(r.size), when(r.mtimeMs), r.by ?? '-', r.vv ? Object.values(r.vv).join(',') : (r.error ?? 'unreachable'),
          ]))))
        }
        return EXIT_OK
      }
      case 'show': {
        const [ref] = need(rest, 1, 'repair show PATH|ID')
        if (await isServerServer(cache, ref)) {
          const r = await controlCall(cache, 'replicaShow', { path: resolvePath(ref) })
          if (v.json) return json(r)
          process.stdout.write(await describeReplicas(r))
          return EXIT_OK
        }
        const c = await controlCall(cache, 'repairShow', { ref: refOf(ref) })
        if (v.json) return json(c)
        process.stdout.write(await describe(c))
        return EXIT_OK
      }
      case 'resolve': return await resolveCommand(cache, v, rest)
      case 'discard-local': {
        const [ref] = need(rest, 1, 'repair discard-local PATH|ID')
        const c = await controlCall(cache, 'repairShow', { ref: refOf(ref) })
        if (!v.yes) {
          if (!process.stdin.isTTY) throw new UsageError('discard-local asks first; add --yes to drop the local version without asking')
          if (!await confirm(`Drop the local version of ${c.fullPath} (${c.local.type}, ${size(c.local)})? The server's version stays. [y/N] `)) { process.stdout.write('nothing changed\n'); return EXIT_FAILURE }
        }
        const r = await controlCall(cache, 'repairResolve', { ref: c.id, discardLocal: true })
        process.stdout.write(`${r.fullPath}: ${did(r)}\n`)
        return EXIT_OK
      }
      case 'interactive': need(rest, 0, 'repair interactive'); return await interactive(cache)
      case 'history': {
        need(rest, 0, 'repair history')
        const h = await controlCall(cache, 'repairHistory')
        if (v.json) return json(h)
        process.stdout.write(h.length ? table(['ID', 'WHEN', 'PATH', 'KIND', 'CHOICE', 'BY', 'WHAT'], h.map(r => [r.id, when(r.at), r.fullPath, r.kind, r.choice, r.by, r.undoneAt ? `${did(r)} (undone)` : did(r)])) : 'no repairs yet\n')
        return EXIT_OK
      }
      case 'undo': {
        const [id] = need(rest, 1, 'repair undo ID')
        const c = await controlCall(cache, 'repairUndo', { ref: id })
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

/** Whether `ref` is the path of an object in server/server conflict. */
async function isServerServer (cache: string, ref: string): Promise<boolean> {
  try {
    return (await controlCall(cache, 'inReplicaConflict', { path: resolvePath(ref) })).conflict
  } catch {
    return false // not a path in the cell (a conflict id, or gone): a conflict of this cache's log, if any
  }
}

async function resolveCommand (cache: string, v: Record<string, unknown>, rest: string[]): Promise<number> {
  const replica = v['keep-replica'] !== undefined || (rest.length === 1 && v.all !== true && await isServerServer(cache, rest[0]))
  if (replica) {
    const [path] = need(rest, 1, 'resolve PATH --keep-replica HOST:PORT | --merge FILE')
    if (v.keep !== undefined || v.all === true || v.as !== undefined) throw new UsageError(`${path} is in server/server conflict: resolve it with --keep-replica HOST:PORT or --merge FILE`)
    if (v['merge-auto'] === true) throw new UsageError('no common ancestor is kept for a server/server conflict: merge the versions (afs repair show PATH names their copies) and give --merge FILE, or --keep-replica HOST:PORT')
    if ((v['keep-replica'] === undefined) === (v.merge === undefined)) throw new UsageError('a server/server conflict takes one of --keep-replica HOST:PORT, --merge FILE')
    const r = await controlCall(cache, 'repairReplica', v.merge === undefined
      ? { path: resolvePath(path), keep: v['keep-replica'] as string }
      : { path: resolvePath(path), merge: resolvePath(v.merge as string) })
    if (v.json) { process.stdout.write(JSON.stringify(r, null, 2) + '\n'); return EXIT_OK }
    process.stdout.write(r.kept ? `${r.path}: every member holds the version of ${r.kept} now\n` : `${r.path}: every member holds ${r.merged} now\n`)
    return EXIT_OK
  }
  const choices = [v.keep !== undefined, v.merge !== undefined, v['merge-auto'] === true].filter(Boolean).length
  if (choices !== 1) throw new UsageError('resolve takes one of --keep local|server|both, --merge FILE, --merge-auto')
  if (v.keep !== undefined && !['local', 'server', 'both'].includes(v.keep as string)) throw new UsageError(`--keep ${v.keep as string}: say local, server or both`)
  if (v.as !== undefined && v.keep !== 'both') throw new UsageError('--as goes with --keep both')
  if (v.kind !== undefined && !KINDS.includes(v.kind as string)) throw new UsageError(`--kind ${v.kind as string}: one of ${KINDS.join(', ')}`)
  const choice = { keep: v.keep as 'local' | 'server' | 'both' | undefined, as: v.as as string | undefined, merge: v.merge === undefined ? undefined : resolvePath(v.merge as string), mergeAuto: v['merge-auto'] === true ? true : undefined }
  let refs: Array<{ ref: string, label: string }>
  if (v.all) {
    need(rest, 0, 'resolve --all without a path (filter with --prefix and --kind)')
    if (v.merge !== undefined || v.as !== undefined) throw new UsageError('--all goes with --keep or --merge-auto')
    const prefix = v.prefix === undefined ? null : resolvePath(v.prefix as string)
    const list = await controlCall(cache, 'repairList')
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
      const r = await controlCall(cache, 'repairResolve', { ref, ...choice })
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
    const c = await controlCall(cache, 'repairShow', { ref })
    const server = c.server.type === 'none' ? 'nothing there' : `the server's version ${c.server.dataVersion} (${size(c.server)})`
    const local = c.local.type === 'none' ? 'the local removal' : `the local version (${size(c.local)}, changed ${when(c.local.changedAt)})`
    let plan = ''
    let ok = true
    if (choice.mergeAuto) { const m = c.mergeAuto; ok = m.ok; plan = m.ok ? `would merge ${local} with ${server}` : `would not merge: ${m.reason}` }
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
      const r = await controlCall(cache, 'resolverRemove', { pattern })
      process.stdout.write(r.removed ? `no resolver for ${pattern} any more\n` : `no resolver was registered for ${pattern}\n`)
      return r.removed ? EXIT_OK : EXIT_FAILURE
    }
    case 'list': {
      const list = await controlCall(cache, 'resolverList')
      if (v.json) { process.stdout.write(JSON.stringify(list, null, 2) + '\n'); return EXIT_OK }
      process.stdout.write(list.length ? table(['PATTERN', 'KINDS', 'COMMAND'], list.map(r => [r.pattern, r.kinds?.join(',') ?? 'all', r.command])) : 'no resolvers\n')
      return EXIT_OK
    }
    default: throw new UsageError('resolver needs add, remove or list')
  }
}

async function confirm (question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stdout })
  try { return /^y(es)?$/i.test((await rl.question(question)).trim()) } finally { rl.close() }
}

