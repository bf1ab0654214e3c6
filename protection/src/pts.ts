// The protection database (AFS's ptserver): the cell's users and groups. Users have
// positive ids, groups negative ones; three groups are built in, as in AFS:
// system:administrators (who may administer volumes and this database),
// system:anyuser (everyone, with a token or not) and system:authuser (everyone with one).
// It is kept beside the location database: in the first server's LMDB (`embedded-pts.ts`)
// or in etcd (`etcd-pts.ts`); the other servers reach the first one's (`remote-pts.ts`).
import { AfsError, invalid, type PtsRecord } from '@afs-ts/common'

export const ADMINISTRATORS = -204
export const ANYUSER = -101
export const AUTHUSER = -102
export const BUILT_IN_GROUPS: ReadonlyArray<{ id: number, name: string }> = [
  { id: ADMINISTRATORS, name: 'system:administrators' },
  { id: ANYUSER, name: 'system:anyuser' },
  { id: AUTHUSER, name: 'system:authuser' },
]
/** The first id a new user takes, and the first (counting down) a new group takes. */
export const FIRST_USER_ID = 1
export const FIRST_GROUP_ID = -206

export interface PtsEntry {
  id: number
  name: string
  kind: 'user' | 'group'
  createdMs: number
  /** Who made it (a group's owner may change its members). */
  owner: number
  /** A user's password, as an Argon2id hash (never sent to anyone but the cell's servers). */
  hash?: string
  /** A user's token generation: a new password or a removal makes every token of an older one void. */
  tokenEpoch?: number
  /** A group's members (user ids). */
  members?: number[]
}

/** An entry as it is shown: never its password hash. */
export type PtsView = PtsRecord

export function view (e: PtsEntry): PtsView {
  const { hash: _hash, ...rest } = e
  return rest
}

/** Where entries are kept: by name, with ids handed out and changes made atomically. */
export interface PtsStore {
  get (nameOrId: string | number): Promise<PtsEntry | undefined>
  list (): Promise<PtsEntry[]>
  /** A new entry: its name taken and the next id of its kind (or `fixedId`) handed out in one transaction (EXISTS: the name is taken). */
  create (name: string, kind: PtsEntry['kind'], make: (id: number) => PtsEntry, fixedId?: number): Promise<PtsEntry>
  /** Changes entry `name` in one transaction (it may be read again and `fn` run again). */
  change (name: string, fn: (e: PtsEntry) => PtsEntry): Promise<PtsEntry>
  remove (name: string): Promise<void>
}

/** A user or group name: AFS's rules (a group's may have `owner:` before it; system: is the cell's own). */
export function checkName (name: string, kind: PtsEntry['kind']): void {
  const ok = kind === 'user' ? /^[a-z0-9][a-z0-9._@-]{0,62}$/i.test(name) : /^([a-z0-9][a-z0-9._@-]{0,62}:)?[a-z0-9][a-z0-9._@-]{0,62}$/i.test(name)
  if (!ok) throw invalid(`'${name}' is not a ${kind} name (letters, digits, . _ @ -${kind === 'group' ? ', and one owner: prefix' : ''}; at most 63)`)
  if (name.toLowerCase().startsWith('system:')) throw invalid(`'${name}': system: names are the cell's own`)
}

export function notAnEntry (name: string | number): AfsError {
  return new AfsError('NOT_FOUND', `no user or group ${name} in the protection database`)
}
