// The tokens local users got with `afs login`, by local uid and cell, as AFS's cache
// manager keeps them in the kernel: each request made for a process goes with the token
// of the process's user (found through the FUSE caller's uid, carried across awaits by
// AsyncLocalStorage). A process whose user has none acts as system:anyuser. They are kept
// in the cache directory (mode 0600), so that changes logged offline are replayed as
// their users after a restart too.
import { AsyncLocalStorage } from 'node:async_hooks'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { makeLog } from '@afs-ts/common'

const log = makeLog('tokens')

export interface Token { cell: string, user: string, token: string, expiresMs: number }

/** No local user: work done as system:anyuser whatever started it. */
export const NO_USER = -1

/** Whom the work under way is done for: a local user (around each FUSE request), or the tokens a control request came with. */
const acting = new AsyncLocalStorage<{ uid?: number, tokens?: ReadonlyMap<string, string> }>()

/** Runs `fn` for local user `uid`: the requests it makes carry that user's tokens. */
export function actingAs<T> (uid: number, fn: () => T): T {
  return acting.run({ uid }, fn)
}

/** Runs `fn` with these tokens (cell → token): the requests it makes carry them. */
export function actingWith<T> (tokens: ReadonlyMap<string, string>, fn: () => T): T {
  return acting.run({ tokens }, fn)
}

/** The local user the work under way is done for, if any. */
export function actingUid (): number | undefined {
  return acting.getStore()?.uid
}

export class TokenTable {
  private readonly byUid = new Map<number, Map<string, Token>>()
  /** When each user's tokens last changed (the token file's time). */
  private readonly changed = new Map<number, number>()

  private readonly listeners: Array<(uid: number) => void> = []

  /** Calls `listener` with each user whose tokens changed (a login: changes waiting for it go on). */
  onChange (listener: (uid: number) => void): void {
    this.listeners.push(listener)
  }

  /** Saves, one after another (the last one written is the latest state). */
  private saving: Promise<void> = Promise.resolve()

  /** `file`: where they are kept (none: in memory only). */
  constructor (private readonly file?: string) {}

  /** Takes the tokens kept in the file (before the mount serves anyone). */
  async load (): Promise<void> {
    if (!this.file) return
    let saved: Array<{ uid: number, tokens: Token[] }> = []
    try { saved = JSON.parse(await readFile(this.file, 'utf8')) as typeof saved } catch { /* none kept yet, or unreadable: none */ }
    for (const { uid, tokens } of saved) {
      const mine = this.byUid.get(uid) ?? new Map<string, Token>()
      // (One set before the file was read is newer.)
      for (const t of tokens) if (!mine.has(t.cell)) mine.set(t.cell, tokenOf(t))
      this.byUid.set(uid, mine)
    }
  }

  /** Resolves once what was set so far is on disk. */
  async flushed (): Promise<void> {
    await this.saving
  }

  set (uid: number, t: Token): void {
    let mine = this.byUid.get(uid)
    if (!mine) this.byUid.set(uid, mine = new Map())
    mine.set(t.cell, t)
    this.changed.set(uid, Date.now())
    this.save()
    for (const l of this.listeners) l(uid)
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
    this.save()
  }

  private save (): void {
    const file = this.file
    if (!file) return
    const text = JSON.stringify(this.all())
    this.saving = this.saving.then(async () => {
      const tmp = `${file}.tmp`
      await mkdir(dirname(file), { recursive: true })
      await writeFile(tmp, text, { mode: 0o600 })
      await rename(tmp, file)
    }).catch(err => log.error(`keeping tokens in ${file}: ${(err as Error).message}`))
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
    const a = acting.getStore()
    if (a?.tokens) return a.tokens.get(cell)
    return a?.uid === undefined ? undefined : this.get(a.uid, cell)?.token
  }
}

/** A token file's text: how the cache manager shows a user's tokens, and how `afs login` writes them. */
export function tokenFileText (list: Token[]): string {
  return JSON.stringify(list.map(tokenOf)) + '\n'
}

export function tokenOf (t: Token): Token {
  return { cell: t.cell, user: t.user, token: t.token, expiresMs: t.expiresMs }
}

