// Monotonic counters of this cache manager since start, shown by `afs status`.

export interface Counters {
  /** Every RPC sent to any server for the file system's work (keep-alive probes apart). */
  rpcs: number
  /** Keep-alive and reconnection probes. */
  probes: number
  /** Whole-file data fetches. */
  fetches: number
  /** Read-only opens of a file fetched cold, read as it came in (before its fetch ended). */
  streamedOpens: number
  /** Small files cached from the bytes that came with a cold listing (no fetch of their own). */
  prefetchedFiles: number
  /** Files of a directory read in order, fetched ahead of their opens. */
  readAheadFiles: number
  /** Chunks of files too big to cache whole, fetched. */
  chunkFetches: number
  /** Whole-file stores. */
  stores: number
  /** Callback breaks received (one per object). */
  callbackBreaks: number
  /** Bytes fetched and stored. */
  bytesFetched: number
  bytesStored: number
  evictions: number
}

export function newCounters (): Counters {
  return { rpcs: 0, probes: 0, fetches: 0, streamedOpens: 0, prefetchedFiles: 0, readAheadFiles: 0, chunkFetches: 0, stores: 0, callbackBreaks: 0, bytesFetched: 0, bytesStored: 0, evictions: 0 }
}
