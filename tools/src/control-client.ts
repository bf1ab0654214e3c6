// Talks to a running cache manager through its control socket.
import { connect } from 'node:net'
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
    return await conn.request(op, args, { timeoutMs: 120_000 }) as ControlReply<O>
  } finally {
    conn.close()
  }
}
