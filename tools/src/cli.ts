// The `afs` command: a catalog of subcommands, one file each (loaded when it runs), named exit codes.
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError, parse } from './args.ts'
import { CATALOG } from './catalog.ts'

function help (): string {
  const w = Math.max(...CATALOG.map(c => c.name.length))
  return 'afs — afs-ts, a distributed file system in the AFS/Coda tradition\n\nusage: afs COMMAND [options]   (afs COMMAND --help for more)\n\n' +
    CATALOG.map(c => `  ${c.name.padEnd(w)}  ${c.summary}`).join('\n') + '\n'
}

export async function main (argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (!name || name === '--help' || name === '-h' || name === 'help') { process.stdout.write(help()); return name ? EXIT_OK : EXIT_USAGE }
  const entry = CATALOG.find(c => c.name === name)
  if (!entry) { process.stderr.write(`afs: unknown command '${name}' (afs --help lists them)\n`); return EXIT_USAGE }
  const cmd = await entry.load()
  try {
    const { values, positionals } = parse(cmd, rest)
    if (values.help) { process.stdout.write(`usage: ${cmd.usage}\n\n${entry.summary}\n`); return EXIT_OK }
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
