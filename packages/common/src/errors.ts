// One error type with stable codes, like hypercore-errors. Errors cross the wire as
// {code, message, data} and are rebuilt on the other side with AfsError.from().

export const ERROR_CODES = [
  'NOT_FOUND', 'EXISTS', 'NOT_DIR', 'IS_DIR', 'NOT_EMPTY', 'INVALID', 'CROSS_VOLUME',
  'PERMISSION', 'QUOTA', 'NO_SPACE', 'TOO_LARGE', 'NAME_TOO_LONG', 'STALE', 'BUSY',
  'VOLUME_OFFLINE', 'TIMEOUT', 'CONNECTION', 'PROTOCOL', 'BAD_REQUEST', 'HASH_MISMATCH',
  'NOT_SUPPORTED', 'CONFLICT', 'IO', 'NOT_PERMITTED', 'NO_DATA', 'TOO_MANY_LINKS', 'WOULD_BLOCK', 'NO_LOCK',
  // A server could not reach another it needed (the location database, another member): it itself answered.
  'UNAVAILABLE',
  // The volume is not (or no longer) on the server asked: look it up again.
  'MOVED',
  // No identity good for this (no token, or one expired, revoked or tampered with): log in again.
  'UNAUTHENTICATED',
] as const

export type ErrorCode = (typeof ERROR_CODES)[number]

export interface WireError { code: string, message: string, data?: unknown }

export class AfsError extends Error {
  readonly code: ErrorCode
  readonly data: unknown

  constructor (code: ErrorCode, message: string, data?: unknown) {
    super(message)
    this.name = 'AfsError'
    this.code = code
    this.data = data
  }

  toWire (): WireError {
    return { code: this.code, message: this.message, data: this.data }
  }

  /** Rebuilds an error received from a peer; unknown codes become IO. */
  static fromWire (e: WireError): AfsError {
    const code = (ERROR_CODES as readonly string[]).includes(e.code) ? e.code as ErrorCode : 'IO'
    return new AfsError(code, String(e.message), e.data)
  }

  /** Wraps anything thrown into an AfsError (node errno codes map to ours). */
  static from (err: unknown): AfsError {
    if (err instanceof AfsError) return err
    const code = (err as NodeJS.ErrnoException)?.code
    const message = err instanceof Error ? err.message : String(err)
    switch (code) {
      case 'ENOENT': return new AfsError('NOT_FOUND', message)
      case 'EEXIST': return new AfsError('EXISTS', message)
      case 'ENOSPC': return new AfsError('NO_SPACE', message)
      case 'EDQUOT': return new AfsError('QUOTA', message)
      case 'EACCES': return new AfsError('PERMISSION', message)
      case 'EPERM': return new AfsError('NOT_PERMITTED', message)
      case 'ECONNREFUSED': case 'ECONNRESET': case 'EPIPE': case 'EHOSTUNREACH':
        return new AfsError('CONNECTION', message)
      default: return new AfsError('IO', message)
    }
  }
}

const make = (code: ErrorCode) => (message: string, data?: unknown) => new AfsError(code, message, data)

export const notFound = make('NOT_FOUND')
export const exists = make('EXISTS')
export const notDir = make('NOT_DIR')
export const isDir = make('IS_DIR')
export const notEmpty = make('NOT_EMPTY')
export const invalid = make('INVALID')
export const crossVolume = make('CROSS_VOLUME')
export const permission = make('PERMISSION')
/** EPERM: an operation only the owner or root may do (EACCES is `permission`). */
export const notPermitted = make('NOT_PERMITTED')
export const quotaExceeded = make('QUOTA')
export const noSpace = make('NO_SPACE')
export const tooLarge = make('TOO_LARGE')
export const nameTooLong = make('NAME_TOO_LONG')
export const stale = make('STALE')
export const moved = make('MOVED')
export const unauthenticated = make('UNAUTHENTICATED')
export const busy = make('BUSY')
export const volumeOffline = make('VOLUME_OFFLINE')
export const timeout = make('TIMEOUT')
export const connectionLost = make('CONNECTION')
export const protocolError = make('PROTOCOL')
export const badRequest = make('BAD_REQUEST')
export const hashMismatch = make('HASH_MISMATCH')
export const notSupported = make('NOT_SUPPORTED')
/** EMLINK: a file with as many names as it may have. */
export const tooManyLinks = make('TOO_MANY_LINKS')
/** EAGAIN: a lock another holds, asked for without waiting. */
export const wouldBlock = make('WOULD_BLOCK')
/** ENOLCK: the lock a change was made under is no longer held (its lease ran out). */
export const noLock = make('NO_LOCK')
/** ENODATA: no such extended attribute. */
export const noData = make('NO_DATA')
export const conflict = make('CONFLICT')

/** Errors that mean "the server did not answer", as opposed to an answer that says no. */
export function isUnreachable (err: unknown): boolean {
  return err instanceof AfsError && (err.code === 'CONNECTION' || err.code === 'TIMEOUT' || err.code === 'VOLUME_OFFLINE')
}
