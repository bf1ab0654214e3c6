// The cache manager's Prometheus metrics (`afs client --metrics HOST:PORT`): RPCs, fetches
// and stores, callback breaks, cache use and evictions, the modification log,
// reintegrations and conflicts, volumes by state — read from what the cache manager keeps
// when they are scraped.
import { Metrics } from '@afs-ts/common'
import type { CacheManager } from './cache-manager.ts'

export function cacheMetrics (cm: Pick<CacheManager, 'counters' | 'space' | 'table' | 'cml' | 'reintegrator' | 'cells'>): Metrics {
  const m = new Metrics('afs_cache_')
  const c = cm.counters
  m.counted('rpcs_total', 'RPCs sent to servers for the file system\'s work', () => c.rpcs)
  m.counted('probes_total', 'Keep-alive and reconnection probes', () => c.probes)
  m.counted('fetches_total', 'Whole-file fetches', () => c.fetches)
  m.counted('streamed_opens_total', 'Read-only opens of a cold file read as it came in', () => c.streamedOpens)
  m.counted('prefetched_files_total', 'Small files cached from the bytes that came with a cold listing', () => c.prefetchedFiles)
  m.counted('stores_total', 'Whole-file stores', () => c.stores)
  m.counted('fetched_bytes_total', 'Bytes fetched', () => c.bytesFetched)
  m.counted('stored_bytes_total', 'Bytes stored', () => c.bytesStored)
  m.counted('callback_breaks_total', 'Callback breaks received (one per object)', () => c.callbackBreaks)
  m.counted('evictions_total', 'Objects evicted from the cache', () => c.evictions)
  m.gauge('bytes', 'Bytes the cache holds', () => cm.space.heldBytes)
  m.gauge('limit_bytes', 'The cache\'s size limit', () => cm.space.limitBytes)
  m.gauge('objects', 'Objects the cache knows', () => cm.table.size)
  m.gauge('cml_records', 'Records waiting in the client modification log', () => cm.cml.pending().records)
  m.gauge('cml_bytes', 'Bytes of the data waiting in the client modification log', () => cm.cml.pending().bytes)
  m.gauge('conflicts', 'Conflicts open (afs repair list)', () => cm.cml.conflicts().length)
  m.counted('reintegrations_total', 'Reintegration runs', () => cm.reintegrator.totals.runs)
  m.counted('reintegrated_records_total', 'Records reintegration applied', () => cm.reintegrator.totals.applied)
  m.counted('reintegration_conflicts_total', 'Conflicts reintegration found', () => cm.reintegrator.totals.conflicts)
  m.gauges('volumes', 'Volumes by state', ['state'], () => {
    const by = new Map<string, number>()
    for (const cell of cm.cells.values()) for (const v of cell.volumes.all) by.set(v.state, (by.get(v.state) ?? 0) + 1)
    return [...by].map(([state, n]) => [{ state }, n])
  })
  return m
}
