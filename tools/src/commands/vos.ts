// `afs vos`: volume administration (create, list, setquota), talking to a server.
import { formatSize, parseSize, MAX_VOLUME_SITES } from '@afs-ts/common'
import { cacheDirOf, cacheOption, hostPortArg, need, UsageError, EXIT_OK, type Command } from '../args.ts'
import { serverAddress, serverCaller, serverOptions, toolCreds } from '../server-client.ts'
import { table } from '../table.ts'
import { resolveVolume } from './vos-resolve.ts'
import { progress } from '../progress.ts'

/** How long a move may take (it copies the whole volume). */
const MOVE_TIMEOUT_MS = 24 * 3600_000

function size (text: string): number {
  try { return parseSize(text) } catch (err) { throw new UsageError((err as Error).message) }
}

export const vosCommand: Command = {
  name: 'vos',
  usage: 'afs vos create NAME --server HOST:PORT [--server HOST:PORT …] [--quota SIZE] [--quorum any|majority] | afs vos list [--server HOST:PORT] [--json] | afs vos examine NAME [--server HOST:PORT] [--json] | afs vos resolve NAME [--server HOST:PORT] [--json] | afs vos addsite|remsite NAME HOST:PORT [--server HOST:PORT] | afs vos setquota NAME SIZE [--server HOST:PORT] | afs vos listaddrs [--server HOST:PORT] [--json] | afs vos move NAME --to HOST:PORT [--server HOST:PORT]\n  (every vos command: [--ca FILE], the cell\'s CA, default $AFS_CA or the local cache manager\'s (--cache DIR); changes need a token of system:administrators (afs login) or [--localauth DATADIR] on a server)',
  options: { server: { type: 'string', multiple: true }, to: { type: 'string' }, quota: { type: 'string' }, quorum: { type: 'string' }, json: { type: 'boolean' }, ...cacheOption(), ...serverOptions() },
  async run (v, pos) {
    const [sub, ...rest] = pos
    // On create, each --server is a site (two or more: a replicated volume); elsewhere, the one server to ask.
    const sites = (v.server as string[] | undefined) ?? []
    if (sub !== 'create' && sites.length > 1) throw new UsageError(`vos ${sub ?? ''}: one --server to ask`)
    v = { ...v, server: sites[0] }
    const serverCall = serverCaller(v)
    switch (sub) {
      case 'create': {
        const [name] = need(rest, 1, 'vos create NAME')
        if (sites.length === 0) throw new UsageError('vos create needs --server HOST:PORT (one per site)')
        if (sites.length > MAX_VOLUME_SITES) throw new UsageError(`a volume has at most ${MAX_VOLUME_SITES} sites`)
        for (const s of sites) hostPortArg(s, '--server')
        if (v.quorum !== undefined && v.quorum !== 'any' && v.quorum !== 'majority') throw new UsageError(`--quorum ${v.quorum as string}: any or majority`)
        const quorum = v.quorum as 'any' | 'majority' | undefined
        if (quorum && sites.length < 2) throw new UsageError('--quorum goes with a replicated volume (two --server or more)')
        const e = await serverCall(sites[0], 'volCreate', { name, quota: v.quota ? size(v.quota as string) : 0, servers: sites, quorum })
        process.stdout.write(`created volume ${e.name} (${e.id}) on ${e.servers.join(', ')}${e.servers.length > 1 ? ` (replicated, quorum ${e.quorum ?? 'any'})` : ''}\n`)
        return EXIT_OK
      }
      case 'list': {
        need(rest, 0, 'vos list')
        const list = await serverCall(await serverAddress(v, cacheDirOf(v)), 'vlList', {})
        if (v.json) { process.stdout.write(JSON.stringify(list, null, 2) + '\n'); return EXIT_OK }
        process.stdout.write(table(['NAME', 'ID', 'SERVERS', 'QUOTA'], list.map(e => [e.name, e.id, e.servers.join(','), e.quota ? formatSize(e.quota) : 'none'])))
        return EXIT_OK
      }
      case 'examine': {
        const [name] = need(rest, 1, 'vos examine NAME')
        const x = await serverCall(await serverAddress(v, cacheDirOf(v)), 'volExamine', { name })
        if (v.json) { process.stdout.write(JSON.stringify({ name: x.volume.name, id: x.volume.id, quota: x.volume.quota, replicated: x.volume.servers.length > 1, quorum: x.volume.quorum ?? 'any', replicas: x.replicas }, null, 2) + '\n'); return EXIT_OK }
        const e = x.volume
        process.stdout.write(`volume ${e.name} (${e.id}), ${e.servers.length > 1 ? `replicated on ${e.servers.length} servers` : 'on one server'}, quota ${e.quota ? formatSize(e.quota) : 'none'}\n`)
        process.stdout.write(table(['SERVER', 'REACHABLE', 'VERSION', 'OBJECTS', 'PENDING', 'CONFLICTS'], x.replicas.map(r => [
          r.server, r.reachable ? 'yes' : `no (${r.error ?? 'unreachable'})`, r.version ?? '-', r.objects ?? '-', r.pending ?? '-', r.conflicts ?? '-',
        ])))
        return EXIT_OK
      }
      case 'resolve': {
        const [name] = need(rest, 1, 'vos resolve NAME')
        return await resolveVolume(await toolCreds(v), await serverAddress(v, cacheDirOf(v)), name, v.json === true)
      }
      case 'addsite': case 'remsite': {
        const [name, site] = need(rest, 2, `vos ${sub} NAME HOST:PORT`)
        hostPortArg(site)
        const via = await serverAddress(v, cacheDirOf(v))
        const e = await serverCall(via, sub === 'addsite' ? 'volAddSite' : 'volRemoveSite', { name, server: site })
        process.stdout.write(sub === 'addsite'
          ? `${site} is a member of ${e.name} now (${e.servers.length} members); the others fill it while it stays in use (afs vos examine ${e.name})\n`
          : `${site} is no member of ${e.name} any more (${e.servers.join(', ')}); its copy stays on its disk\n`)
        return EXIT_OK
      }
      case 'move': {
        const [name] = need(rest, 1, 'vos move NAME --to HOST:PORT')
        if (typeof v.to !== 'string') throw new UsageError('vos move needs --to HOST:PORT (the server it moves to)')
        hostPortArg(v.to, '--to')
        const where = await serverCall(await serverAddress(v, cacheDirOf(v)), 'vlGet', { name })
        const started = Date.now()
        process.stderr.write(`moving ${name} from ${where.servers.join(', ')} to ${v.to}: copying while it stays in use…\n`)
        const line = progress()
        const polling = setInterval(() => {
          void serverCall(where.servers[0], 'volMoveProgress', { name }).then(({ progress: p }) => {
            if (p) line.show(`${p.phase === 'copying' ? 'copying' : 'final switch, updates waiting'}: ${p.done}/${p.total} objects`)
          }, () => {})
        }, 250)
        let e
        try {
          e = await serverCall(where.servers[0], 'volMove', { name, to: v.to }, MOVE_TIMEOUT_MS)
        } finally {
          clearInterval(polling)
          line.done()
        }
        process.stdout.write(`${e.name} is on ${e.servers.join(', ')} now (epoch ${e.epoch ?? 0}), moved in ${((Date.now() - started) / 1000).toFixed(1)} s; its old copy stays on ${where.servers[0]}'s disk\n`)
        return EXIT_OK
      }
      case 'listaddrs': {
        need(rest, 0, 'vos listaddrs')
        const list = await serverCall(await serverAddress(v, cacheDirOf(v)), 'vlServers', {})
        if (v.json) { process.stdout.write(JSON.stringify(list, null, 2) + '\n'); return EXIT_OK }
        process.stdout.write(list.length ? table(['SERVER', 'ADDRESS', 'SINCE', 'ROLE'], list.map(s => [s.id, s.address, new Date(s.since).toISOString().replace('T', ' ').slice(0, 19), s.leader ? 'leader' : ''])) : 'no servers registered\n')
        return EXIT_OK
      }
      case 'setquota': {
        const [name, q] = need(rest, 2, 'vos setquota NAME SIZE')
        const where = await serverCall(await serverAddress(v, cacheDirOf(v)), 'vlGet', { name })
        const e = await serverCall(where.servers[0], 'volSetQuota', { name, quota: size(q) })
        process.stdout.write(`quota of ${e.name} is ${e.quota ? formatSize(e.quota) : 'none'}\n`)
        return EXIT_OK
      }
      default: throw new UsageError(sub ? `unknown vos command '${sub}'` : 'vos needs a command: create, list, examine, resolve, move, addsite, remsite, setquota, listaddrs')
    }
  },
}
