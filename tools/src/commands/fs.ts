// `afs fs`: questions and changes about paths under the mount (listquota, mkmount,
// lsmount, whereis, flush), answered by the cache manager.
import { resolve } from 'node:path'
import { formatSize } from '@afs-ts/common'
import { cacheDirOf, cacheOption, need, UsageError, EXIT_OK, type Command } from '../args.ts'
import { controlCall } from '../control-client.ts'
import { table } from '../table.ts'

export const fsCommand: Command = {
  name: 'fs',
  usage: 'afs fs listquota PATH | mkmount PATH VOLUME | lsmount PATH | whereis PATH | flush PATH  [--cache DIR] [--json]',
  options: { ...cacheOption(), json: { type: 'boolean' } },
  async run (v, pos) {
    const [sub, ...rest] = pos
    const cache = cacheDirOf(v)
    const print = (human: string, json: unknown) => process.stdout.write(v.json ? JSON.stringify(json, null, 2) + '\n' : human)
    switch (sub) {
      case 'listquota': {
        const [p] = need(rest, 1, 'fs listquota PATH')
        const q = await controlCall(cache, 'listquota', { path: resolve(p) })
        const pct = q.quota ? `${Math.round(100 * q.used / q.quota)}%` : '-'
        print(table(['VOLUME', 'QUOTA', 'USED', '%USED', 'FILES'], [[q.volume, q.quota ? formatSize(q.quota) : 'no limit', formatSize(q.used), pct, q.files]]), q)
        return EXIT_OK
      }
      case 'mkmount': {
        const [p, volume] = need(rest, 2, 'fs mkmount PATH VOLUME')
        await controlCall(cache, 'mkmount', { path: resolve(p), volume })
        print(`${p} is now a mount point for volume ${volume}\n`, { path: p, volume })
        return EXIT_OK
      }
      case 'lsmount': {
        const [p] = need(rest, 1, 'fs lsmount PATH')
        const r = await controlCall(cache, 'lsmount', { path: resolve(p) })
        print(`'${p}' is a mount point for volume '#${r.volume}'\n`, r)
        return EXIT_OK
      }
      case 'whereis': {
        const [p] = need(rest, 1, 'fs whereis PATH')
        const r = await controlCall(cache, 'whereis', { path: resolve(p) })
        print(`File ${p} is on host${r.servers.length > 1 ? 's' : ''} ${r.servers.join(' ')} (volume ${r.volume}, fid ${r.fid})\n`, r)
        return EXIT_OK
      }
      case 'flush': {
        const [p] = need(rest, 1, 'fs flush PATH')
        const r = await controlCall(cache, 'flush', { path: resolve(p) })
        print(r.evicted ? `flushed ${p}\n` : `flushed the status of ${p}; its data stays while it is open or unsaved\n`, r)
        return EXIT_OK
      }
      default: throw new UsageError(sub ? `unknown fs command '${sub}'` : 'fs needs a command: listquota, mkmount, lsmount, whereis, flush')
    }
  },
}
