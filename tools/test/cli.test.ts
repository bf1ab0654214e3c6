// The `afs` command as a user meets it: every verb has its own --help and its own options,
// another verb's flag or a stray argument is refused with a one-line error and exit 2, and
// the completion script completes verbs, options and option values.
import test from 'ava'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { Command } from 'commander'
import { CATALOG } from '../src/catalog.ts'

const AFS = join(import.meta.dirname, '..', 'bin', 'afs.js')

function afs (args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise(resolve => {
    execFile(process.execPath, [AFS, ...args], (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr }))
  })
}

/** Every command path with no verbs below it: ['vos', 'create'], ['status'], … */
async function leaves (): Promise<string[][]> {
  const out: string[][] = []
  const walk = (c: Command, path: string[]) => { if (c.commands.length === 0) out.push(path); for (const s of c.commands) walk(s, [...path, s.name()]) }
  for (const entry of CATALOG) {
    const define = await entry.load()
    const cmd = new Command(entry.name)
    define(cmd)
    walk(cmd, [entry.name])
  }
  return out
}

test('every verb answers --help with its own usage and options, and exit 0', async t => {
  const paths = await leaves()
  t.true(paths.length > 50, `${paths.length} verbs`)
  for (let i = 0; i < paths.length; i += 8) {
    await Promise.all(paths.slice(i, i + 8).map(async path => {
      const r = await afs([...path, '--help'])
      t.is(r.code, 0, path.join(' '))
      t.true(r.stdout.startsWith(`Usage: afs ${path.join(' ')}`), `${path.join(' ')}: ${r.stdout.split('\n')[0]}`)
      t.regex(r.stdout, /--help/)
    }))
  }
  const vos = await afs(['vos', '--help'])
  for (const verb of ['create', 'list', 'examine', 'resolve', 'move', 'addsite', 'remsite', 'setquota', 'listaddrs']) t.regex(vos.stdout, new RegExp(`^  ${verb}\\b`, 'm'), verb)
})

test('a verb refuses the flags of other verbs, unknown flags, stray or missing arguments and bad choices: one line, exit 2', async t => {
  const cases: Array<[string[], RegExp]> = [
    [['repair', 'list', '--keep', 'local'], /^afs repair list: unknown option '--keep'/],
    [['vos', 'list', '--quota', '1G'], /^afs vos list: unknown option '--quota'/],
    [['hoard', 'walk', '--json', '--prefix', 'x'], /^afs hoard walk: unknown option '--prefix'/],
    [['status', 'extra'], /^afs status: too many arguments/],
    [['hoard', 'remove'], /^afs hoard remove: missing required argument 'path'/],
    [['vos', 'create', 'v', '--quorum', 'most'], /^afs vos create: option '--quorum <rule>' argument 'most' is invalid/],
    [['vos', 'move', 'v'], /^afs vos move: required option '--to <host:port>' not specified/],
    [['repair', 'frobnicate'], /^afs repair: unknown command 'frobnicate'/],
    [['sync', '--timeout', 'soon'], /^afs sync: --timeout soon: a number of seconds/],
  ]
  for (const [args, message] of cases) {
    const r = await afs(args)
    t.is(r.code, 2, args.join(' '))
    t.regex(r.stderr, message, args.join(' '))
  }
})

test('the completion script completes commands, verbs, each verb\'s options and option values', async t => {
  const script = await afs(['completion', 'bash'])
  t.is(script.code, 0, script.stderr)
  const complete = (words: string[]) => new Promise<string>((resolve, reject) => {
    const program = `${script.stdout}\nCOMP_WORDS=(${words.map(w => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _afs; echo "\${COMPREPLY[*]}"`
    execFile('bash', ['-c', program], (err, stdout, stderr) => err ? reject(new Error(stderr)) : resolve(stdout.trim()))
  })
  t.is(await complete(['afs', 'vo']), 'vos')
  t.is(await complete(['afs', 'repair', 'resolver', 'a']), 'add')
  t.is(await complete(['afs', 'vos', 'create', 'v', '--server', '127.0.0.1:7000', '--quo']), '--quota --quorum')
  t.is(await complete(['afs', 'vos', 'create', '--quorum', '']), 'any majority')
  t.is(await complete(['afs', 'repair', 'resolve', '--keep', 's']), 'server')
  t.is(await complete(['afs', 'repair', 'list', '--']), '--cache --json --help', 'only the options of repair list')
  t.is((await afs(['completion', 'fish'])).code, 2)
})
