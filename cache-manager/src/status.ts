// What `afs status` shows: per cell, server and volume, connection state and cache use,
// plus the monotonic counters.
import type { CacheManager } from './cache-manager.ts'
import type { VolumeState } from './volume.ts'

export interface VolumeStatus {
  cell: string
  name: string
  id: number
  server: string
  /** The volume's servers (VSG) and those that answer now (AVSG). */
  sites: string[]
  reachable: string[]
  state: VolumeState
  /** Why it is not connected, when it is not. */
  cause?: string
  cachedObjects: number
  cachedBytes: number
  cml: { records: number, bytes: number }
}

export function statusReport (cm: CacheManager, mount: string) {
  const volumes: VolumeStatus[] = []
  const servers: Array<{ cell: string, address: string, connected: boolean, forced: boolean }> = []
  for (const cell of cm.cells.values()) {
    for (const link of cell.links.values()) servers.push({ cell: cell.name, address: link.address, connected: link.connected, forced: link.forcedDown })
    for (const v of cell.volumes.all) {
      let objects = 0
      let bytes = 0
      for (const o of cm.table.values()) {
        if (o.cell === cell.name && o.status.fid.volume === v.id) { objects++; bytes += o.cachedBytes + cm.containers.chunks.bytesOf(o.key) }
      }
      const state = v.state
      const cml = cm.cml.pending(cell.name, v.id)
      volumes.push({ cell: cell.name, name: v.name, id: v.id, server: v.preferred.address, sites: v.entry.servers, reachable: v.avsg.map(l => l.address), state, ...(state === 'disconnected' ? { cause: v.downCause } : {}), cachedObjects: objects, cachedBytes: bytes, cml })
    }
  }
  return {
    mount,
    cacheDir: cm.opts.cacheDir,
    cache: { usedBytes: cm.space.heldBytes, limitBytes: cm.space.limitBytes, objects: cm.table.size, chunks: { ...cm.containers.chunks.count(), bytes: cm.containers.chunks.bytes } },
    counters: { ...cm.counters },
    servers,
    volumes,
    cml: cm.cml.pending(),
    reintegration: {
      running: [...cm.reintegrator.progress].map(([cell, p]) => ({ cell, ...p })),
      last: [...cm.reintegrator.last.values()],
    },
    locks: cm.fileLocks.list(),
    conflicts: cm.cml.conflicts().map(c => ({ path: c.path, kind: c.kind, id: c.id, time: c.time, localCopy: c.localCopy, serverCopy: c.serverCopy, message: c.message })),
    misses: [...cm.objects.misses.values()],
  }
}

export type StatusReport = ReturnType<typeof statusReport>
