// `afs login`, `afs tokens`, `afs logout`: a user's tokens, held by the local cache manager
// for the local user who runs the command (through that user's token file in the mount,
// which the kernel lets no one else open). Requests made by that user's processes carry
// the token; without one they are system:anyuser's.
import { readFile, unlink, writeFile } from 'node:fs/promises'
import { cacheDirOf, cacheOption, need, UsageError, EXIT_OK, type Command } from '../args.ts'
import { heldTokens, serverAddress, serverOptions, tokenFile, toolTrust, withServer, type HeldToken, type ToolCreds } from '../server-client.ts'
import { readPassword } from '../password.ts'
import { table } from '../table.ts'
import { tokenFileText } from '@afs-ts/cache-manager/tokens'

async function myTokenFile (v: Record<string, unknown>): Promise<string> {
  const file = await tokenFile(v)
  if (!file) throw new UsageError(`no cache manager answers at ${cacheDirOf(v)} (--cache DIR, or --mount DIR): tokens are held by one`)
  return file
}

export const loginCommand: Command = {
  name: 'login',
  usage: 'afs login USER [--password-file FILE] [--cache DIR | --mount DIR --server HOST:PORT --ca FILE]\n  (the password from the terminal, without echo, unless --password-file or a line on stdin; --mount: the cache manager\'s mount, for users who cannot reach its control socket)',
  options: { 'password-file': { type: 'string' }, server: { type: 'string' }, mount: { type: 'string' }, ...cacheOption(), ...serverOptions() },
  async run (v, pos) {
    const [user] = need(pos, 1, 'login USER')
    const file = await myTokenFile(v)
    const password = await readPassword(v['password-file'], `Password for ${user}: `)
    const via = await serverAddress(v, cacheDirOf(v))
    // Asked as no one: the login itself is what proves who the caller is.
    const creds: ToolCreds = { trust: await toolTrust(v), token: async () => undefined }
    const held = await withServer(via, creds, async (call, cell) => {
      const r = await call('ptLogin', { name: user, password })
      return { cell: cell(), user: r.user, token: r.token, expiresMs: r.expiresMs } satisfies HeldToken
    })
    // The whole list: this cell's token replaced, the others' kept.
    const others = (await heldTokens(v)).filter(t => t.cell !== held.cell)
    await writeFile(file, tokenFileText([...others, held]))
    process.stdout.write(`${held.user} has a token for cell ${held.cell} until ${utc(held.expiresMs)}\n`)
    return EXIT_OK
  },
}

export const tokensCommand: Command = {
  name: 'tokens',
  usage: 'afs tokens [--cache DIR | --mount DIR] [--json]',
  options: { json: { type: 'boolean' }, mount: { type: 'string' }, ...cacheOption() },
  async run (v, pos) {
    need(pos, 0, 'tokens')
    const list = await heldTokens(v)
    const shown = list.map(t => ({ user: t.user, cell: t.cell, expiresMs: t.expiresMs, expired: t.expiresMs <= Date.now() }))
    if (v.json) { process.stdout.write(JSON.stringify(shown, null, 2) + '\n'); return EXIT_OK }
    process.stdout.write(shown.length
      ? table(['USER', 'CELL', 'EXPIRES'], shown.map(t => [t.user, t.cell, `${utc(t.expiresMs)}${t.expired ? ' (expired)' : ''}`]))
      : 'no tokens: processes of this user act as system:anyuser (afs login USER)\n')
    return EXIT_OK
  },
}

export const logoutCommand: Command = {
  name: 'logout',
  usage: 'afs logout [--cache DIR | --mount DIR]',
  options: { mount: { type: 'string' }, ...cacheOption() },
  async run (v, pos) {
    need(pos, 0, 'logout')
    const file = await myTokenFile(v)
    const had = JSON.parse(await readFile(file, 'utf8').catch(() => '[]')) as unknown[]
    await unlink(file)
    process.stdout.write(`dropped ${had.length} token${had.length === 1 ? '' : 's'}\n`)
    return EXIT_OK
  },
}

function utc (ms: number): string {
  return `${new Date(ms).toISOString().replace('T', ' ').slice(0, 19)} UTC`
}
