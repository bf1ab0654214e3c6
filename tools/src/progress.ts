// A progress line on stderr for long work: rewritten in place on a terminal, a line every
// few seconds into a log.
const TTY_EVERY_MS = 100
const LOG_EVERY_MS = 2_000

export interface Progress {
  /** Shows the latest state (shown at once on a terminal, at most every few seconds elsewhere). */
  show (line: string): void
  /** Clears the line (a terminal's) before the result is printed. */
  done (): void
}

export function progress (out: NodeJS.WriteStream = process.stderr): Progress {
  const tty = out.isTTY === true
  let last = 0
  let shown = false
  return {
    show (line) {
      const now = Date.now()
      if (now - last < (tty ? TTY_EVERY_MS : LOG_EVERY_MS)) return
      last = now
      shown = true
      out.write(tty ? `\r${line}\u001b[K` : `${line}\n`)
    },
    done () { if (tty && shown) out.write('\r\u001b[K') },
  }
}
