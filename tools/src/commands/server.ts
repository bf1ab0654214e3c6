// `afs server`: a volume server; the cell's first keeps the embedded volume location
// database, the others join the cell through it (`--vldb HOST:PORT`).
import { FileServer } from '@afs-ts/fileserver'
import { parseEtcdUrl } from '@afs-ts/volumes'
import { UsageError, EXIT_OK, hostPortArg, type Command } from '../args.ts'
import { untilSignal } from '../lifecycle.ts'

export const serverCommand: Command = {
  name: 'server',
  usage: 'afs server --data DIR --listen HOST:PORT --cell NAME [--vldb HOST:PORT | --vldb etcd://HOST:PORT[,HOST:PORT…] [--lease-ttl SECONDS]] [--advertise HOST:PORT] [--resolve-every SECONDS] [--metrics HOST:PORT] [--tls DIR]\n  (--resolve-every: how often replicated volumes are compared with their other members; 0: only when a client finds a difference, or by afs vos resolve;\n   --tls: the cell CA and this server\'s certificate, from afs cell init / issue-server or the first server\'s DATA/tls; default DATA/tls, made with a new cell CA by a new cell\'s first server)',
  options: { data: { type: 'string' }, listen: { type: 'string' }, cell: { type: 'string' }, advertise: { type: 'string' }, vldb: { type: 'string' }, 'resolve-every': { type: 'string' }, 'lease-ttl': { type: 'string' }, metrics: { type: 'string' }, tls: { type: 'string' } },
  async run (v) {
    if (!v.data || !v.listen || !v.cell) throw new UsageError('--data, --listen and --cell are required')
    const hp = hostPortArg(v.listen as string, '--listen')
    const etcd = typeof v.vldb === 'string' && v.vldb.startsWith('etcd://')
    if (etcd) { try { parseEtcdUrl(v.vldb as string) } catch (err) { throw new UsageError(`--vldb: ${(err as Error).message}`) } } else if (v.vldb !== undefined) hostPortArg(v.vldb as string, '--vldb')
    const ttl = v['lease-ttl'] === undefined ? undefined : Number(v['lease-ttl'])
    if (ttl !== undefined && !(Number.isInteger(ttl) && ttl >= 2 && ttl <= 3600)) throw new UsageError(`--lease-ttl ${v['lease-ttl'] as string}: whole seconds, from 2 to 3600`)
    if (ttl !== undefined && !etcd) throw new UsageError('--lease-ttl goes with --vldb etcd://…')
    if (v.advertise !== undefined) hostPortArg(v.advertise as string, '--advertise')
    if (v.metrics !== undefined) hostPortArg(v.metrics as string, '--metrics')
    const every = v['resolve-every'] === undefined ? undefined : Number(v['resolve-every'])
    if (every !== undefined && !(Number.isFinite(every) && every >= 0 && every <= 86_400)) throw new UsageError(`--resolve-every ${v['resolve-every'] as string}: seconds, from 0 (never) to 86400`)
    const server = await FileServer.open({
      dataDir: v.data as string, cell: v.cell as string, host: hp.host, port: hp.port,
      advertise: v.advertise as string | undefined, vldb: v.vldb as string | undefined, sweepMs: every === undefined ? undefined : every * 1000, leaseTtlS: ttl, tlsDir: v.tls as string | undefined,
    })
    const address = await server.listen()
    const metrics = v.metrics === undefined ? undefined : await server.serveMetrics(v.metrics as string)
    process.stdout.write(JSON.stringify({ ready: 'server', address, cell: server.cell, ...(metrics ? { metrics } : {}) }) + '\n')
    await untilSignal()
    await server.close()
    return EXIT_OK
  },
}
