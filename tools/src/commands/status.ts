// `afs status`: per volume and server, connection state and cache use; counters.
import { formatSize } from '@afs-ts/common'
import type { StatusReport } from '@afs-ts/cache-manager'
import { cacheDirOf, cacheOption, EXIT_OK, type Command } from '../args.ts'
import { controlCall } from '../control-client.ts'
import { table } from '../table.ts'

export const statusCommand: Command = {
  name: 'status',
  summary: 'show servers, volumes, cache use and counters of a cache manager',
  usage: 'afs status [--cache DIR] [--json]',
  options: { ...cacheOption(), json: { type: 'boolean' } },
  async run (v) {
    const s = await controlCall(cacheDirOf(v), 'status') as StatusReport
    if (v.json) {
      process.stdout.write(JSON.stringify(s, null, 2) + '\n')
      return EXIT_OK
    }
    const out = [
      `mount ${s.mount}   cache ${s.cacheDir}: ${formatSize(s.cache.usedBytes)} of ${formatSize(s.cache.limitBytes)}, ${s.cache.objects} objects`,
      '',
      table(['CELL', 'SERVER', 'STATE'], s.servers.map(x => [x.cell, x.address, x.connected ? 'connected' : 'disconnected'])),
      table(['CELL', 'VOLUME', 'ID', 'SERVER', 'STATE', 'CACHED', 'BYTES'], s.volumes.map(x => [x.cell, x.name, x.id, x.server, x.state, x.cachedObjects, formatSize(x.cachedBytes)])),
      table(['COUNTER', 'VALUE'], Object.entries(s.counters)),
    ]
    process.stdout.write(out.join('\n'))
    return EXIT_OK
  },
}
