// Talks to a volume server directly (for `afs vos`, `afs pts`, `afs login`), over TLS,
// trusting the cell CA given by --ca FILE, else $AFS_CA, else the CAs the local cache
// manager trusts (--cache DIR); speaking as the caller's user: their token from the local
// cache manager, or with --localauth DIR (a server's data directory, as OpenAFS's
// -localauth) as the cell's administrator.
import { randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { AfsError, Peer, type Op, type Args, type Reply, type Trust } from '@afs-ts/common'
import { readTokenKey } from '@afs-ts/common/cell-ca'
import { LOCALAUTH_USER, signToken } from '@afs-ts/protection'
import { controlCall } from './control-client.ts'
import type { Command } from 'commander'
import { cacheDirOf, UsageError } from './args.ts'

/** A localauth token's lifetime: one command's. */
const LOCALAUTH_MS = 3600_000

/** The options of a command that talks to servers: whom it trusts, whom it speaks as, which cache manager and server to ask. */
export interface ToolOptions { ca?: string, localauth?: string, cache?: string, mount?: string, server?: string }

/** --server HOST:PORT: the server to ask (default: the local cache manager's first). */
export function withServerAsked (cmd: Command): Command {
  return cmd.option('--server <host:port>', 'the server to ask (default: the cache manager\'s first)')
}

/** --ca FILE and --localauth DATADIR: whom a command trusts and speaks as. */
export function withServerOptions (cmd: Command): Command {
  return cmd.option('--ca <file>', 'the cell CA to trust (default $AFS_CA, or the local cache manager\'s)')
    .option('--localauth <datadir>', 'act as the cell\'s administrator with the key in a server\'s data directory (default $AFS_LOCALAUTH)')
}

/** What a command trusts, and the token it speaks with in a cell (none: system:anyuser). */
export interface ToolCreds { trust: Trust, token (cell: string): Promise<string | undefined> }

/** A token as the cache manager's token file of a user holds it. */
export interface HeldToken { cell: string, user: string, token: string, expiresMs: number }

/** What a command trusts: --ca FILE, $AFS_CA, or the local cache manager's CAs. */
export async function toolTrust (values: ToolOptions): Promise<Trust> {
  const file = values.ca ?? process.env.AFS_CA
  if (file) {
    try { return { ca: await readFile(file, 'utf8') } } catch (err) { throw new UsageError(`--ca ${file}: ${(err as Error).message}`) }
  }
  try {
    return { ca: (await controlCall(cacheDirOf(values), 'trust')).ca }
  } catch (err) {
    throw new UsageError(`no cell CA to trust: pass --ca FILE (the cell's ca.pem), or run a cache manager (--cache DIR) that has one (${(err as Error).message})`)
  }
}

/** The token file of the calling user in the local cache manager's mount (--mount DIR, or asked of it; null: no cache manager answers). */
export async function tokenFile (values: ToolOptions): Promise<string | null> {
  const uid = String(process.getuid?.() ?? 0)
  if (typeof values.mount === 'string') return join(values.mount, '.afs-tokens', uid)
  try {
    return join((await controlCall(cacheDirOf(values), 'trust')).mount, '.afs-tokens', uid)
  } catch {
    return null
  }
}

/** The calling user's tokens held by the local cache manager. */
export async function heldTokens (values: ToolOptions): Promise<HeldToken[]> {
  const file = await tokenFile(values)
  if (!file) return []
  try { return JSON.parse(await readFile(file, 'utf8')) as HeldToken[] } catch { return [] }
}

export async function toolCreds (values: ToolOptions): Promise<ToolCreds> {
  const trust = await toolTrust(values)
  const local = values.localauth ?? process.env.AFS_LOCALAUTH
  if (local) {
    const key = await readTokenKey(join(local, 'tls')).catch(err => { throw new UsageError(`--localauth ${local}: ${(err as Error).message}`) })
    return { trust, token: async cell => (await signToken(key, { user: LOCALAUTH_USER, uid: 0, epoch: 0, cell }, LOCALAUTH_MS)).token }
  }
  let held: Promise<HeldToken[]> | null = null
  return { trust, token: async cell => (await (held ??= heldTokens(values))).find(t => t.cell === cell && t.expiresMs > Date.now())?.token }
}

export type ServerCall = <O extends Op>(op: O, args: Args<O>, timeoutMs?: number) => Promise<Reply<O>>
export type ServerCallTo = <O extends Op>(address: string, op: O, args: Args<O>, timeoutMs?: number) => Promise<Reply<O>>

/** Requests to servers, each on a connection of its own, with what the command was told to use, found at the first (`timeoutMs`: long work, a move). */
export function serverCaller (values: ToolOptions): ServerCallTo {
  let creds: Promise<ToolCreds> | null = null
  return async (address, op, args, timeoutMs) => await withServer(address, await (creds ??= toolCreds(values)), async call => await call(op, args, timeoutMs))
}

/**
 * One connection to a server for the requests `fn` makes (closed after), each with the
 * caller's token for the server's cell (`cell()`: its name, once a request was made).
 */
export async function withServer<T> (address: string, creds: ToolCreds, fn: (call: ServerCall, cell: () => string) => Promise<T>): Promise<T> {
  const peer = new Peer(address, `afs-tool-${randomUUID()}`, { trust: creds.trust })
  let token: string | undefined
  try {
    return await fn(async (op, args, timeoutMs) => {
      try {
        if (!peer.hello) await peer.call('ping', {})
        token ??= await creds.token(peer.hello!.cell)
        return await peer.call(op, args, timeoutMs, token)
      } catch (err) {
        const e = AfsError.from(err)
        throw e.code === 'CONNECTION' ? new Error(`cannot reach server ${e.message}`) : e
      }
    }, () => peer.hello?.cell ?? '')
  } finally {
    peer.close()
  }
}

/** --server if given, else the first server of the cache manager's (--cache DIR) first cell. */
export async function serverAddress (values: ToolOptions): Promise<string> {
  if (typeof values.server === 'string') return values.server
  const cells = await controlCall(cacheDirOf(values), 'servers')
  if (!cells[0]?.servers[0]) throw new Error('no server known: pass --server HOST:PORT')
  return cells[0].servers[0]
}
