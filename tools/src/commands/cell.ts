// `afs cell`: the cell's certificate authority, for cells whose servers are on other
// machines. `init` makes the CA in a directory kept on the admin's machine; `issue-server`
// makes a server's TLS directory from it, to copy to that server (`afs server --tls DIR`).
import { join } from 'node:path'
import { CA_FILE, initCellCa, serverNames, writeServerTls } from '@afs-ts/common/cell-ca'
import { act, collect, UsageError, EXIT_OK, type Define } from '../args.ts'

export const defineCell: Define = cmd => {
  act<{ cell: string }>(cmd.command('init').description('make a new cell CA in TLSDIR (keep it private; clients trust its ca.pem)')
    .argument('<tlsdir>').requiredOption('--cell <name>', 'the cell\'s name'), async ([dir], v) => {
    if (!/^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/.test(v.cell)) throw new UsageError(`--cell ${v.cell}: a cell name is letters, digits, . and -`)
    await initCellCa(dir, v.cell)
    process.stdout.write(`made the CA of cell ${v.cell} in ${dir}: clients trust ${join(dir, CA_FILE)} (--ca); keep ${dir} itself private\n`)
    return EXIT_OK
  })
  act<{ name?: string[], out?: string }>(cmd.command('issue-server').description('a certificate for a server, from the CA in TLSDIR: copy DIR to that server and start it with --tls DIR')
    .argument('<tlsdir>').argument('<host>', 'the server\'s host name or address')
    .option('--name <name>', 'one more name the certificate is for (repeatable)', collect)
    .option('--out <dir>', 'where to write it (default TLSDIR/HOST)'), async ([dir, host], v) => {
    if (!/^[A-Za-z0-9.:-]{1,253}$/.test(host)) throw new UsageError(`'${host}' is not a host name or address`)
    const names = [host, ...(v.name ?? [])]
    const out = v.out ?? join(dir, host)
    await writeServerTls(dir, host === 'localhost' || host === '127.0.0.1' ? serverNames(host) : names, out)
    process.stdout.write(`issued a certificate for ${names.join(', ')} in ${out}: copy it to that server and start it with --tls ${out}\n`)
    return EXIT_OK
  })
}
