// `afs vos`: volume administration (create, list, examine, resolve, move, addsite,
// remsite, setquota, listaddrs), talking to a server.
import { formatSize, parseSize, MAX_VOLUME_SITES } from '@afs-ts/common'
import { Option } from 'commander'
import { act, collect, hostPortArg, verb, withJson, UsageError, EXIT_OK, type Define } from '../args.ts'
import { serverAddress, serverCaller, toolCreds, withServerAsked, withServerOptions, type ToolOptions } from '../server-client.ts'
import { table } from '../table.ts'
import { resolveVolume } from './vos-resolve.ts'
import { progress } from '../progress.ts'

/** How long a move may take (it copies the whole volume). */
const MOVE_TIMEOUT_MS = 24 * 3600_000

function size (text: string): number {
  try { return parseSize(text) } catch (err) { throw new UsageError((err as Error).message) }
}

type VosOptions = ToolOptions & { json?: boolean }

export const defineVos: Define = cmd => {
  /** A verb of vos, with what every one takes: whom to trust and speak as, and (but create) the server to ask. */
  const vosVerb = (name: string, summary: string, ask = true) => {
    const c = withServerOptions(verb(cmd, name, summary))
    return ask ? withServerAsked(c) : c
  }

  act<Omit<ToolOptions, 'server'> & { server?: string[], quota?: string, quorum?: 'any' | 'majority' }>(vosVerb('create', 'make a volume on one server, or replicated on several', false).argument('<name>')
    .option('--server <host:port>', 'a site of the volume: two or more make it replicated', collect)
    .option('--quota <size>', 'the most it may hold (e.g. 10G; default: no limit)')
    .addOption(new Option('--quorum <rule>', 'a replicated volume takes a write when any member does, or only a majority').choices(['any', 'majority'])), async ([name], v) => {
    const { server: sites = [], ...tool } = v // each --server is a site here
    if (sites.length === 0) throw new UsageError('vos create needs --server HOST:PORT (one per site)')
    if (sites.length > MAX_VOLUME_SITES) throw new UsageError(`a volume has at most ${MAX_VOLUME_SITES} sites`)
    for (const s of sites) hostPortArg(s, '--server')
    if (v.quorum && sites.length < 2) throw new UsageError('--quorum goes with a replicated volume (two --server or more)')
    const e = await serverCaller(tool)(sites[0], 'volCreate', { name, quota: v.quota ? size(v.quota) : 0, servers: sites, quorum: v.quorum })
    process.stdout.write(`created volume ${e.name} (${e.id}) on ${e.servers.join(', ')}${e.servers.length > 1 ? ` (replicated, quorum ${e.quorum ?? 'any'})` : ''}\n`)
    return EXIT_OK
  })
  act<VosOptions>(withJson(vosVerb('list', 'every volume of the cell, where it is, its quota')), async (_args, v) => {
    const list = await serverCaller(v)(await serverAddress(v), 'vlList', {})
    if (v.json) { process.stdout.write(JSON.stringify(list, null, 2) + '\n'); return EXIT_OK }
    process.stdout.write(table(['NAME', 'ID', 'SERVERS', 'QUOTA'], list.map(e => [e.name, e.id, e.servers.join(','), e.quota ? formatSize(e.quota) : 'none'])))
    return EXIT_OK
  })
  act<VosOptions>(withJson(vosVerb('examine', 'a volume and each of its members: reachable, version, objects, pending, conflicts').argument('<name>')), async ([name], v) => {
    const x = await serverCaller(v)(await serverAddress(v), 'volExamine', { name })
    if (v.json) { process.stdout.write(JSON.stringify({ name: x.volume.name, id: x.volume.id, quota: x.volume.quota, replicated: x.volume.servers.length > 1, quorum: x.volume.quorum ?? 'any', replicas: x.replicas }, null, 2) + '\n'); return EXIT_OK }
    const e = x.volume
    process.stdout.write(`volume ${e.name} (${e.id}), ${e.servers.length > 1 ? `replicated on ${e.servers.length} servers` : 'on one server'}, quota ${e.quota ? formatSize(e.quota) : 'none'}\n`)
    process.stdout.write(table(['SERVER', 'REACHABLE', 'VERSION', 'OBJECTS', 'PENDING', 'CONFLICTS'], x.replicas.map(r => [
      r.server, r.reachable ? 'yes' : `no (${r.error ?? 'unreachable'})`, r.version ?? '-', r.objects ?? '-', r.pending ?? '-', r.conflicts ?? '-',
    ])))
    return EXIT_OK
  })
  act<VosOptions>(withJson(vosVerb('resolve', 'make the members of a replicated volume equal now, and say what it did').argument('<name>')), async ([name], v) =>
    await resolveVolume(await toolCreds(v), await serverAddress(v), name, v.json === true))
  act<VosOptions>(vosVerb('addsite', 'make SERVER a member of a volume: the others fill it while it stays in use').argument('<name>').argument('<server>', 'HOST:PORT'), async ([name, site], v) => {
    hostPortArg(site)
    const e = await serverCaller(v)(await serverAddress(v), 'volAddSite', { name, server: site })
    process.stdout.write(`${site} is a member of ${e.name} now (${e.servers.length} members); the others fill it while it stays in use (afs vos examine ${e.name})\n`)
    return EXIT_OK
  })
  act<VosOptions>(vosVerb('remsite', 'take SERVER out of a volume (its copy stays on its disk)').argument('<name>').argument('<server>', 'HOST:PORT'), async ([name, site], v) => {
    hostPortArg(site)
    const e = await serverCaller(v)(await serverAddress(v), 'volRemoveSite', { name, server: site })
    process.stdout.write(`${site} is no member of ${e.name} any more (${e.servers.join(', ')}); its copy stays on its disk\n`)
    return EXIT_OK
  })
  act<VosOptions & { to: string }>(vosVerb('move', 'move a volume to another server while it stays in use').argument('<name>')
    .requiredOption('--to <host:port>', 'the server it moves to'), async ([name], v) => await move(v, name))
  act<VosOptions>(withJson(vosVerb('listaddrs', 'the servers registered in the location database')), async (_args, v) => {
    const list = await serverCaller(v)(await serverAddress(v), 'vlServers', {})
    if (v.json) { process.stdout.write(JSON.stringify(list, null, 2) + '\n'); return EXIT_OK }
    process.stdout.write(list.length ? table(['SERVER', 'ADDRESS', 'SINCE', 'ROLE'], list.map(s => [s.id, s.address, new Date(s.since).toISOString().replace('T', ' ').slice(0, 19), s.leader ? 'leader' : ''])) : 'no servers registered\n')
    return EXIT_OK
  })
  act<VosOptions>(vosVerb('setquota', 'set the most a volume may hold (SIZE, e.g. 10G; 0: no limit)').argument('<name>').argument('<size>'), async ([name, q], v) => {
    const call = serverCaller(v)
    const where = await call(await serverAddress(v), 'vlGet', { name })
    const e = await call(where.servers[0], 'volSetQuota', { name, quota: size(q) })
    process.stdout.write(`quota of ${e.name} is ${e.quota ? formatSize(e.quota) : 'none'}\n`)
    return EXIT_OK
  })
}

