// AFS directory access control lists: entries of a user or group with rights `rlidwka` —
// read, lookup, insert, delete, write, lock, administer — and negative entries whose
// rights are taken away even when a positive entry grants them. A file is governed by its
// directory's ACL together with its owner mode bits (read needs 0400, write 0200).
import { invalid } from './errors.ts'

export const RIGHT_READ = 1
export const RIGHT_WRITE = 2
export const RIGHT_INSERT = 4
export const RIGHT_LOOKUP = 8
export const RIGHT_DELETE = 16
export const RIGHT_LOCK = 32
export const RIGHT_ADMINISTER = 64
export const ALL_RIGHTS = 127

/** The letters of the rights, in AFS's order. */
const LETTERS: Array<[string, number]> = [['r', RIGHT_READ], ['l', RIGHT_LOOKUP], ['i', RIGHT_INSERT], ['d', RIGHT_DELETE], ['w', RIGHT_WRITE], ['k', RIGHT_LOCK], ['a', RIGHT_ADMINISTER]]
const WORDS: Record<string, number> = { read: RIGHT_READ | RIGHT_LOOKUP, write: RIGHT_READ | RIGHT_LOOKUP | RIGHT_INSERT | RIGHT_DELETE | RIGHT_WRITE | RIGHT_LOCK, all: ALL_RIGHTS, none: 0 }

/** One entry: a user or group id and the rights it grants (or, in `neg`, takes away). */
export type AclEntry = [id: number, rights: number]

export interface Acl { pos: AclEntry[], neg: AclEntry[] }

export const MAX_ACL_ENTRIES = 20

/** `rlidwka` letters, or AFS's words read, write, all, none → the rights. */
export function parseRights (text: string): number {
  const word = WORDS[text.toLowerCase()]
  if (word !== undefined) return word
  let rights = 0
  for (const c of text) {
    const r = LETTERS.find(([l]) => l === c)
    if (!r) throw invalid(`'${text}' is not rights: letters of rlidwka, or read, write, all, none`)
    rights |= r[1]
  }
  return rights
}

export function formatRights (rights: number): string {
  return LETTERS.filter(([, r]) => rights & r).map(([l]) => l).join('')
}

/** What an ACL grants someone in all of `cps` (their user and groups): every positive entry's rights, less every negative one's. */
export function rightsOf (acl: Acl, cps: readonly number[]): number {
  let pos = 0
  let neg = 0
  for (const [id, r] of acl.pos) if (cps.includes(id)) pos |= r
  for (const [id, r] of acl.neg) if (cps.includes(id)) neg |= r
  return pos & ~neg
}

/** The ACL with `id`'s entry (positive or negative) set to `rights`; 0 removes it. */
export function withEntry (acl: Acl, id: number, rights: number, negative: boolean): Acl {
  const list = (negative ? acl.neg : acl.pos).filter(([x]) => x !== id)
  if (rights !== 0) list.push([id, rights])
  const out = negative ? { pos: acl.pos, neg: list } : { pos: list, neg: acl.neg }
  if (out.pos.length + out.neg.length > MAX_ACL_ENTRIES) throw invalid(`an ACL has at most ${MAX_ACL_ENTRIES} entries`)
  return out
}
