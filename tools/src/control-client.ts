// Talks to a running cache manager through its control socket.
import { connect } from 'node:net'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { RpcConnection } from '@afs-ts/common'
import type { ControlArgs, ControlOp, ControlReply } from '@afs-ts/cache-manager'

/** The arguments a request takes: none may be left out where some are required. */
export type ControlCallArgs<O extends ControlOp> = undefined extends ControlArgs<O> ? [args?: ControlArgs<O>] : [args: ControlArgs<O>]

export async function controlCall<O extends ControlOp> (cacheDir: string, op: O, ...[args = {}]: ControlCallArgs<O>): Promise<ControlReply<O>> {
  const path = join(cacheDir, 'control.sock')
  const socket = connect(path)
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', err => reject(new Error(`no cache manager at ${cacheDir} (${(err as NodeJS.ErrnoException).code ?? err.message}); is \`afs client\` or \`afs up\` running? (--cache DIR)`)))
  })
  const conn = new RpcConnection(socket)
  try {
    return await conn.request(op, args, { timeoutMs: 120_000, token: ANONYMOUS_OPS.has(op) ? undefined : await callerTokens(conn) }) as ControlReply<O>
  } finally {
    conn.close()
  }
}

/** Requests that need no identity: what the cache manager says of itself. */
const ANONYMOUS_OPS: ReadonlySet<ControlOp> = new Set<ControlOp>(['trust', 'status', 'servers'])

/**
 * The caller's tokens, read from their own token file in the cache manager's mount (only
 * they can open it), for the request to be made as them: what it asks of servers carries
 * them. None: as system:anyuser.
 */
async function callerTokens (conn: RpcConnection): Promise<string | undefined> {
  const { mount } = await conn.request('trust', {}) as ControlReply<'trust'>
  try {
    const held = JSON.parse(await readFile(join(mount, '.afs-tokens', String(process.getuid?.() ?? 0)), 'utf8')) as Array<{ cell: string, token: string }>
    return held.length ? JSON.stringify(held.map(t => ({ cell: t.cell, token: t.token }))) : undefined
  } catch {
    return undefined
  }
}
