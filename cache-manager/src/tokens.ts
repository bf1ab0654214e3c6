// The tokens local users got with `afs login`, by local uid and cell, as AFS's cache
// manager keeps them in the kernel: each request made for a process goes with the token
// of the process's user (found through the FUSE caller's uid, carried across awaits by
// AsyncLocalStorage). A process whose user has none acts as system:anyuser. Tokens live
// in memory only: a restarted cache manager has none, as a rebooted AFS client.
import { AsyncLocalStorage } from 'node:async_hooks'
import { makeLog } from '@afs-ts/common'

const log = makeLog('tokens')

export interface Token { cell: string, user: string, token: string, expiresMs: number }

/** The local user the work under way is done for (set around each FUSE request). */
const acting = new AsyncLocalStorage<number>()

/** Runs `fn` for local user `uid`: the requests it makes carry that user's tokens. */
export function actingAs<T> (uid: number, fn: () => T): T {
  return acting.run(uid, fn)
}

/** The local user the work under way is done for, if any. */
export function actingUid (): number | undefined {
  return acting.getStore()
}

export class TokenTable {
  private readonly byUid = new Map<number, Map<string, Token>>()
  /** When each user's tokens last changed (the token file's time). */
  private readonly changed = new Map<number, number>()

  set (uid: number, t: Token): void {
    let mine = this.byUid.get(uid)
    if (!mine) this.byUid.set(uid, mine = new Map())
    mine.set(t.cell, t)
    this.changed.set(uid, Date.now())
    log.info(`uid ${uid} has a token for ${t.user}@${t.cell} until ${new Date(t.expiresMs).toISOString()}`)
  }

  /** User `uid`'s tokens (`cell`: that cell's only); gone when none is left. */
  drop (uid: number, cell?: string): void {
    const mine = this.byUid.get(uid)
    if (!mine) return
    if (cell) mine.delete(cell)
    else mine.clear()
    if (mine.size === 0) this.byUid.delete(uid)
    this.changed.set(uid, Date.now())
  }

  /** User `uid`'s token for `cell` while it is good (an expired one is not used). */
  get (uid: number, cell: string): Token | undefined {
    const t = this.byUid.get(uid)?.get(cell)
    return t && t.expiresMs > Date.now() ? t : undefined
  }

  /** Every token of user `uid`, expired ones too (shown as such). */
  list (uid: number): Token[] {
    return [...this.byUid.get(uid)?.values() ?? []]
  }

  /** Local users that hold tokens, and each one's. */
  all (): Array<{ uid: number, tokens: Token[] }> {
    return [...this.byUid].map(([uid, m]) => ({ uid, tokens: [...m.values()] }))
  }

  changedAt (uid: number): number {
    return this.changed.get(uid) ?? 0
  }

  /** The token a request to `cell` carries now: the acting user's. */
  forCell (cell: string): string | undefined {
    const uid = actingUid()
    return uid === undefined ? undefined : this.get(uid, cell)?.token
  }
}

/** A token file's text: how the cache manager shows a user's tokens, and how `afs login` writes them. */
export function tokenFileText (list: Token[]): string {
  return JSON.stringify(list.map(tokenOf)) + '\n'
}

export function tokenOf (t: Token): Token {
  return { cell: t.cell, user: t.user, token: t.token, expiresMs: t.expiresMs }
}

