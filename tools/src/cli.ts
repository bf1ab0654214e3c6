// The `afs` command: a catalog of subcommands, one file each, loaded only when it runs
// (`afs --help` loads none; `afs completion` all), parsed by commander; named exit codes.
import { Command, CommanderError } from 'commander'
import { EXIT_OK, EXIT_USAGE, commandPath } from './args.ts'
import { CATALOG } from './catalog.ts'

/** Every command's errors start with its path and end with where its usage is. */
function configure (cmd: Command): void {
  const path = commandPath(cmd)
  cmd.configureOutput({ outputError: (text, write) => write(`${path}: ${text.replace(/^error: /, '')}`) })
    .showHelpAfterError(`(${path} --help for usage)`)
  for (const sub of cmd.commands) configure(sub)
}

export async function main (argv: string[]): Promise<number> {
  const program = new Command('afs')
    .description('afs-ts, a distributed file system in the AFS/Coda tradition')
    .usage('COMMAND [options]   (afs COMMAND --help for more)')
    .exitOverride()
    .helpCommand('help [command]', 'show the help of a command')
  // `afs help vos` and `afs vos --help` alike load vos.
  const wanted = argv[0] === 'help' ? argv[1] : argv[0]
  for (const entry of CATALOG) {
    const cmd = program.command(entry.name).description(entry.summary)
    if (wanted === entry.name || wanted === 'completion') (await entry.load())(cmd)
  }
  configure(program)
  try {
    await program.parseAsync(argv, { from: 'user' })
    return Number(process.exitCode ?? EXIT_OK)
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err
    // Help asked for is a success; help shown for want of a verb, and every parse error, are usage errors.
    return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? EXIT_OK : EXIT_USAGE
  }
}

const code = await main(process.argv.slice(2))
// Output to a parent's pipe is asynchronous (a socket): let it drain before exiting.
await new Promise(resolve => process.stdout.write('', resolve))
await new Promise(resolve => process.stderr.write('', resolve))
process.exit(code)
