// How `afs login`, `afs tokens` and `afs logout` reach the cache manager as the local user
// who runs them: through files in the mount that the kernel lets only that user open.
//   <mount>/.afs-tokens/<uid>   that user's tokens as JSON (mode 0600, owned by them):
//                               read them; write them all (`tokenFileText`); unlink to drop all
// The FUSE request names the calling process's uid, so no user can claim another's; the
// file of each uid is an inode of its own, so the kernel never serves one user's tokens
// from its cache to another. The directory is hidden from listings of the mount.
import { constants } from 'node:fs'
import { AfsError, makeLog, notFound, permission } from '@afs-ts/common'
import type { Attr } from '../vfs.ts'
import type { Caller } from '../namespace.ts'
import { tokenFileText, tokenOf, type Token, type TokenTable } from '../tokens.ts'

const log = makeLog('tokens')
export const TOKENS_DIR = '/.afs-tokens'
/** File handles of token files start here, far above the file system's own. */
const FIRST_HANDLE = 0x40000000
const DIR_INO = 0xfffffff0
const MAX_BYTES = 64 * 1024

interface Open { uid: number, data: Buffer, dirty: boolean }

export class TokenFiles {
  private next = FIRST_HANDLE
  private readonly handles = new Map<number, Open>()

  constructor (private readonly tokens: TokenTable) {}

  owns (path: string): boolean {
    return path === TOKENS_DIR || path.startsWith(TOKENS_DIR + '/')
  }

  ownsHandle (fh: number): boolean {
    return fh >= FIRST_HANDLE
  }

  getattr (path: string): Attr {
    const now = Date.now()
    if (path === TOKENS_DIR) return { ino: DIR_INO, mode: constants.S_IFDIR | 0o711, uid: 0, gid: 0, size: 0, nlink: 2, rdev: 0, atimeMs: now, mtimeMs: now, ctimeMs: now }
    const uid = this.uidOf(path)
    const at = this.tokens.changedAt(uid) || now
    return { ino: (0xfff00000 + (uid & 0xfffef)) >>> 0, mode: constants.S_IFREG | 0o600, uid, gid: 0, size: this.content(uid).length, nlink: 1, rdev: 0, atimeMs: at, mtimeMs: at, ctimeMs: at }
  }

  open (path: string, flags: number, caller: Caller): number {
    const uid = this.mine(path, caller)
    const fh = this.next++
    this.handles.set(fh, { uid, data: flags & constants.O_TRUNC ? Buffer.alloc(0) : this.content(uid), dirty: (flags & constants.O_TRUNC) !== 0 })
    return fh
  }

  read (fh: number, buf: Buffer, len: number, pos: number): number {
    const o = this.handle(fh)
    return o.data.copy(buf, 0, pos, Math.min(o.data.length, pos + len))
  }

  write (fh: number, buf: Buffer, len: number, pos: number): number {
    const o = this.handle(fh)
    if (pos + len > MAX_BYTES) throw new AfsError('TOO_LARGE', 'a token file holds at most 64 KiB')
    const grown = Buffer.alloc(Math.max(o.data.length, pos + len))
    o.data.copy(grown)
    buf.copy(grown, pos, 0, len)
    o.data = grown
    o.dirty = true
    return len
  }

  truncate (fh: number, size: number): void {
    const o = this.handle(fh)
    o.data = o.data.subarray(0, size)
    o.dirty = true
  }

  /**
   * At close: what was written is the user's tokens now, all of them (refused, with the
   * close failing, when it is no list of tokens). Written as `content` shows them, what
   * the kernel kept of the write is what a read gets.
   */
  flush (fh: number): void {
    const o = this.handle(fh)
    if (!o.dirty) return
    o.dirty = false
    const text = o.data.toString('utf8').trim()
    if (text === '') { this.tokens.drop(o.uid); return }
    let parsed: unknown
    try { parsed = JSON.parse(text) } catch { throw new AfsError('INVALID', 'a token file takes JSON') }
    const list = Array.isArray(parsed) ? parsed : [parsed]
    if (!list.every(isToken)) throw new AfsError('INVALID', 'a token is {cell, user, token, expiresMs}')
    this.tokens.drop(o.uid)
    for (const t of list) this.tokens.set(o.uid, tokenOf(t))
  }

  release (fh: number): void {
    this.handles.delete(fh)
  }

  /**
   * A truncate by path (the kernel sends one for an O_TRUNC open): what the user's open
   * handles hold is cut to `size`; with none open, a truncate to nothing drops the tokens.
   */
  truncatePath (path: string, size: number, caller: Caller): void {
    const uid = this.mine(path, caller)
    let open = false
    for (const o of this.handles.values()) {
      if (o.uid !== uid) continue
      o.data = o.data.subarray(0, size)
      o.dirty = true
      open = true
    }
    if (!open && size === 0) this.tokens.drop(uid)
  }

  /** Drops every token of the user (afs logout). */
  unlink (path: string, caller: Caller): void {
    const uid = this.mine(path, caller)
    this.tokens.drop(uid)
    log.info(`uid ${uid} dropped its tokens`)
  }

  private content (uid: number): Buffer {
    return Buffer.from(tokenFileText(this.tokens.list(uid)))
  }

  /** The uid a token file is for, when the caller is that user (or root). */
  private mine (path: string, caller: Caller): number {
    const uid = this.uidOf(path)
    if (caller.uid !== uid && caller.uid !== 0) throw permission(`the tokens of uid ${uid} are that user's own`)
    return uid
  }

  private uidOf (path: string): number {
    const m = /^\/\.afs-tokens\/(\d{1,10})$/.exec(path)
    const uid = m ? Number(m[1]) : NaN
    if (!Number.isInteger(uid) || uid > 0xfffffffe) throw notFound(`${path}: no such token file`)
    return uid
  }

  private handle (fh: number): Open {
    const o = this.handles.get(fh)
    if (!o) throw new AfsError('BAD_REQUEST', `no open token file ${fh}`)
    return o
  }
}

function isToken (t: unknown): t is Token {
  const x = t as Partial<Token> | null
  return typeof x === 'object' && x !== null && typeof x.cell === 'string' && typeof x.user === 'string' && typeof x.token === 'string' && x.token.length <= 4096 && typeof x.expiresMs === 'number'
}
