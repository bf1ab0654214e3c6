// `afs cell`: the cell's certificate authority, for cells whose servers are on other
// machines. `init` makes the CA in a directory kept on the admin's machine; `issue-server`
// makes a server's TLS directory from it, to copy to that server (`afs server --tls DIR`).
import { join } from 'node:path'
import { CA_FILE, initCellCa, serverNames, writeServerTls } from '@afs-ts/common/cell-ca'
import { need, UsageError, EXIT_OK, type Command } from '../args.ts'

export const cellCommand: Command = {
  name: 'cell',
  usage: 'afs cell init TLSDIR --cell NAME | afs cell issue-server TLSDIR HOST [--name NAME …] [--out DIR]\n  (issue-server: a certificate for HOST and any more --name, in DIR, default TLSDIR/HOST: copy it to that server and start it with --tls DIR)',
  options: { cell: { type: 'string' }, name: { type: 'string', multiple: true }, out: { type: 'string' } },
  async run (v, pos) {
    const [sub, ...rest] = pos
    switch (sub) {
      case 'init': {
        const [dir] = need(rest, 1, 'cell init TLSDIR --cell NAME')
        const cell = v.cell as string | undefined
        if (!cell || !/^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/.test(cell)) throw new UsageError('cell init needs --cell NAME (letters, digits, . and -)')
        await initCellCa(dir, cell)
        process.stdout.write(`made the CA of cell ${cell} in ${dir}: clients trust ${join(dir, CA_FILE)} (--ca); keep ${dir} itself private\n`)
        return EXIT_OK
      }
      case 'issue-server': {
        const [dir, host] = need(rest, 2, 'cell issue-server TLSDIR HOST')
        if (!/^[A-Za-z0-9.:-]{1,253}$/.test(host)) throw new UsageError(`'${host}' is not a host name or address`)
        const names = [host, ...((v.name as string[] | undefined) ?? [])]
        const out = (v.out as string | undefined) ?? join(dir, host)
        await writeServerTls(dir, host === 'localhost' || host === '127.0.0.1' ? serverNames(host) : names, out)
        process.stdout.write(`issued a certificate for ${names.join(', ')} in ${out}: copy it to that server and start it with --tls ${out}\n`)
        return EXIT_OK
      }
      default: throw new UsageError(sub ? `unknown cell command '${sub}'` : 'cell needs a command: init, issue-server')
    }
  },
}
