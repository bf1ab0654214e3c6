// `afs repair`: list, inspect and resolve the conflicts reintegration found (Coda's
// repair tool). The cache manager does the repairs; this file asks and shows.
import { lstatSync } from 'node:fs'
import { formatSize } from '@afs-ts/common'
import { resolve as resolvePath } from 'node:path'
import { createInterface } from 'node:readline/promises'
import { Option } from 'commander'
import { act, cacheDirOf, verb, withJson, UsageError, EXIT_OK, EXIT_FAILURE, type Define } from '../args.ts'
import { controlCall } from '../control-client.ts'
import { table } from '../table.ts'
import { interactive } from './repair-interactive.ts'
import { describe, describeReplicas, did, size, when } from './repair-view.ts'

const KINDS = ['update/update', 'remove/update', 'update/remove', 'name/name', 'rename']

interface RepairOptions { cache?: string, json?: boolean }
interface ResolveOptions extends RepairOptions {
  keep?: 'local' | 'server' | 'both', keepReplica?: string, as?: string, merge?: string, mergeAuto?: boolean
  all?: boolean, prefix?: string, kind?: string, dryRun?: boolean
}

export const defineRepair: Define = cmd => {
  const json = (x: unknown) => { process.stdout.write(JSON.stringify(x, null, 2) + '\n'); return EXIT_OK }
  const kind = () => new Option('--kind <kind>', 'conflicts of this kind only').choices(KINDS)

  act<RepairOptions>(withJson(verb(cmd, 'list', 'the conflicts to repair: this cache\'s, and server/server ones of replicated volumes')), async (_args, v) => {
    const list = await controlCall(cacheDirOf(v), 'repairList')
    const replicas = await controlCall(cacheDirOf(v), 'replicaConflicts')
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
  })
  act<RepairOptions>(withJson(verb(cmd, 'show', 'both sides of one conflict, with a diff where they are text').argument('<ref>', 'PATH or conflict ID')), async ([ref], v) => {
    const cache = cacheDirOf(v)
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
  })
  act<ResolveOptions>(withJson(verb(cmd, 'resolve', 'resolve a conflict (or --all of them) by a choice; a server/server one by --keep-replica or --merge').argument('[ref]', 'PATH or conflict ID')
    .addOption(new Option('--keep <side>', 'keep the local version, the server\'s, or both (the local one beside, under a new name)').choices(['local', 'server', 'both']))
    .option('--as <name>', 'with --keep both: the local version\'s new name')
    .option('--merge <file>', 'put FILE in place of both')
    .option('--merge-auto', 'merge the two by their common ancestor (text files whose changes do not overlap)')
    .option('--keep-replica <host:port>', 'a server/server conflict: every member takes that member\'s version')
    .option('--all', 'every conflict (narrowed by --prefix and --kind)')
    .option('--prefix <path>', 'with --all: conflicts at or below PATH only')
    .addOption(kind())
    .option('-n, --dry-run', 'say what it would do, changing nothing')), async ([ref], v) => await resolveCommand(cacheDirOf(v), v, ref))
  act<RepairOptions & { yes?: boolean }>(verb(cmd, 'discard-local', 'drop the local version of a conflict; the server\'s stays').argument('<ref>', 'PATH or conflict ID')
    .option('-y, --yes', 'do not ask first'), async ([ref], v) => {
    const cache = cacheDirOf(v)
    const c = await controlCall(cache, 'repairShow', { ref: refOf(ref) })
    if (!v.yes) {
      if (!process.stdin.isTTY) throw new UsageError('discard-local asks first; add --yes to drop the local version without asking')
      if (!await confirm(`Drop the local version of ${c.fullPath} (${c.local.type}, ${size(c.local)})? The server's version stays. [y/N] `)) { process.stdout.write('nothing changed\n'); return EXIT_FAILURE }
    }
    const r = await controlCall(cache, 'repairResolve', { ref: c.id, discardLocal: true })
    process.stdout.write(`${r.fullPath}: ${did(r)}\n`)
    return EXIT_OK
  })
  act<RepairOptions>(verb(cmd, 'interactive', 'walk through the conflicts: show each and ask what to do'), async (_args, v) => await interactive(cacheDirOf(v)))
  act<RepairOptions>(withJson(verb(cmd, 'history', 'the repairs made, newest last (each can be undone)')), async (_args, v) => {
    const h = await controlCall(cacheDirOf(v), 'repairHistory')
    if (v.json) return json(h)
    process.stdout.write(h.length ? table(['ID', 'WHEN', 'PATH', 'KIND', 'CHOICE', 'BY', 'WHAT'], h.map(r => [r.id, when(r.at), r.fullPath, r.kind, r.choice, r.by, r.undoneAt ? `${did(r)} (undone)` : did(r)])) : 'no repairs yet\n')
    return EXIT_OK
  })
  act<RepairOptions>(verb(cmd, 'undo', 'undo a repair: its conflict is back, both versions as they were').argument('<id>', 'a repair\'s ID (afs repair history)'), async ([id], v) => {
    const c = await controlCall(cacheDirOf(v), 'repairUndo', { ref: id })
    process.stdout.write(`${c.fullPath}: the repair was undone; it is in conflict again (afs repair show ${c.id})\n`)
    return EXIT_OK
  })

  const resolver = cmd.command('resolver').description('commands that resolve new conflicts by themselves, by path pattern')
  act<RepairOptions & { kind?: string }>(verb(resolver, 'add', 'resolve new conflicts on PATTERN by COMMAND (it gets %L %S %B %O %P; or merge-auto)')
    .argument('<pattern>', 'a glob of paths (** for any depth)').argument('<command...>', 'run for each new conflict, with %L %S %B %O %P for the local, server, base and output files and the path; or merge-auto').addOption(kind()), async ([pattern, ...command], v) => {
    await controlCall(cacheDirOf(v), 'resolverAdd', { pattern, command: command.join(' '), kinds: v.kind === undefined ? undefined : [v.kind] })
    process.stdout.write(`new conflicts on ${pattern} will be resolved by: ${command.join(' ')}\n`)
    return EXIT_OK
  })
  act<RepairOptions>(verb(resolver, 'remove', 'no resolver for PATTERN any more').argument('<pattern>'), async ([pattern], v) => {
    const r = await controlCall(cacheDirOf(v), 'resolverRemove', { pattern })
    process.stdout.write(r.removed ? `no resolver for ${pattern} any more\n` : `no resolver was registered for ${pattern}\n`)
    return r.removed ? EXIT_OK : EXIT_FAILURE
  })
  act<RepairOptions>(withJson(verb(resolver, 'list', 'the resolvers, by pattern')), async (_args, v) => {
    const list = await controlCall(cacheDirOf(v), 'resolverList')
    if (v.json) return json(list)
    process.stdout.write(list.length ? table(['PATTERN', 'KINDS', 'COMMAND'], list.map(r => [r.pattern, r.kinds?.join(',') ?? 'all', r.command])) : 'no resolvers\n')
    return EXIT_OK
  })
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

async function resolveCommand (cache: string, v: ResolveOptions, target: string | undefined): Promise<number> {
  const replica = v.keepReplica !== undefined || (target !== undefined && v.all !== true && await isServerServer(cache, target))
  if (replica) {
    if (target === undefined) throw new UsageError('resolve PATH --keep-replica HOST:PORT | --merge FILE: which PATH?')
    const path = target
    if (v.keep !== undefined || v.all === true || v.as !== undefined) throw new UsageError(`${path} is in server/server conflict: resolve it with --keep-replica HOST:PORT or --merge FILE`)
    if (v.mergeAuto === true) throw new UsageError('no common ancestor is kept for a server/server conflict: merge the versions (afs repair show PATH names their copies) and give --merge FILE, or --keep-replica HOST:PORT')
    if ((v.keepReplica === undefined) === (v.merge === undefined)) throw new UsageError('a server/server conflict takes one of --keep-replica HOST:PORT, --merge FILE')
    const r = await controlCall(cache, 'repairReplica', v.merge === undefined
      ? { path: resolvePath(path), keep: v.keepReplica! }
      : { path: resolvePath(path), merge: resolvePath(v.merge!) })
    if (v.json) { process.stdout.write(JSON.stringify(r, null, 2) + '\n'); return EXIT_OK }
    process.stdout.write(r.kept ? `${r.path}: every member holds the version of ${r.kept} now\n` : `${r.path}: every member holds ${r.merged} now\n`)
    return EXIT_OK
  }
  const choices = [v.keep !== undefined, v.merge !== undefined, v.mergeAuto === true].filter(Boolean).length
  if (choices !== 1) throw new UsageError('resolve takes one of --keep local|server|both, --merge FILE, --merge-auto')
  if (v.as !== undefined && v.keep !== 'both') throw new UsageError('--as goes with --keep both')
  const choice = { keep: v.keep, as: v.as, merge: v.merge === undefined ? undefined : resolvePath(v.merge), mergeAuto: v.mergeAuto === true ? true : undefined }
  let refs: Array<{ ref: string, label: string }>
  if (v.all) {
    if (target !== undefined) throw new UsageError('resolve --all takes no path (filter with --prefix and --kind)')
    if (v.merge !== undefined || v.as !== undefined) throw new UsageError('--all goes with --keep or --merge-auto')
    const prefix = v.prefix === undefined ? null : resolvePath(v.prefix)
    const list = await controlCall(cache, 'repairList')
    refs = list.filter(c => (!prefix || c.fullPath === prefix || c.fullPath.startsWith(prefix.endsWith('/') ? prefix : prefix + '/')) && (!v.kind || c.kind === v.kind))
      .map(c => ({ ref: c.id, label: c.fullPath }))
    if (refs.length === 0) { process.stdout.write('no conflicts to resolve\n'); return EXIT_OK }
  } else {
    if (v.prefix !== undefined || v.kind !== undefined) throw new UsageError('--prefix and --kind go with --all')
    if (target === undefined) throw new UsageError('resolve needs PATH|ID (or --all)')
    refs = [{ ref: refOf(target), label: target }]
  }
  if (v.dryRun) return await preview(cache, refs.map(r => r.ref), choice, v.json === true)
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

async function confirm (question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stdout })
  try { return /^y(es)?$/i.test((await rl.question(question)).trim()) } finally { rl.close() }
}

