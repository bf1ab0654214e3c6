// `afs up`: a whole one-machine cell in the foreground — a volume server with the
// location database and root volume, and a cache manager mounting it.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ADMIN_PASSWORD_FILE } from '@afs-ts/protection'
import { FileServer } from '@afs-ts/fileserver'
import { CacheManagerProcess } from '@afs-ts/cache-manager'
import { act, UsageError, EXIT_OK, defaultStateDir, type Define } from '../args.ts'
import { CA_FILE } from '@afs-ts/common/cell-ca'
import { readCa, runClient, sizeOption } from './client.ts'

export const defineUp: Define = cmd => {
  cmd.option('--mount <dir>', 'where to mount the cell', '/afs')
    .option('--state <dir>', `where the server's data and the cache live (default ${defaultStateDir()})`)
    .option('--cell <name>', 'the cell\'s name', 'local')
    .option('--port <n>', 'the server\'s port on 127.0.0.1', '7000')
    .option('--cache-size <size>', 'how much disk the cache may use (e.g. 4G)')
  act<{ mount: string, state?: string, cell: string, port: string, cacheSize?: string }>(cmd, async (_args, v) => {
    const state = v.state ?? defaultStateDir()
    const port = Number(v.port)
    if (!/^\d+$/.test(v.port) || port > 65535) throw new UsageError(`--port must be 0-65535, not ${v.port}`)
    const cell = v.cell
    if (!/^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/.test(cell)) throw new UsageError(`--cell: '${cell}' is not a cell name (letters, digits, . and -)`)
    const server = await FileServer.open({ dataDir: join(state, 'server'), cell, host: '127.0.0.1', port })
    const address = await server.listen()
    const proc = new CacheManagerProcess({
      cacheDir: join(state, 'cache'), mountDir: v.mount, cells: [[address]], cacheBytes: sizeOption(v.cacheSize),
      trust: { ca: await readCa(join(state, 'server', 'tls', CA_FILE)) },
    })
    // The user who ran it works as the cell's admin at once (a token held for their uid).
    const passwordFile = join(state, 'server', ADMIN_PASSWORD_FILE)
    const password = (await readFile(passwordFile, 'utf8')).trim()
    const uid = Number(process.env.SUDO_UID ?? process.getuid?.() ?? 0)
    const { token, expiresMs, user } = await server.pts.login('admin', password)
    proc.cm.tokens.set(uid, { cell, user, token, expiresMs })
    try {
      await runClient(proc, () => {
        if (server.madeAdmin) process.stderr.write(`afs up: the cell's admin password is ${password} (kept in ${passwordFile}, mode 0600)\n`)
        process.stderr.write(`afs up: cell ${cell} is at ${proc.mountDir}/${cell} (server ${address}); uid ${uid} works as admin; Ctrl-C to stop\n`)
      })
    } finally {
      await server.close()
    }
    return EXIT_OK
  })
}
