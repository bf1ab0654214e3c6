// `afs login`, `afs tokens`, `afs logout`: a user's tokens, held by the local cache manager
// for the local user who runs the command (through that user's token file in the mount,
// which the kernel lets no one else open). Requests made by that user's processes carry
// the token; without one they are system:anyuser's.
import { readFile, unlink, writeFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { act, cacheDirOf, withCache, withJson, UsageError, EXIT_OK, type Define } from '../args.ts'
import { heldTokens, serverAddress, tokenFile, toolTrust, withServer, withServerAsked, withServerOptions, type HeldToken, type ToolCreds, type ToolOptions } from '../server-client.ts'
import { readPassword, withPasswordFile } from '../password.ts'
import { table } from '../table.ts'
import { tokenFileText } from '@afs-ts/cache-manager/tokens'

async function myTokenFile (v: ToolOptions): Promise<string> {
  const file = await tokenFile(v)
  if (!file) throw new UsageError(`no cache manager answers at ${cacheDirOf(v)} (--cache DIR, or --mount DIR): tokens are held by one`)
  return file
}

/** --mount DIR: the cache manager's mount, for users who cannot reach its control socket. */
const withMount = (cmd: Command) => cmd.option('--mount <dir>', 'the cache manager\'s mount (for users who cannot reach its control socket)')

export const defineLogin: Define = cmd => {
  withServerAsked(withPasswordFile(withServerOptions(withMount(withCache(cmd)))))
    .argument('<user>', 'a user of the cell')
  act<ToolOptions & { passwordFile?: string }>(cmd, async ([user], v) => {
    const file = await myTokenFile(v)
    const password = await readPassword(v.passwordFile, `Password for ${user}: `)
    const via = await serverAddress(v)
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
  })
}

export const defineTokens: Define = cmd => {
  act<ToolOptions & { json?: boolean }>(withJson(withMount(withCache(cmd))), async (_args, v) => {
    const list = await heldTokens(v)
    const shown = list.map(t => ({ user: t.user, cell: t.cell, expiresMs: t.expiresMs, expired: t.expiresMs <= Date.now() }))
    if (v.json) { process.stdout.write(JSON.stringify(shown, null, 2) + '\n'); return EXIT_OK }
    process.stdout.write(shown.length
      ? table(['USER', 'CELL', 'EXPIRES'], shown.map(t => [t.user, t.cell, `${utc(t.expiresMs)}${t.expired ? ' (expired)' : ''}`]))
      : 'no tokens: processes of this user act as system:anyuser (afs login USER)\n')
    return EXIT_OK
  })
}

export const defineLogout: Define = cmd => {
  act<ToolOptions>(withMount(withCache(cmd)), async (_args, v) => {
    const file = await myTokenFile(v)
    const had = JSON.parse(await readFile(file, 'utf8').catch(() => '[]')) as unknown[]
    await unlink(file)
    process.stdout.write(`dropped ${had.length} token${had.length === 1 ? '' : 's'}\n`)
    return EXIT_OK
  })
}

function utc (ms: number): string {
  return `${new Date(ms).toISOString().replace('T', ' ').slice(0, 19)} UTC`
}
