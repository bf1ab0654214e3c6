// What `afs status` shows: per cell, server and volume, connection state and cache use,
// plus the monotonic counters.
import type { CacheManager } from './cache-manager.ts'

export interface VolumeStatus {
  cell: string
  name: string
  id: number
  server: string
  state: 'connected' | 'disconnected'
  cachedObjects: number
  cachedBytes: number
}

export function statusReport (cm: CacheManager, mount: string) {
  const volumes: VolumeStatus[] = []
  const servers: Array<{ cell: string, address: string, connected: boolean }> = []
  for (const cell of cm.cells.values()) {
    for (const link of cell.links.values()) servers.push({ cell: cell.name, address: link.address, connected: link.connected })
    for (const v of cell.knownVolumes) {
      let objects = 0
      let bytes = 0
      for (const o of cm.table.values()) {
        if (o.cell === cell.name && o.status.fid.volume === v.id) { objects++; bytes += o.cachedBytes }
      }
      const link = cell.linkFor(v.id)
      volumes.push({ cell: cell.name, name: v.name, id: v.id, server: link.address, state: link.connected ? 'connected' : 'disconnected', cachedObjects: objects, cachedBytes: bytes })
    }
  }
  return {
    mount,
    cacheDir: cm.opts.cacheDir,
    cache: { usedBytes: cm.usedBytes, limitBytes: cm.cacheBytes, objects: cm.table.size },
    counters: { ...cm.counters },
    servers,
    volumes,
  }
}

export type StatusReport = ReturnType<typeof statusReport>
