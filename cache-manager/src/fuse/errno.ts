// The one place an AfsError becomes an errno (OpenAFS has one afs_CheckCode).
import { AfsError, makeLog, type ErrorCode } from '@afs-ts/common'

const log = makeLog('fuse')

const ERRNO: Record<ErrorCode, number> = {
  NOT_FOUND: 2, // ENOENT
  EXISTS: 17, // EEXIST
  NOT_DIR: 20, // ENOTDIR
  IS_DIR: 21, // EISDIR
  NOT_EMPTY: 39, // ENOTEMPTY
  INVALID: 22, // EINVAL
  CROSS_VOLUME: 18, // EXDEV
  PERMISSION: 13, // EACCES
  UNAUTHENTICATED: 13, // EACCES: as if without a token
  NOT_PERMITTED: 1, // EPERM
  NO_DATA: 61, // ENODATA
  TOO_MANY_LINKS: 31, // EMLINK
  WOULD_BLOCK: 11, // EAGAIN
  NO_LOCK: 37, // ENOLCK
  QUOTA: 122, // EDQUOT
  NO_SPACE: 28, // ENOSPC
  TOO_LARGE: 27, // EFBIG
  NAME_TOO_LONG: 36, // ENAMETOOLONG
  STALE: 116, // ESTALE
  BUSY: 16, // EBUSY
  UNAVAILABLE: 112, // EHOSTDOWN: a server behind the one asked is down
  MOVED: 116, // ESTALE: the volume moved and could not be found again
  VOLUME_OFFLINE: 110, // ETIMEDOUT, as Coda answers a miss while disconnected
  TIMEOUT: 110, // ETIMEDOUT
  CONNECTION: 110, // ETIMEDOUT
  PROTOCOL: 5, // EIO
  BAD_REQUEST: 5, // EIO
  HASH_MISMATCH: 5, // EIO
  NOT_SUPPORTED: 95, // EOPNOTSUPP
  CONFLICT: 30, // EROFS: a conflicted object takes no writes until `afs repair`
  IO: 5, // EIO
}

/** A negative errno for fuse-native. Unknown errors are logged and become EIO. */
export function toErrno (err: unknown): number {
  if (!(err instanceof AfsError)) {
    const code = (err as NodeJS.ErrnoException)?.errno
    if (typeof code === 'number' && code < 0) return code // a node fs error carries -errno
    log.error(`unexpected error: ${(err as Error)?.stack ?? String(err)}`)
    return -5
  }
  if (err.code === 'IO') log.warn(`I/O error: ${err.message}`)
  return -ERRNO[err.code]
}
