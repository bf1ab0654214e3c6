// Who may do what to a volume's objects: every request is checked against the ACL of the
// directory it concerns — a directory's own, a file's directory's — for the identity of
// the token behind it, the AFS way: positive entries' rights less negative ones', the
// owner read bit needed to read a file; members of system:administrators and the cell's
// own servers may do anything. A directory from before ACLs is open to everyone.
import {
  ALL_RIGHTS, RIGHT_ADMINISTER, RIGHT_DELETE, RIGHT_INSERT, RIGHT_LOCK, RIGHT_LOOKUP, RIGHT_READ, RIGHT_WRITE, formatRights, permission, rightsOf,
  ROOT_VNODE, type Acl, type Args, type Fid, type IdentityRecord, type Op,
} from '@afs-ts/common'
import { AsyncLocalStorage } from 'node:async_hooks'
import { ADMINISTRATORS, ANONYMOUS_ID, ANYUSER } from '@afs-ts/protection'
import type { VnodeRecord } from './vnode.ts'

/** A new volume's root: its administrators may do anything, everyone else look and read (AFS's root.cell). */
export const NEW_VOLUME_ACL: Acl = { pos: [[ADMINISTRATORS, ALL_RIGHTS], [ANYUSER, RIGHT_READ | RIGHT_LOOKUP]], neg: [] }
/** A directory made before ACLs: as open as everything was then. */
const LEGACY_ACL: Acl = { pos: [[ANYUSER, ALL_RIGHTS]], neg: [] }

/** Who is asking, as the checks need it: an identity, or one of the cell's servers. */
export type Asker = IdentityRecord | 'server'

/** Who the request under way is made by (its replies carry that one's rights; what it makes, that one as owner). */
export const asking = new AsyncLocalStorage<Asker>()

/** The cell user who makes an object now, when a user with a token does (AFS's owner id). */
export function ownerNow (): number | undefined {
  const who = asking.getStore()
  return who === undefined || who === 'server' || who.uid === ANONYMOUS_ID ? undefined : who.uid
}

/** What checking needs of the store. */
export interface AccessStore {
  get (fid: Fid): VnodeRecord
  dirRecord (volume: number, vnode: number): VnodeRecord | undefined
}

/** The object a check is about, and what it must allow: on the object itself (its directory's ACL for a file), or on a directory. */
interface Need { fid: Fid, rights: number, what: string }

export class Access {
  constructor (private readonly store: AccessStore) {}

  /** The rights `who` has on `fid` (a directory's own; a file's, its directory's, less read without the owner read bit). */
  rights (fid: Fid, who: Asker): number {
    if (who === 'server' || who.admin) return ALL_RIGHTS
    const rec = this.store.get(fid)
    const dir = rec.type === 'dir' ? rec : this.store.dirRecord(fid.volume, rec.parent) ?? this.store.dirRecord(fid.volume, ROOT_VNODE)
    let r = rightsOf(dir?.acl ?? LEGACY_ACL, who.cps)
    if (rec.type === 'file' && (rec.mode & 0o400) === 0) r &= ~RIGHT_READ
    return r
  }

  /** Refuses the request when `who` lacks a right it needs, saying which. */
  check<O extends Op> (op: O, a: Args<O>, who: Asker): void {
    if (who === 'server' || who.admin) return
    for (const n of needs(op, a as never)) {
      let have: number
      try {
        have = this.rights(n.fid, who)
      } catch {
        continue // no such object: the request fails as it would anyway
      }
      const missing = n.rights & ~have
      if (missing) throw permission(`${n.what}: ${who.name} lacks the ${formatRights(missing)} right${formatRights(missing).length > 1 ? 's' : ''} (has ${formatRights(have) || 'none'})`)
    }
  }
}

/** The rights each request needs, and on what. */
function needs (op: Op, a: Record<string, unknown>): Need[] {
  const fid = a.fid as Fid
  const dir = a.dir as Fid
  switch (op) {
    case 'fetchStatus': case 'locate': case 'readlink': case 'resolve': return [{ fid, rights: RIGHT_LOOKUP, what: 'status' }]
    case 'fetchDir': return [{ fid, rights: RIGHT_LOOKUP, what: 'listing' }]
    case 'fetchStatuses': return [] // (each object checked on its own: null where refused)
    case 'lookup': return [{ fid: dir, rights: RIGHT_LOOKUP, what: 'lookup' }]
    case 'fetchData': return [{ fid, rights: RIGHT_READ, what: 'read' }]
    case 'store': case 'setattr': case 'setxattr': case 'removexattr': case 'repairReplica': return [{ fid, rights: RIGHT_WRITE, what: 'write' }]
    case 'lock': case 'unlock': case 'testLock': return [{ fid, rights: RIGHT_LOCK, what: 'lock' }]
    case 'create': case 'mkdir': case 'symlink': case 'mknod': return [{ fid: dir, rights: RIGHT_INSERT, what: 'insert' }]
    case 'mkmount': return [{ fid: dir, rights: RIGHT_INSERT | RIGHT_ADMINISTER, what: 'mount point' }]
    case 'link': return [{ fid: dir, rights: RIGHT_INSERT, what: 'link' }]
    case 'remove': case 'rmdir': return [{ fid: dir, rights: RIGHT_DELETE, what: 'delete' }]
    case 'rename': return [{ fid: a.fromDir as Fid, rights: RIGHT_DELETE, what: 'rename out' }, { fid: a.toDir as Fid, rights: RIGHT_INSERT, what: 'rename in' }]
    case 'storeAcl': return [{ fid, rights: RIGHT_ADMINISTER, what: 'set ACL' }]
    case 'replay': {
      const r = a.record as { op: Op | 'xattr' } & Record<string, unknown>
      // (A logged extended attribute is set or removed as the server has it then.)
      return needs(r.op === 'xattr' ? 'setxattr' : r.op, r)
    }
    default: return []
  }
}
