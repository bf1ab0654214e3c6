// A whole directory as a server lists it: page after page of `fetchDir`, from anything
// that sends requests to a server (a peer, a cache manager's link or volume).
import type { Fid } from './fid.ts'
import type { Args, DirReply, ObjectType, Reply, VnodeStatus } from './protocol.ts'

/** What asks a server for a page of a directory. */
export interface DirPages { call (op: 'fetchDir', args: Args<'fetchDir'>): Promise<Reply<'fetchDir'>> }

/** Every entry of directory `fid`, in name order, and its status as the last page gave it. */
export async function fetchWholeDir (from: DirPages, fid: Fid): Promise<{ entries: Array<[string, Fid, ObjectType]>, status: VnodeStatus }> {
  const entries: Array<[string, Fid, ObjectType]> = []
  let after: string | undefined
  let page: DirReply
  do {
    page = await from.call('fetchDir', after === undefined ? { fid } : { fid, after })
    for (const e of page.entries) { entries.push(e); after = e[0] }
  } while (page.more && page.entries.length > 0)
  return { entries, status: page.status }
}
