// Times as the protocol carries them: whole milliseconds since the epoch (negative before
// 1970) and, where utimensat set them finer, the nanoseconds past that millisecond.

/** A POSIX timespec: whole seconds (negative before 1970) and 0-999,999,999 nanoseconds. */
export interface Timespec { sec: number, nsec: number }

/** A time as milliseconds and the nanoseconds past them (0-999,999). */
export interface PreciseTime { ms: number, ns: number }

export function fromTimespec (t: Timespec): PreciseTime {
  return { ms: t.sec * 1000 + Math.floor(t.nsec / 1e6), ns: t.nsec % 1e6 }
}

export function toTimespec (ms: number, ns = 0): Timespec {
  const sec = Math.floor(ms / 1000)
  return { sec, nsec: (ms - sec * 1000) * 1e6 + ns }
}
