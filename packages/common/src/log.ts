// Log lines on stderr: `time level component: message`, so a user can follow a daemon.

export type Level = 'debug' | 'info' | 'warn' | 'error'

const QUIET = process.env.AFS_LOG === 'quiet'
const DEBUG = process.env.AFS_LOG === 'debug'

export function makeLog (component: string) {
  const write = (level: Level, msg: string): void => {
    if (level === 'debug' && !DEBUG) return
    if (QUIET && level !== 'error') return
    process.stderr.write(`${new Date().toISOString()} ${level} ${component}: ${msg}\n`)
  }
  return {
    /** Whether debug lines are written: test it before building an expensive one. */
    debugging: DEBUG,
    debug: (m: string) => write('debug', m),
    info: (m: string) => write('info', m),
    warn: (m: string) => write('warn', m),
    error: (m: string) => write('error', m),
  }
}

export type Log = ReturnType<typeof makeLog>
