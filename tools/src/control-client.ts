// Talks to a running cache manager through its control socket.
import { connect } from 'node:net'
import { join } from 'node:path'
import { RpcConnection } from '@afs-ts/common'

export async function controlCall (cacheDir: string, op: string, args: unknown = {}): Promise<unknown> {
  const path = join(cacheDir, 'control.sock')
  const socket = connect(path)
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', err => reject(new Error(`no cache manager at ${cacheDir} (${(err as NodeJS.ErrnoException).code ?? err.message}); is \`afs client\` or \`afs up\` running? (--cache DIR)`)))
  })
  const conn = new RpcConnection(socket)
  try {
    return await conn.request(op, args, { timeoutMs: 120_000 })
  } finally {
    conn.close()
  }
}
