// A password for `afs login` and `afs pts`: from --password-file (its first line), from the
// terminal without echo, or from the first line of stdin when it is no terminal.
import { execFileSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import type { Command } from 'commander'
import { UsageError } from './args.ts'

/** --password-file FILE. */
export function withPasswordFile (cmd: Command): Command {
  return cmd.option('--password-file <file>', 'the password is this file\'s first line (default: asked on the terminal without echo, or a line on stdin)')
}

export async function readPassword (file: unknown, prompt: string): Promise<string> {
  if (typeof file === 'string') {
    let text
    try { text = await readFile(file, 'utf8') } catch (err) { throw new UsageError(`--password-file ${file}: ${(err as Error).message}`) }
    const line = text.split('\n')[0].replace(/\r$/, '')
    if (!line) throw new UsageError(`--password-file ${file}: its first line is empty`)
    return line
  }
  const tty = process.stdin.isTTY === true
  if (tty) process.stderr.write(prompt)
  const rl = createInterface({ input: process.stdin, terminal: false })
  // On a terminal, what is typed is not echoed.
  const unmute = tty ? mute() : () => {}
  try {
    for await (const line of rl) return line.replace(/\r$/, '')
    throw new UsageError('no password given (a terminal, --password-file FILE, or a line on stdin)')
  } finally {
    unmute()
    rl.close()
    if (tty) process.stderr.write('\n')
  }
}

/** Turns the terminal's echo off until the returned function turns it back on. */
function mute (): () => void {
  try { execFileSync('stty', ['-echo'], { stdio: ['inherit', 'ignore', 'ignore'] }) } catch { return () => {} }
  return () => { try { execFileSync('stty', ['echo'], { stdio: ['inherit', 'ignore', 'ignore'] }) } catch { /* the terminal is gone */ } }
}
