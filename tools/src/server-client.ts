// Talks to a volume server directly (for `afs vos`).
import { connect } from 'node:net'
import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import { RpcConnection, parseHostPort, PROTOCOL_VERSION, type Op, type Args, type Reply } from '@afs-ts/common'
import { controlCall } from './control-client.ts'

export async function serverCall<O extends Op> (address: string, op: O, args: Args<O>): Promise<Reply<O>> {
  const { host, port } = parseHostPort(address)
  const socket = connect({ host, port })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', err => reject(new Error(`cannot reach server ${address}: ${err.message}`)))
  })
  const conn = new RpcConnection(socket)
  try {
    await conn.request('hello', { protocol: PROTOCOL_VERSION, clientId: `afs-tool-${randomUUID()}`, hostname: hostname() })
    return await conn.request(op, args) as Reply<O>
  } finally {
    conn.close()
  }
}

/** --server if given, else the first server of the cache manager's first cell. */
export async function serverAddress (values: Record<string, unknown>, cacheDir: string): Promise<string> {
  if (typeof values.server === 'string') return values.server
  const cells = await controlCall(cacheDir, 'servers')
  if (!cells[0]?.servers[0]) throw new Error('no server known: pass --server HOST:PORT')
  return cells[0].servers[0]
}
