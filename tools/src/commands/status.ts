// `afs status`: per volume and server, connection state and cache use; counters.
import { formatSize } from '@afs-ts/common'
import { act, cacheDirOf, withCache, withJson, EXIT_OK, type Define } from '../args.ts'
import { controlCall } from '../control-client.ts'
import { table } from '../table.ts'

export const defineStatus: Define = cmd => {
  withJson(withCache(cmd)).option('--misses', 'the objects asked for while disconnected that were not in the cache')
  act<{ cache?: string, json?: boolean, misses?: boolean }>(cmd, async (_args, v) => {
    const s = await controlCall(cacheDirOf(v), 'status')
    if (v.misses) {
      if (v.json) process.stdout.write(JSON.stringify(s.misses, null, 2) + '\n')
      else process.stdout.write(s.misses.length ? table(['PATH', 'TIMES', 'LAST'], s.misses.map(m => [m.path, m.count, new Date(m.time).toISOString()])) : 'no misses\n')
      return EXIT_OK
    }
    if (v.json) {
      process.stdout.write(JSON.stringify(s, null, 2) + '\n')
      return EXIT_OK
    }
    const out = [
      `mount ${s.mount}   cache ${s.cacheDir}: ${formatSize(s.cache.usedBytes)} of ${formatSize(s.cache.limitBytes)}, ${s.cache.objects} objects${s.cache.chunks.chunks ? ` (${formatSize(s.cache.chunks.bytes)} in ${s.cache.chunks.chunks} chunks of ${s.cache.chunks.files} files too big to cache whole)` : ''}`,
      '',
      table(['CELL', 'SERVER', 'STATE'], s.servers.map(x => [x.cell, x.address, x.connected ? 'connected' : 'disconnected'])),
      table(['CELL', 'VOLUME', 'ID', 'SERVER', 'STATE', 'CACHED', 'BYTES', 'CML', 'CML BYTES'], s.volumes.map(x => [x.cell, x.name, x.id, x.sites.length > 1 ? `${x.server} (${x.reachable.length}/${x.sites.length} up)` : x.server, x.state, x.cachedObjects, formatSize(x.cachedBytes), x.cml.records, formatSize(x.cml.bytes)])),
      ...s.reintegration.running.map(r => `reintegrating ${r.cell}: ${r.done}/${r.total} records\n`),
      ...s.reintegration.last.map(r => `last reintegration of ${r.cell}: ${new Date(r.at).toISOString()}, ${r.applied} applied, ${r.conflicts} conflicts${r.done ? '' : ' (more to do)'}\n`),
      ...s.reintegration.last.filter(r => r.waitingFor).map(r => `reintegration of ${r.cell} waits: ${r.error}\n`),
      s.locks.length ? table(['LOCK', 'FID', 'KIND', 'BYTES', 'HELD'], s.locks.map(l => [l.family, l.fid, l.kind, `${l.start}-${l.end ?? 'end'}`, l.where === 'server' ? 'on the server' : 'this machine only'])) : '',
      s.conflicts.length ? table(['CONFLICT', 'KIND'], s.conflicts.map(c => [c.path, c.kind])) + `${s.conflicts.length} to repair: afs repair show PATH, afs repair interactive\n` : '',
      table(['COUNTER', 'VALUE'], Object.entries(s.counters)),
    ]
    process.stdout.write(out.join('\n'))
    return EXIT_OK
  })
}
