// What the servers do with the protection database: `afs pts` changes (by
// system:administrators, a group's owner, or a user for their own password), logins that
// give tokens, and the identity behind a token — its user and every group it is in (AFS's
// CPS), so that ACLs can be checked against it.
import { readFile, rename, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { invalid, isUnreachable, makeLog, permission, unauthenticated, type IdentityRecord } from '@afs-ts/common'
import { ADMINISTRATORS, ANYUSER, AUTHUSER, BUILT_IN_GROUPS, checkName, notAnEntry, view, type PtsEntry, type PtsStore, type PtsView } from './pts.ts'
import { LOCALAUTH_USER, checkPassword, hashPassword, newPassword, signToken, verifyToken } from './token.ts'

const log = makeLog('pts')
/** The id AFS gives the user without a token. */
export const ANONYMOUS_ID = 32766
/** Failed logins of one user before each next one waits, doubling up to a limit. */
const FREE_FAILURES = 3
const MAX_LOGIN_DELAY_MS = 30_000
/** How long an identity found for a token is used before it is found again (group changes, revocations). */
const IDENTITY_MS = 1_000
/** Where a new cell's first admin password is kept, in its first server's data directory. */
export const ADMIN_PASSWORD_FILE = 'admin.password'

/** Who asks; `cps`: the user and every group it is in, system:authuser and system:anyuser included. */
export type Identity = IdentityRecord

export const ANONYMOUS: Identity = { uid: ANONYMOUS_ID, name: 'anonymous', cps: [ANYUSER], admin: false }

/** Who asks: their identity, and the token it came from (passed on when the request is forwarded). */
export interface Caller { token: string | null, identity: Identity }

/** The protection service as servers use it: kept here (`Protection`), or on the first server (`RemoteProtection`). */
export interface ProtectionService {
  createUser (by: Caller, name: string, password: string | null): Promise<PtsView>
  createGroup (by: Caller, name: string): Promise<PtsView>
  addUser (by: Caller, user: string, group: string): Promise<PtsView>
  removeUser (by: Caller, user: string, group: string): Promise<PtsView>
  delete (by: Caller, name: string): Promise<void>
  setPassword (by: Caller, name: string, password: string): Promise<void>
  examine (name: string): Promise<PtsView>
  /** A user's groups, or a group's members. */
  membership (name: string): Promise<PtsView[]>
  list (): Promise<PtsView[]>
  /** The names of ids that name an entry (an ACL's entries shown by name). */
  names (ids: number[]): Promise<Record<string, string>>
  login (name: string, password: string): Promise<{ token: string, expiresMs: number, user: string }>
  /** The identity behind a token; a bad one is refused (UNAUTHENTICATED) with why. */
  identify (token: string): Promise<Identity>
}

export class Protection implements ProtectionService {
  private readonly failures = new Map<string, number>()
  private readonly identities = new Identities()

  constructor (private readonly store: PtsStore, private readonly key: Uint8Array, private readonly cell: string) {}

  /**
   * A new cell's protection database gets system:administrators and an `admin` user in
   * it, whose password is written to DATA/admin.password (mode 0600) once. Resolves with whether it made it.
   */
  async bootstrap (dataDir: string): Promise<boolean> {
    if (!await this.store.get('system:administrators')) {
      await this.store.create('system:administrators', 'group', () => ({ id: ADMINISTRATORS, name: 'system:administrators', kind: 'group', createdMs: Date.now(), owner: ADMINISTRATORS, members: [] }), ADMINISTRATORS).catch(ignoreExists)
    }
    if (await this.store.get('admin')) return false
    const file = join(dataDir, ADMIN_PASSWORD_FILE)
    // (Kept before the user is made: a crash in between leaves the password that is made next.)
    const password = existsSync(file) ? (await readFile(file, 'utf8')).trim() : newPassword()
    if (!existsSync(file)) {
      await writeFile(`${file}.tmp`, password + '\n', { mode: 0o600 })
      await rename(`${file}.tmp`, file)
    }
    const hashed = await hashPassword(password)
    try {
      const admin = await this.store.create('admin', 'user', id => ({ id, name: 'admin', kind: 'user', createdMs: Date.now(), owner: ADMINISTRATORS, hash: hashed, tokenEpoch: 1 }))
      await this.store.change('system:administrators', g => ({ ...g, members: [...new Set([...g.members ?? [], admin.id])] }))
      log.info(`made the cell's admin user; its password is in ${file}`)
      return true
    } catch (err) {
      ignoreExists(err) // another server of the cell made it meanwhile
      return false
    }
  }

  async createUser (by: Caller, name: string, password: string | null): Promise<PtsView> {
    this.needAdmin(by, `create user ${name}`)
    checkName(name, 'user')
    const hashed = password === null ? undefined : await hashPassword(checkedPassword(password))
    return view(await this.store.create(name, 'user', id => ({ id, name, kind: 'user', createdMs: Date.now(), owner: by.identity.uid, ...hashed ? { hash: hashed } : {}, tokenEpoch: 1 })))
  }

  async createGroup (by: Caller, name: string): Promise<PtsView> {
    this.needAdmin(by, `create group ${name}`)
    checkName(name, 'group')
    return view(await this.store.create(name, 'group', id => ({ id, name, kind: 'group', createdMs: Date.now(), owner: by.identity.uid, members: [] })))
  }

  async addUser (by: Caller, user: string, group: string): Promise<PtsView> {
    const u = await this.entry(user, 'user')
    await this.needOwner(by, group)
    return view(await this.store.change(group, g => ({ ...g, members: [...new Set([...g.members ?? [], u.id])] })))
  }

  async removeUser (by: Caller, user: string, group: string): Promise<PtsView> {
    const u = await this.entry(user, 'user')
    const g = await this.needOwner(by, group)
    if (!g.members?.includes(u.id)) throw notAnEntry(`${user} in ${group}`)
    if (g.id === ADMINISTRATORS && g.members.length === 1) throw invalid(`${user} is the last member of system:administrators`)
    return view(await this.store.change(group, x => ({ ...x, members: (x.members ?? []).filter(m => m !== u.id) })))
  }

  async delete (by: Caller, name: string): Promise<void> {
    this.needAdmin(by, `delete ${name}`)
    const e = await this.entry(name)
    if (e.id === ADMINISTRATORS) throw invalid('system:administrators is the cell\'s own')
    if (e.kind === 'user') {
      const admins = await this.entry('system:administrators', 'group')
      if (admins.members?.length === 1 && admins.members[0] === e.id) throw invalid(`${name} is the last member of system:administrators`)
      for (const g of (await this.store.list()).filter(x => x.members?.includes(e.id))) await this.store.change(g.name, x => ({ ...x, members: (x.members ?? []).filter(m => m !== e.id) }))
    }
    await this.store.remove(name)
    this.identities.forget()
    log.info(`${by.identity.name} deleted ${e.kind} ${name}${e.kind === 'user' ? ': its tokens are void' : ''}`)
  }

  async setPassword (by: Caller, name: string, password: string): Promise<void> {
    const e = await this.entry(name, 'user')
    if (!by.identity.admin && by.identity.uid !== e.id) throw permission(`only ${name} or a member of system:administrators sets ${name}'s password`)
    const hashed = await hashPassword(checkedPassword(password))
    await this.store.change(name, x => ({ ...x, hash: hashed, tokenEpoch: (x.tokenEpoch ?? 1) + 1 }))
    this.identities.forget()
    log.info(`${name}'s password was changed by ${by.identity.name}: its older tokens are void`)
  }

  async examine (name: string): Promise<PtsView> {
    const builtIn = BUILT_IN_GROUPS.find(g => g.name === name)
    if (builtIn && builtIn.id !== ADMINISTRATORS) return { id: builtIn.id, name, kind: 'group', createdMs: 0, owner: ADMINISTRATORS }
    return view(await this.entry(name))
  }

  async membership (name: string): Promise<PtsView[]> {
    const e = await this.entry(name)
    const all = await this.store.list()
    if (e.kind === 'group') return all.filter(x => e.members?.includes(x.id)).map(view)
    return all.filter(x => x.kind === 'group' && x.members?.includes(e.id)).map(view)
  }

  async list (): Promise<PtsView[]> {
    return (await this.store.list()).map(view).sort((a, b) => a.name.localeCompare(b.name))
  }

  async names (ids: number[]): Promise<Record<string, string>> {
    const out: Record<string, string> = {}
    for (const id of new Set(ids)) {
      const name = BUILT_IN_GROUPS.find(g => g.id === id)?.name ?? (await this.store.get(id))?.name
      if (name !== undefined) out[String(id)] = name
    }
    return out
  }

  /**
   * A token for `name` when `password` is theirs. Failed logins of one user make each
   * next one wait longer (doubling, up to 30 s); an unknown user costs the same hashing.
   */
  async login (name: string, password: string): Promise<{ token: string, expiresMs: number, user: string }> {
    const failed = this.failures.get(name) ?? 0
    if (failed >= FREE_FAILURES) await new Promise(resolve => setTimeout(resolve, Math.min(MAX_LOGIN_DELAY_MS, 1000 * 2 ** (failed - FREE_FAILURES))))
    const e = await this.store.get(name)
    const ok = e?.kind === 'user' && e.hash !== undefined ? await checkPassword(e.hash, password) : (await hashPassword(password), false)
    if (!ok || !e) {
      this.failures.set(name, failed + 1)
      log.warn(`failed login as ${name} (${failed + 1} in a row)`)
      throw unauthenticated(`login as ${name} failed: no such user, or the wrong password`)
    }
    this.failures.delete(name)
    const { token, expiresMs } = await signToken(this.key, { user: name, uid: e.id, epoch: e.tokenEpoch ?? 1, cell: this.cell })
    return { token, expiresMs, user: name }
  }

  async identify (token: string): Promise<Identity> {
    const known = this.identities.fresh(token)
    if (known) return known
    const c = await verifyToken(this.key, token, this.cell)
    if (c.user === LOCALAUTH_USER) return this.identities.keep(token, { uid: c.uid, name: LOCALAUTH_USER, cps: [c.uid, ADMINISTRATORS, AUTHUSER, ANYUSER], admin: true })
    let e: PtsEntry | undefined
    let groups: number[]
    try {
      e = await this.store.get(c.user)
      groups = (await this.store.list()).filter(g => g.kind === 'group' && g.members?.includes(c.uid)).map(g => g.id)
    } catch (err) {
      if (!isUnreachable(err)) throw err
      return this.identities.lastKnown(token, c)
    }
    if (!e || e.kind !== 'user' || e.id !== c.uid) throw unauthenticated(`the token is for ${c.user}, who is no user of the cell any more`)
    if ((e.tokenEpoch ?? 1) !== c.epoch) throw unauthenticated(`the token for ${c.user} was revoked (a new password): log in again`)
    return this.identities.keep(token, { uid: e.id, name: e.name, cps: [e.id, ...groups, AUTHUSER, ANYUSER], admin: groups.includes(ADMINISTRATORS) })
  }

  private needAdmin (by: Caller, what: string): void {
    if (!by.identity.admin) throw permission(`${what}: only members of system:administrators may (you are ${by.identity.name})`)
  }

  /** The group, when `by` may change its members: its owner, or an administrator. */
  private async needOwner (by: Caller, group: string): Promise<PtsEntry> {
    const g = await this.entry(group, 'group')
    if (!by.identity.admin && g.owner !== by.identity.uid) throw permission(`only ${group}'s owner or a member of system:administrators changes its members`)
    return g
  }

  private async entry (name: string, kind?: PtsEntry['kind']): Promise<PtsEntry> {
    const e = await this.store.get(name)
    if (!e || (kind && e.kind !== kind)) throw notAnEntry(name)
    return e
  }
}

/**
 * Identities found for tokens: each used for a second (group changes and revocations
 * take effect after it), and each user's last one kept for when the protection database
 * does not answer: a token this cell signed then stands for the user as last known (or,
 * never known here, for just an authenticated user), so that volumes go on being served.
 */
export class Identities {
  private readonly byToken = new Map<string, { at: number, identity: Identity }>()
  private readonly byUser = new Map<string, Identity>()

  fresh (token: string): Identity | undefined {
    const known = this.byToken.get(token)
    return known && Date.now() - known.at < IDENTITY_MS ? known.identity : undefined
  }

  keep (token: string, identity: Identity): Identity {
    if (this.byToken.size > 10_000) this.byToken.clear()
    this.byToken.set(token, { at: Date.now(), identity })
    this.byUser.set(identity.name, identity)
    return identity
  }

  /** With the database unreachable: the user of a token checked as good, as last known. */
  lastKnown (token: string, c: { user: string, uid: number }): Identity {
    const last = this.byUser.get(c.user)
    const identity = last?.uid === c.uid ? last : { uid: c.uid, name: c.user, cps: [c.uid, AUTHUSER, ANYUSER], admin: false }
    log.warn(`the protection database does not answer: ${c.user} is taken as last known (${identity.cps.length - 2} groups)`)
    this.byToken.set(token, { at: Date.now(), identity })
    return identity
  }

  /** A change in the database: what was found before is found again. */
  forget (): void {
    this.byToken.clear()
  }
}

function checkedPassword (password: string): string {
  if (password.length < 8) throw invalid('a password has at least 8 characters')
  if (password.length > 1024) throw invalid('a password has at most 1024 characters')
  return password
}

function ignoreExists (err: unknown): void {
  if (!(err instanceof Error) || (err as { code?: string }).code !== 'EXISTS') throw err
}

