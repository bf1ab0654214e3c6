// Tunables of the cache manager, units in the names.

/** How long an ordinary (non-streaming) RPC may take. */
export const RPC_TIMEOUT_MS = 15_000
/** A callback promise is treated as expired this long before the server's expiry (clock skew). */
export const CALLBACK_SLACK_MS = 10_000
/** Default cache size when none is given. */
export const DEFAULT_CACHE_BYTES = 10 * 2 ** 30
/** FUSE: seconds the kernel may trust attributes and names (kept short: callbacks cannot reach the kernel). */
export const KERNEL_ATTR_TIMEOUT_S = 1
export const KERNEL_ENTRY_TIMEOUT_S = 1
/** FUSE: largest write the kernel sends in one call (needs big_writes). */
export const FUSE_MAX_WRITE_BYTES = 128 * 1024
/** Keep-alive and reconnection probes to each server; with PROBE_TIMEOUT_MS, bounds how long a dead server goes unnoticed. */
export const PROBE_INTERVAL_MS = 2_000
/** A probe (connect or ping) that takes longer than this counts as a failure (generous: a loaded machine is not a dead server). */
export const PROBE_TIMEOUT_MS = 5_000
/** Probes in a row that must succeed before a down server counts as up again (hysteresis). */
export const PROBES_TO_RECONNECT = 2
/** Write-back mode: a change reaches the server once it is this old (CML optimizations save the rest). */
export const WRITE_BACK_AGE_MS = 5_000
/** Periodic hoard walks. */
export const HOARD_WALK_INTERVAL_MS = 10 * 60_000
/** Files this big or bigger are read as they come in when opened cold; smaller ones arrive in a chunk or two anyway. */
export const STREAMED_READ_MIN_BYTES = 1024 * 1024
/** Files bigger than this share of the cache are read through it in chunks (chunk-store.ts) when they have no container (hoarding still caches them whole). */
export const CHUNKED_FILE_FRACTION = 1 / 4
/** The unit a file read in chunks is fetched, kept and evicted in: at most this, and at most a sixteenth of the cache… */
export const CHUNK_MAX_BYTES = 4 * 1024 * 1024
/** …but never less than this. */
export const CHUNK_MIN_BYTES = 64 * 1024
/** Chunks fetched ahead of a reader reading in order, at most (and at most a quarter of the cache). */
export const READ_AHEAD_CHUNKS = 8