/** `vos move`: the copy runs on the volume's server; its progress is shown until the switch. */
async function move (v: VosOptions & { to: string }, name: string): Promise<number> {
  hostPortArg(v.to, '--to')
  const call = serverCaller(v)
  const where = await call(await serverAddress(v), 'vlGet', { name })
  const started = Date.now()
  process.stderr.write(`moving ${name} from ${where.servers.join(', ')} to ${v.to}: copying while it stays in use…\n`)
  const line = progress()
  const polling = setInterval(() => {
    void call(where.servers[0], 'volMoveProgress', { name }).then(({ progress: p }) => {
      if (p) line.show(`${p.phase === 'copying' ? 'copying' : 'final switch, updates waiting'}: ${p.done}/${p.total} objects`)
    }, () => {})
  }, 250)
  let e
  try {
    e = await call(where.servers[0], 'volMove', { name, to: v.to }, MOVE_TIMEOUT_MS)
  } finally {
    clearInterval(polling)
    line.done()
  }
  process.stdout.write(`${e.name} is on ${e.servers.join(', ')} now (epoch ${e.epoch ?? 0}), moved in ${((Date.now() - started) / 1000).toFixed(1)} s; its old copy stays on ${where.servers[0]}'s disk\n`)
  return EXIT_OK
}
