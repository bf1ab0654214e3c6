// The protection database as a server that does not keep it sees it: every request goes
// to the server that does (the cell's first), with the caller's token, so that the one
// that keeps it decides who may do what.
import { AfsError, connectionLost, isUnreachable, type Peer, type Op, type Args, type Reply } from '@afs-ts/common'
import { Identities, type Caller, type Identity, type ProtectionService } from './protection.ts'
import { verifyToken } from './token.ts'
import type { PtsView } from './pts.ts'

export class RemoteProtection implements ProtectionService {
  private readonly identities = new Identities()

  /** `key`, `cell`: to check tokens here when the server that keeps the database does not answer. */
  constructor (private readonly peer: Peer, private readonly key: Uint8Array, private readonly cell: string) {}

  async createUser (by: Caller, name: string, password: string | null): Promise<PtsView> { return await this.ask(by, 'ptCreateUser', { name, password }) }
  async createGroup (by: Caller, name: string): Promise<PtsView> { return await this.ask(by, 'ptCreateGroup', { name }) }
  async addUser (by: Caller, user: string, group: string): Promise<PtsView> { return await this.ask(by, 'ptAddUser', { user, group }) }
  async removeUser (by: Caller, user: string, group: string): Promise<PtsView> { return await this.ask(by, 'ptRemoveUser', { user, group }) }
  async delete (by: Caller, name: string): Promise<void> { await this.ask(by, 'ptDelete', { name }) }
  async setPassword (by: Caller, name: string, password: string): Promise<void> { await this.ask(by, 'ptSetPassword', { name, password }) }
  async examine (name: string): Promise<PtsView> { return await this.ask(null, 'ptExamine', { name }) }
  async membership (name: string): Promise<PtsView[]> { return await this.ask(null, 'ptMembership', { name }) }
  async list (): Promise<PtsView[]> { return await this.ask(null, 'ptList', {}) }
  async names (ids: number[]): Promise<Record<string, string>> { return (await this.ask(null, 'ptNames', { ids })).names }
  async login (name: string, password: string): Promise<{ token: string, expiresMs: number, user: string }> { return await this.ask(null, 'ptLogin', { name, password }) }

  async identify (token: string): Promise<Identity> {
    const known = this.identities.fresh(token)
    if (known) return known
    try {
      return this.identities.keep(token, await this.ask(null, 'ptIdentify', { token }))
    } catch (err) {
      if (!isUnreachable(err)) throw err
      return this.identities.lastKnown(token, await verifyToken(this.key, token, this.cell))
    }
  }

  private async ask<O extends Op> (by: Caller | null, op: O, args: Args<O>): Promise<Reply<O>> {
    try {
      return await this.peer.call(op, args, undefined, by?.token ?? undefined)
    } catch (err) {
      const e = AfsError.from(err)
      if (isUnreachable(e)) throw connectionLost(`the cell's protection database at ${this.peer.address} is unreachable (${e.message})`)
      throw e
    }
  }
}
