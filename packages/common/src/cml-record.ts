// What a client modification log record names, shared by the client that logs and
// replays records and the server that applies them (one record at a time, or in a batch
// where later records name objects that earlier ones create).
import { sameFid, type Fid } from './fid.ts'
import type { CmlRecordBody, ObjectType } from './protocol.ts'

/** The fid a record is about (the object it creates, changes or removes). */
export function subject (b: CmlRecordBody): Fid {
  return b.fid
}

/** The directories a record names (where it creates, removes, links or renames). */
export function directories (b: CmlRecordBody): Fid[] {
  switch (b.op) {
    case 'create': case 'mkdir': case 'symlink': case 'mknod': case 'remove': case 'rmdir': case 'link': return [b.dir]
    case 'rename': return [b.fromDir, b.toDir]
    case 'store': case 'setattr': case 'xattr': return []
    default: { const never: never = b; return never }
  }
}

/** The names a record gives its object: where it creates or links it, or renames it to. */
export function namesGiven (b: CmlRecordBody): Array<{ dir: Fid, name: string }> {
  switch (b.op) {
    case 'create': case 'mkdir': case 'symlink': case 'mknod': case 'link': return [{ dir: b.dir, name: b.name }]
    case 'rename': return [{ dir: b.toDir, name: b.toName }]
    default: return []
  }
}

/** `b` with `from` replaced by `to` in every fid it names; null when it names no `from`. */
export function withFidReplaced (b: CmlRecordBody, from: Fid, to: Fid): CmlRecordBody | null {
  const out: Record<string, unknown> = { ...b }
  let changed = false
  for (const k of ['fid', 'dir', 'fromDir', 'toDir']) {
    const f = out[k] as Fid | undefined
    if (f && sameFid(f, from)) { out[k] = to; changed = true }
  }
  return changed ? out as CmlRecordBody : null
}

/** `b` with each fid it names (its object, its directories) replaced by `map`'s answer for it, where that differs. */
export function withFidsMapped (b: CmlRecordBody, map: (f: Fid) => Fid): CmlRecordBody {
  for (const f of [subject(b), ...directories(b)]) {
    const to = map(f)
    if (to !== f) b = withFidReplaced(b, f, to) ?? b
  }
  return b
}

/** The type of object a create record makes (null for other records). */
export function madeType (b: CmlRecordBody): ObjectType | null {
  switch (b.op) {
    case 'create': return 'file'
    case 'mkdir': return 'dir'
    case 'symlink': return 'symlink'
    case 'mknod': return b.type
    default: return null
  }
}

export function isCreate (b: CmlRecordBody): boolean {
  return b.op === 'create' || b.op === 'mkdir' || b.op === 'symlink' || b.op === 'mknod'
}

/** A fid made while disconnected, not yet known to a server (uniquifier 0 marks it). */
export function isLocalFid (f: Fid): boolean {
  return f.unique === 0
}

/**
 * When a replayed record moved its object from version `from` to `to`, a later record of
 * the same object based on `from` is based on `to` now (it was logged on top of the
 * earlier change): that record, rebased; null when the rule does not touch it.
 */
export function rebased (later: CmlRecordBody, fid: Fid, from: number | null, to: number): CmlRecordBody | null {
  if (!sameFid(subject(later), fid) || !('base' in later) || later.base !== from) return null
  return { ...later, base: to } as CmlRecordBody
}
