// Talks to a volume server directly (for `afs vos`).
import { randomUUID } from 'node:crypto'
import { AfsError, Peer, type Op, type Args, type Reply } from '@afs-ts/common'
import { controlCall } from './control-client.ts'

/** `timeoutMs`: how long the server may take to answer (long work: a move). */
export async function serverCall<O extends Op> (address: string, op: O, args: Args<O>, timeoutMs?: number): Promise<Reply<O>> {
  return await withServer(address, async call => await call(op, args, timeoutMs))
}

export type ServerCall = <O extends Op>(op: O, args: Args<O>, timeoutMs?: number) => Promise<Reply<O>>

/** One connection to a server for the requests `fn` makes (closed after). */
export async function withServer<T> (address: string, fn: (call: ServerCall) => Promise<T>): Promise<T> {
  const peer = new Peer(address, `afs-tool-${randomUUID()}`)
  try {
    return await fn(async (op, args, timeoutMs) => {
      try {
        return await peer.call(op, args, timeoutMs)
      } catch (err) {
        const e = AfsError.from(err)
        throw e.code === 'CONNECTION' ? new Error(`cannot reach server ${e.message}`) : e
      }
    })
  } finally {
    peer.close()
  }
}

/** --server if given, else the first server of the cache manager's first cell. */
export async function serverAddress (values: Record<string, unknown>, cacheDir: string): Promise<string> {
  if (typeof values.server === 'string') return values.server
  const cells = await controlCall(cacheDir, 'servers')
  if (!cells[0]?.servers[0]) throw new Error('no server known: pass --server HOST:PORT')
  return cells[0].servers[0]
}
