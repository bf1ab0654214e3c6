// `afs repair`: conflicts found by reintegration. This session: `list`; resolving them
// is the repair tool's own issue.
import { cacheDirOf, cacheOption, UsageError, EXIT_OK, type Command } from '../args.ts'
import { controlCall } from '../control-client.ts'
import { table } from '../table.ts'

interface Conflict { id: string, path: string, kind: string, time: number, localCopy: string | null, serverCopy: string | null, message: string }

export const repairCommand: Command = {
  name: 'repair',
  summary: 'conflicts found by reintegration: list',
  usage: 'afs repair list [--json] [--cache DIR]',
  options: { ...cacheOption(), json: { type: 'boolean' } },
  async run (v, pos) {
    const [sub] = pos
    if (sub !== 'list') throw new UsageError(sub ? `unknown repair command '${sub}'` : 'repair needs a command: list')
    const list = await controlCall(cacheDirOf(v), 'repairList') as Conflict[]
    if (v.json) { process.stdout.write(JSON.stringify(list, null, 2) + '\n'); return EXIT_OK }
    if (list.length === 0) { process.stdout.write('no conflicts\n'); return EXIT_OK }
    process.stdout.write(table(['PATH', 'KIND', 'WHEN', 'LOCAL VERSION', 'SERVER VERSION'],
      list.map(c => [c.path, c.kind, new Date(c.time).toISOString(), c.localCopy ?? '-', c.serverCopy ?? '-'])))
    return EXIT_OK
  },
}
