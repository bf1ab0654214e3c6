// Log lines on stderr, so a user can follow a daemon: on a terminal (or with
// AFS_LOG_FORMAT=text) `time level component: message`; elsewhere (or with
// AFS_LOG_FORMAT=json) structured JSON lines from pino (`level`, `time`, `component`,
// `msg`), one per line, for a log collector. AFS_LOG=debug|quiet sets the level (info by default).
import { pino, type Logger } from 'pino'

export type Level = 'debug' | 'info' | 'warn' | 'error'

const QUIET = process.env.AFS_LOG === 'quiet'
const DEBUG = process.env.AFS_LOG === 'debug'
const JSON_LINES = process.env.AFS_LOG_FORMAT === 'json' || (process.env.AFS_LOG_FORMAT !== 'text' && !process.stderr.isTTY)

let root: Logger | null = null
function json (): Logger {
  root ??= pino({ level: DEBUG ? 'debug' : QUIET ? 'error' : 'info', base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }))
  return root
}

export function makeLog (component: string) {
  const child = JSON_LINES ? json().child({ component }) : null
  const write = (level: Level, msg: string): void => {
    if (level === 'debug' && !DEBUG) return
    if (QUIET && level !== 'error') return
    if (child) child[level](msg)
    else process.stderr.write(`${new Date().toISOString()} ${level} ${component}: ${msg}\n`)
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
