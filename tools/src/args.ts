// Argument parsing shared by every subcommand: node's parseArgs, strict, with one-line
// errors, --help everywhere, and the defaults of where a cell keeps its state.
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { parseHostPort, type HostPort } from '@afs-ts/common'

export const EXIT_OK = 0
export const EXIT_FAILURE = 1
export const EXIT_USAGE = 2

export class UsageError extends Error {}

/** HOST:PORT given on the command line, or a usage error naming `flag` (when given). */
export function hostPortArg (text: string, flag?: string): HostPort {
  try { return parseHostPort(text) } catch (err) { throw new UsageError(`${flag ? `${flag}: ` : ''}${(err as Error).message}`) }
}

/** A command's code (its name and summary are in `catalog.ts`, so that listing them loads none of it). */
export interface Command {
  name: string
  usage: string
  options: NonNullable<ParseArgsConfig['options']>
  run (values: Record<string, unknown>, positionals: string[]): Promise<number>
}

export function parse (cmd: Command, argv: string[]) {
  try {
    return parseArgs({ args: argv, options: { ...cmd.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true })
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0])
  }
}

/** Where `afs up` keeps its server data and cache by default. */
export function defaultStateDir (): string {
  if (process.getuid?.() === 0) return '/var/lib/afs-ts'
  return join(process.env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'), 'afs-ts')
}

export function defaultCacheDir (): string {
  return join(defaultStateDir(), 'cache')
}

export function cacheOption () {
  return { cache: { type: 'string' as const } }
}

export function cacheDirOf (values: Record<string, unknown>): string {
  return (values.cache as string | undefined) ?? defaultCacheDir()
}

export function need (positionals: string[], n: number, what: string): string[] {
  if (positionals.length !== n) throw new UsageError(`expected ${what}`)
  return positionals
}
