// A conflict as kept until it is repaired: what each side has at the conflicted path,
// with the files holding their contents, and the common ancestor when one was kept.
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import type { ConflictKind, Fid, ObjectType } from '@afs-ts/common'

/** One side of a conflict: what it has at the path ('none' when it removed the object). */
export interface Side {
  type: ObjectType | 'none'
  size: number | null
  sha256: string | null
  mtimeMs: number | null
  /** The file holding this side's contents (files only). */
  copy: string | null
  /** A symlink's target. */
  target?: string
  /** A device node's device. */
  rdev?: number
  /** Extended attributes, name → value in base64. */
  xattrs?: Record<string, string>
}

export interface LocalSide extends Side {
  /** The local operation that did not apply (store, remove, create, rename, …). */
  op: string
  /** When the local change was made, and by which client. */
  changedAt: number
  client: string
  /** Permissions and owner of the local object, for re-creating it. */
  mode?: number
  uid?: number
  gid?: number
}

export interface ServerSide extends Side {
  /** The object at the path on the server, at `dataVersion`; null when nothing is there. */
  fid: Fid | null
  dataVersion: number | null
  /** For a rename conflict: where the server has the object now. */
  movedTo?: string[]
}

/** The version the local change was based on (the common ancestor), for three-way views and merges. */
export interface Ancestor { dataVersion: number, copy: string, size: number, sha256: string }

/** A conflict found by reintegration: both versions are kept until `afs repair` resolves it. */
export interface ConflictRecord {
  id: string
  cell: string
  kind: ConflictKind
  /** Where the object is (or was) in the namespace, as `/<cell>/...`. */
  path: string
  dir: Fid | null
  name: string | null
  /** The object as this client knows it (a local fid when it was born in the log). */
  fid: Fid
  time: number
  message: string
  local: LocalSide
  server: ServerSide
  base: Ancestor | null
  /** The files holding the local and server contents (same as local.copy and server.copy). */
  localCopy: string | null
  serverCopy: string | null
}

/**
 * A conflict as stored, brought to this shape: conflicts kept by an earlier version
 * (only the two files) get sides describing those files.
 */
export function normalizeConflict (c: ConflictRecord): ConflictRecord {
  if (c.local && c.server) return c
  const side = (copy: string | null) => ({ type: copy ? 'file' as const : 'none' as const, size: null, sha256: null, mtimeMs: null, copy })
  return {
    ...c,
    local: { ...side(c.localCopy), op: 'unknown', changedAt: c.time, client: 'this client' },
    server: { ...side(c.serverCopy), fid: null, dataVersion: null },
    base: null,
  }
}

/** The side of a path that holds nothing. */
export function nothingThere (): ServerSide {
  return { type: 'none', fid: null, dataVersion: null, size: null, sha256: null, mtimeMs: null, copy: null }
}

/** Size and SHA-256 of a file. */
export async function fingerprint (path: string): Promise<{ size: number, sha256: string }> {
  const h = createHash('sha256')
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer)
  return { size: (await stat(path)).size, sha256: h.digest('hex') }
}

/** A side's SHA-256: the one recorded, else that of its file (null without one). */
export async function contentHash (s: Side): Promise<string | null> {
  return s.sha256 ?? (s.copy ? (await fingerprint(s.copy)).sha256 : null)
}

export const KIND_MEANING: Record<ConflictKind, string> = {
  'update/update': 'changed here and on the server',
  'remove/update': 'removed on the server, changed here',
  'update/remove': 'changed on the server, removed here',
  'name/name': 'created here and on the server under the same name',
  rename: 'renamed here, renamed or removed on the server',
}

/** An object a repair put on the server. */
export interface Placed { fid: Fid, type: ObjectType, dataVersion: number }

export interface Resolution {
  id: string
  path: string
  kind: ConflictRecord['kind']
  choice: string
  /** 'user', or the resolver that resolved it by itself. */
  by: string
  at: number
  /** What was done, in words. */
  action: string
  /** What the repair left on the server (null when it removed the object or changed nothing). */
  result: ({ path: string, name: string } & Placed) | null
  /** The conflict as it was; its files stay under the conflicts folder while the resolution is in the history. */
  conflict: ConflictRecord
  undoneAt?: number
}
