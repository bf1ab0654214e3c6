// `afs server`: a volume server, with the embedded volume location database.
import { FileServer } from '@afs-ts/fileserver'
import { parseHostPort } from '@afs-ts/common'
import { UsageError, EXIT_OK, type Command } from '../args.ts'
import { untilSignal } from '../lifecycle.ts'

export const serverCommand: Command = {
  name: 'server',
  summary: 'run a volume server (with the embedded location database)',
  usage: 'afs server --data DIR --listen HOST:PORT --cell NAME',
  options: { data: { type: 'string' }, listen: { type: 'string' }, cell: { type: 'string' }, advertise: { type: 'string' } },
  async run (v) {
    if (!v.data || !v.listen || !v.cell) throw new UsageError('--data, --listen and --cell are required')
    let hp
    try { hp = parseHostPort(v.listen as string) } catch (err) { throw new UsageError((err as Error).message) }
    const server = await FileServer.open({ dataDir: v.data as string, cell: v.cell as string, host: hp.host, port: hp.port, advertise: v.advertise as string | undefined })
    const address = await server.listen()
    process.stdout.write(JSON.stringify({ ready: 'server', address, cell: server.cell }) + '\n')
    await untilSignal()
    await server.close()
    return EXIT_OK
  },
}
