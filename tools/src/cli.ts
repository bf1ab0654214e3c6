// The `afs` command: a table of subcommands, one file each, named exit codes.
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError, parse, type Command } from './args.ts'
import { upCommand } from './commands/up.ts'
import { serverCommand } from './commands/server.ts'
import { clientCommand } from './commands/client.ts'
import { statusCommand } from './commands/status.ts'
import { vosCommand } from './commands/vos.ts'
import { fsCommand } from './commands/fs.ts'
import { disconnectCommand, reconnectCommand, syncCommand } from './commands/connectivity.ts'
import { repairCommand } from './commands/repair.ts'
import { hoardCommand } from './commands/hoard.ts'

const COMMANDS: Command[] = [upCommand, serverCommand, clientCommand, statusCommand, disconnectCommand, reconnectCommand, syncCommand, hoardCommand, repairCommand, vosCommand, fsCommand]

function help (): string {
  const w = Math.max(...COMMANDS.map(c => c.name.length))
  return 'afs — afs-ts, a distributed file system in the AFS/Coda tradition\n\nusage: afs COMMAND [options]   (afs COMMAND --help for more)\n\n' +
    COMMANDS.map(c => `  ${c.name.padEnd(w)}  ${c.summary}`).join('\n') + '\n'
}

export async function main (argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (!name || name === '--help' || name === '-h' || name === 'help') { process.stdout.write(help()); return name ? EXIT_OK : EXIT_USAGE }
  const cmd = COMMANDS.find(c => c.name === name)
  if (!cmd) { process.stderr.write(`afs: unknown command '${name}' (afs --help lists them)\n`); return EXIT_USAGE }
  try {
    const { values, positionals } = parse(cmd, rest)
    if (values.help) { process.stdout.write(`usage: ${cmd.usage}\n\n${cmd.summary}\n`); return EXIT_OK }
    return await cmd.run(values, positionals)
  } catch (err) {
    if (err instanceof UsageError) { process.stderr.write(`afs ${name}: ${err.message}\nusage: ${cmd.usage}\n`); return EXIT_USAGE }
    process.stderr.write(`afs ${name}: ${(err as Error).message}\n`)
    return EXIT_FAILURE
  }
}

const code = await main(process.argv.slice(2))
// Output to a parent's pipe is asynchronous (a socket): let it drain before exiting.
await new Promise(resolve => process.stdout.write('', resolve))
await new Promise(resolve => process.stderr.write('', resolve))
process.exit(code)
