// Tunables of the cache manager, units in the names.

/** How long to wait for a TCP connection to a server. */
export const CONNECT_TIMEOUT_MS = 3_000
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
