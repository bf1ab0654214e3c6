// Talks to a volume server directly (for `afs vos`), over TLS, trusting the cell CA given
// by --ca FILE, else $AFS_CA, else the CAs the local cache manager trusts (--cache DIR).
import { randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { AfsError, Peer, type Op, type Args, type Reply, type Trust } from '@afs-ts/common'
import { controlCall } from './control-client.ts'
import { cacheDirOf, UsageError } from './args.ts'

/** The option that names the CA a command trusts. */
export function caOption () {
  return { ca: { type: 'string' as const } }
}

/** What a command trusts: --ca FILE, $AFS_CA, or the local cache manager's CAs. */
export async function toolTrust (values: Record<string, unknown>): Promise<Trust> {
  const file = (values.ca as string | undefined) ?? process.env.AFS_CA
  if (file) {
    try { return { ca: await readFile(file, 'utf8') } } catch (err) { throw new UsageError(`--ca ${file}: ${(err as Error).message}`) }
  }
  try {
    return await controlCall(cacheDirOf(values), 'trust')
  } catch (err) {
    throw new UsageError(`no cell CA to trust: pass --ca FILE (the cell's ca.pem), or run a cache manager (--cache DIR) that has one (${(err as Error).message})`)
  }
}

export type ServerCall = <O extends Op>(op: O, args: Args<O>, timeoutMs?: number) => Promise<Reply<O>>
export type ServerCallTo = <O extends Op>(address: string, op: O, args: Args<O>, timeoutMs?: number) => Promise<Reply<O>>

/** Requests to servers, each on a connection of its own, trusting what the command was told to, found at the first (`timeoutMs`: long work, a move). */
export function serverCaller (values: Record<string, unknown>): ServerCallTo {
  let trust: Promise<Trust> | null = null
  return async (address, op, args, timeoutMs) => await withServer(address, await (trust ??= toolTrust(values)), async call => await call(op, args, timeoutMs))
}

/** One connection to a server for the requests `fn` makes (closed after). */
export async function withServer<T> (address: string, trust: Trust, fn: (call: ServerCall) => Promise<T>): Promise<T> {
  const peer = new Peer(address, `afs-tool-${randomUUID()}`, { trust })
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
