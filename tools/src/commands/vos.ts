// `afs vos`: volume administration (create, list, setquota), talking to a server.
import { formatSize, parseSize } from '@afs-ts/common'
import { cacheDirOf, cacheOption, need, UsageError, EXIT_OK, type Command } from '../args.ts'
import { serverAddress, serverCall } from '../server-client.ts'
import { table } from '../table.ts'

function size (text: string): number {
  try { return parseSize(text) } catch (err) { throw new UsageError((err as Error).message) }
}

export const vosCommand: Command = {
  name: 'vos',
  summary: 'volume administration: create, list, setquota',
  usage: 'afs vos create NAME --server HOST:PORT [--quota SIZE] | afs vos list [--server HOST:PORT] [--json] | afs vos setquota NAME SIZE [--server HOST:PORT]',
  options: { server: { type: 'string' }, quota: { type: 'string' }, json: { type: 'boolean' }, ...cacheOption() },
  async run (v, pos) {
    const [sub, ...rest] = pos
    switch (sub) {
      case 'create': {
        const [name] = need(rest, 1, 'vos create NAME')
        if (!v.server) throw new UsageError('vos create needs --server HOST:PORT')
        const e = await serverCall(v.server as string, 'volCreate', { name, quota: v.quota ? size(v.quota as string) : 0 })
        process.stdout.write(`created volume ${e.name} (${e.id}) on ${e.servers.join(', ')}\n`)
        return EXIT_OK
      }
      case 'list': {
        need(rest, 0, 'vos list')
        const list = await serverCall(await serverAddress(v, cacheDirOf(v)), 'vlList', {})
        if (v.json) { process.stdout.write(JSON.stringify(list, null, 2) + '\n'); return EXIT_OK }
        process.stdout.write(table(['NAME', 'ID', 'SERVERS', 'QUOTA'], list.map(e => [e.name, e.id, e.servers.join(','), e.quota ? formatSize(e.quota) : 'none'])))
        return EXIT_OK
      }
      case 'setquota': {
        const [name, q] = need(rest, 2, 'vos setquota NAME SIZE')
        const where = await serverCall(await serverAddress(v, cacheDirOf(v)), 'vlGet', { name })
        const e = await serverCall(where.servers[0], 'volSetQuota', { name, quota: size(q) })
        process.stdout.write(`quota of ${e.name} is ${e.quota ? formatSize(e.quota) : 'none'}\n`)
        return EXIT_OK
      }
      default: throw new UsageError(sub ? `unknown vos command '${sub}'` : 'vos needs a command: create, list, setquota')
    }
  },
}
