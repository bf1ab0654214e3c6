// `afs server`: a volume server; the cell's first keeps the embedded volume location
// database, the others join the cell through it (`--vldb HOST:PORT`).
import { FileServer } from '@afs-ts/fileserver'
import { parseEtcdUrl } from '@afs-ts/volumes'
import { act, secondsArg, UsageError, EXIT_OK, hostPortArg, type Define } from '../args.ts'
import { untilSignal } from '../lifecycle.ts'

export const defineServer: Define = cmd => {
  cmd.requiredOption('--data <dir>', 'where the server keeps its volumes (LMDB and blobs), its TLS directory and keys')
    .requiredOption('--listen <host:port>', 'where it listens (port 0: any free port)')
    .requiredOption('--cell <name>', 'the cell\'s name')
    .option('--vldb <where>', 'join a cell: HOST:PORT of its first server, or etcd://HOST:PORT[,HOST:PORT…] for a location database in etcd')
    .option('--lease-ttl <seconds>', 'with an etcd location database: how long this server stays listed after it stops answering (2-3600)')
    .option('--advertise <host:port>', 'the address clients are given for this server (default: where it listens)')
    .option('--resolve-every <seconds>', 'how often replicated volumes are compared with their other members; 0: only when a client finds a difference, or by afs vos resolve')
    .option('--metrics <host:port>', 'serve Prometheus metrics there')
    .option('--tls <dir>', 'the cell CA and this server\'s certificate, from afs cell init / issue-server or the first server\'s DATA/tls (default DATA/tls, made with a new cell CA by a new cell\'s first server)')
  act<{ data: string, listen: string, cell: string, vldb?: string, leaseTtl?: string, advertise?: string, resolveEvery?: string, metrics?: string, tls?: string }>(cmd, async (_args, v) => {
    const hp = hostPortArg(v.listen, '--listen')
    const etcd = typeof v.vldb === 'string' && v.vldb.startsWith('etcd://')
    if (etcd) { try { parseEtcdUrl(v.vldb!) } catch (err) { throw new UsageError(`--vldb: ${(err as Error).message}`) } } else if (v.vldb !== undefined) hostPortArg(v.vldb, '--vldb')
    const ttl = secondsArg(v.leaseTtl, '--lease-ttl', 2, 3600)
    if (ttl !== undefined && !Number.isInteger(ttl)) throw new UsageError(`--lease-ttl ${v.leaseTtl!}: whole seconds, from 2 to 3600`)
    if (ttl !== undefined && !etcd) throw new UsageError('--lease-ttl goes with --vldb etcd://…')
    if (v.advertise !== undefined) hostPortArg(v.advertise, '--advertise')
    if (v.metrics !== undefined) hostPortArg(v.metrics, '--metrics')
    const every = secondsArg(v.resolveEvery, '--resolve-every', 0, 86_400)
    const server = await FileServer.open({
      dataDir: v.data, cell: v.cell, host: hp.host, port: hp.port,
      advertise: v.advertise, vldb: v.vldb, sweepMs: every === undefined ? undefined : every * 1000, leaseTtlS: ttl, tlsDir: v.tls,
    })
    const address = await server.listen()
    const metrics = v.metrics === undefined ? undefined : await server.serveMetrics(v.metrics)
    process.stdout.write(JSON.stringify({ ready: 'server', address, cell: server.cell, ...(metrics ? { metrics } : {}) }) + '\n')
    await untilSignal()
    await server.close()
    return EXIT_OK
  })
}
