// What every subcommand shares: commander for its verbs, options and --help (unknown
// flags and stray arguments are refused per verb), one-line errors with named exit
// codes, and the defaults of where a cell keeps its state.
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { Command } from 'commander'
import { parseHostPort, type HostPort } from '@afs-ts/common'

export const EXIT_OK = 0
export const EXIT_FAILURE = 1
export const EXIT_USAGE = 2

export class UsageError extends Error {}

/** A command's code fills in its commander command: options, arguments, verbs, actions (its name and summary are in `catalog.ts`). */
export type Define = (cmd: Command) => void

/** `afs vos create`, as the user typed it, for messages. */
export function commandPath (cmd: Command): string {
  const names: string[] = []
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name())
  return names.join(' ')
}

/**
 * The action of a verb: its positional arguments and options in, an exit code out. A
 * UsageError is a one-line error and exit 2; any other, a one-line error and exit 1.
 */
export function act<O extends object> (cmd: Command, fn: (args: string[], opts: O) => Promise<number>): Command {
  return cmd.action(async (...xs: unknown[]) => {
    const c = xs[xs.length - 1] as Command
    try {
      process.exitCode = await fn(c.args, c.opts<O>())
    } catch (err) {
      const usage = err instanceof UsageError
      process.stderr.write(`${commandPath(c)}: ${(err as Error).message}\n${usage ? `(${commandPath(c)} --help for usage)\n` : ''}`)
      process.exitCode = usage ? EXIT_USAGE : EXIT_FAILURE
    }
  })
}

/** Collects a repeatable option's values (`--server A --server B`). */
export function collect (value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value]
}

/** HOST:PORT given on the command line, or a usage error naming `flag` (when given). */
export function hostPortArg (text: string, flag?: string): HostPort {
  try { return parseHostPort(text) } catch (err) { throw new UsageError(`${flag ? `${flag}: ` : ''}${(err as Error).message}`) }
}

/** A number of seconds given on the command line, within [min, max], or a usage error naming `flag`. */
export function secondsArg (text: string | undefined, flag: string, min: number, max = Infinity): number | undefined {
  if (text === undefined) return undefined
  const n = Number(text)
  if (text.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new UsageError(`${flag} ${text}: a number of seconds${max === Infinity ? ` (${min} or more)` : `, from ${min} to ${max}`}`)
  return n
}

/** Where `afs up` keeps its server data and cache by default. */
export function defaultStateDir (): string {
  if (process.getuid?.() === 0) return '/var/lib/afs-ts'
  return join(process.env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'), 'afs-ts')
}

export function defaultCacheDir (): string {
  return join(defaultStateDir(), 'cache')
}

/** --cache DIR: which cache manager to ask. */
export function withCache (cmd: Command): Command {
  return cmd.option('--cache <dir>', `the cache manager's cache directory (default ${defaultCacheDir()})`)
}

/** A verb of `parent` (`afs vos create`…), with --cache DIR: which cache manager to ask. */
export function verb (parent: Command, name: string, summary: string): Command {
  return withCache(parent.command(name).description(summary))
}

/** --json: the answer as JSON instead of a table. */
export function withJson (cmd: Command): Command {
  return cmd.option('--json', 'print JSON instead of a table')
}

export function cacheDirOf (values: { cache?: string }): string {
  return values.cache ?? defaultCacheDir()
}
