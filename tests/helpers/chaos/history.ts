// The chaos harness's memory and judgement: every step of a run in order (operations
// with what the client was told, and faults), when each client was certainly unable to
// reach the servers, and the checker that decides from the final state whether any
// operation a client saw succeed was lost without a flagged conflict.
//
// Steps run one at a time, so their order is real time. An operation W is superseded
// by a later step X that replaces what W did — unless W's client was certainly offline
// from W until X and X is another client's: then W had not reached the server when X
// happened, and Coda's promise is that W ends up on the server or in a conflict. An
// earlier step X of another client supersedes W too when X may have reached the server
// after W did: its client was not seen with an empty log and all volumes connected from
// X until after W.

import type { ObjectKind } from './workload.ts'

/** What an operation says about the final state if nothing later replaced it. */
export type Effect =
  | { kind: 'exists', path: string, type?: ObjectKind }
  | { kind: 'absent', path: string }
  | { kind: 'mode', path: string, mode: number }

/** What a client was told of one operation, and what it means for the final state. */
export interface Outcome {
  op: string
  paths: string[]
  detail: string
  ok: boolean
  errno?: string
  /** Content tokens this operation wrote, and the slot each went to (-1: whole rewrite). */
  tokens: string[]
  slot?: number
  /** Truncated to this many slots. */
  keepSlots?: number
  /** The inode number of the file written or truncated (hard links share it). */
  ino?: number
  effects: Effect[]
}

export interface Step extends Outcome {
  i: number
  client: string
  /** Whether the client was certainly offline when the step ran. */
  offline: boolean
  /** Index of the step that began that offline period (the step's own when online). */
  offlineFrom: number
  /** Index of the step that ended that offline period (Infinity: never during the run). */
  offlineUntil: number
  /** When it ended (ms epoch), to read beside the cache managers' logs. */
  at: number
  /** Index of the first step after which its client was seen with nothing left to replay (Infinity: not seen). */
  pendingUntil: number
}

/** `error`: listed, but not readable. */
export interface FinalObject { type: ObjectKind, mode: number, content?: string, target?: string, xattr?: string, error?: string }
export type View = Map<string, FinalObject>
export interface Conflict { client: string, path: string, kind: string, copies: string[] }
/** The `client` of a server/server conflict: the members' own, flagged to every client. */
export const SERVERS = 'servers'

export interface Verdict {
  losses: string[]
  divergences: string[]
  falseConflicts: string[]
  /** Conflicts kept with their bytes but reported at a path that could not be found. */
  misplaced: string[]
  conflicts: number
}

/** Is `p` equal to `q` or below it? */
export function within (p: string, q: string): boolean {
  return p === q || q === '' || p.startsWith(q + '/') // '': the tree's root, above everything
}

/** Paths related by one being at or below the other. */
function related (p: string, q: string): boolean {
  return within(p, q) || within(q, p)
}

export class History {
  readonly steps: Step[] = []
  private offlineSince = new Map<string, number>()

  /** The client can certainly not reach its servers from now on (forced disconnect, frozen or dead server, dead client). */
  goOffline (client: string): void {
    if (!this.offlineSince.has(client)) this.offlineSince.set(client, this.steps.length)
  }

  /** The client may reach its servers again (its log may replay from now on). */
  goOnline (client: string): void {
    const since = this.offlineSince.get(client)
    if (since === undefined) return
    this.offlineSince.delete(client)
    for (const s of this.steps) if (s.client === client && s.offline && s.i >= since && s.offlineUntil === Infinity) s.offlineUntil = this.steps.length
  }

  /** The client was just seen connected with an empty log: all its steps so far are on the servers. */
  drained (client: string): void {
    const now = this.steps.length - 1
    for (const s of this.steps) if (s.client === client && s.pendingUntil === Infinity) s.pendingUntil = now
  }

  isOffline (client: string): boolean {
    return this.offlineSince.has(client)
  }

  add (s: Omit<Step, 'i' | 'offline' | 'offlineFrom' | 'offlineUntil' | 'at' | 'pendingUntil'>): Step {
    const i = this.steps.length
    const step: Step = { ...s, i, offline: this.offlineSince.has(s.client), offlineFrom: this.offlineSince.get(s.client) ?? i, offlineUntil: Infinity, at: Date.now(), pendingUntil: Infinity }
    this.steps.push(step)
    return step
  }

  note (client: string, op: string, detail = ''): void {
    this.add({ client, op, paths: [], detail, ok: true, tokens: [], effects: [] })
  }

  /**
   * Can step `x` replace what `w` did? An earlier `x` can when it was still in its client's
   * log at `w`. A later `x` can unless `w` was certainly still in an offline client's log
   * then — and even so when `x` was in a log too, one that may have reached the servers
   * after `w`'s did (its client was not seen drained before `w`'s went online).
   */
  private canReplace (w: Step, x: Step): boolean {
    if (!x.ok || x.i === w.i) return false
    if (x.i < w.i) return x.client !== w.client && x.pendingUntil > w.i
    if (x.client === w.client || !(w.offline && w.offlineUntil > x.i)) return true
    return x.offline && x.pendingUntil > w.offlineUntil
  }

  /** Judges the final state: the servers' view, each client's, and the open conflicts. */
  judge (server: View, clients: Map<string, View>, conflicts: Conflict[], found: Set<string>): Verdict {
    const losses: string[] = []
    const covered = (paths: string[]) => conflicts.some(c => paths.some(p => related(p, c.path)))
    const ok = this.steps.filter(s => s.ok)
    for (const w of ok) {
      const later = ok.filter(x => this.canReplace(w, x))
      // A rename that conflicted is kept at either of its names.
      // A conflict of an object with hard links may be reported at any of its names.
      const kept = (e: Effect) => covered(w.op === 'rename' ? [e.path, ...w.paths] : [e.path, ...(e.kind === 'absent' ? [] : this.linkedNames(e.path))])
      for (const e of w.effects) {
        const holds = (e: Effect) => {
          if (later.some(x => replacesEffect(x, e)) || kept(e) || this.ownUnsent(w, e)) return true
          const have = server.get(e.path)
          return e.kind === 'absent' ? !have
            : e.kind === 'exists' ? have !== undefined && (e.type === undefined || have.type === e.type)
              : have !== undefined && (have.mode & 0o7777) === e.mode
        }
        if (this.movedTo(w, e).some(path => holds({ ...e, path }))) continue
        const have = server.get(e.path)
        losses.push(`step ${w.i} (${w.client} ${w.op} ${w.detail}): expected ${describe(e)}, the servers have ${have ? `${have.type} ${(have.mode & 0o7777).toString(8)}` : 'nothing'} there`)
      }
      for (const [n, token] of w.tokens.entries()) {
        if (found.has(token)) continue
        const slot = w.slot === -1 ? n : w.slot ?? n
        if (this.tokenReplaced(w, slot, later)) continue
        losses.push(`step ${w.i} (${w.client} ${w.op} ${w.detail}): its bytes ${token.trim()} are nowhere: not on the servers, not in a conflict`)
      }
    }
    const divergences: string[] = []
    for (const [client, view] of clients) {
      const mine = conflicts.filter(c => c.client === client || c.client === SERVERS)
      // A conflicted object shows as a dangling symlink naming its conflict: flagged, not diverged.
      const flagged = [...view].filter(([, o]) => o.target?.startsWith('/afs-conflict/')).map(([p]) => p)
      const skip = (p: string) => mine.some(c => related(p, c.path)) || flagged.some(f => related(p, f))
      for (const p of new Set([...view.keys(), ...server.keys()])) {
        if (skip(p)) continue
        const a = view.get(p)
        const b = server.get(p)
        if (JSON.stringify(a) !== JSON.stringify(b)) divergences.push(`${client} ${p}: sees ${JSON.stringify(a)}, the servers have ${JSON.stringify(b)}`)
      }
    }
    const misplaced = conflicts.filter(c => c.path.startsWith('/')).map(c => `${c.client}: a conflict (${c.kind}) whose path was not found (${c.path})`)
    // A conflict is false when no other client touched its path (one of the server/server kind: when fewer than two did).
    const touchedBy = (path: string) => new Set(ok.filter(s => s.paths.some(p => related(p, path))).map(s => s.client))
    const falseConflicts = conflicts.filter(c => !c.path.startsWith('/'))
      .filter(c => { const by = touchedBy(c.path); by.delete(c.client); return by.size < (c.client === SERVERS ? 2 : 1) })
      .map(c => `${c.client} ${c.path} (${c.kind}): no other client touched it`)
    return { losses, divergences, falseConflicts, misplaced, conflicts: conflicts.length }
  }

  /**
   * Where the object of effect `e` of an offline step `w` may be on the servers: at its
   * path, or where another client's rename that may have reached the servers while `w`
   * waited in its log moved it — a directory above it (the log names that directory by
   * fid, so a change lands wherever the directory went; Coda does the same), or, for a
   * mode, the object itself (a chmod is logged by fid too).
   */
  private movedTo (w: Step, e: Effect): string[] {
    const places = [e.path]
    if (!w.offline) return places
    for (const x of this.steps) {
      // (x reached the servers between its step and when its client was seen drained.)
      if (x.i >= w.offlineUntil || x.pendingUntil < w.offlineFrom || !x.ok || x.op !== 'rename' || x.client === w.client) continue
      const [from, to] = x.paths
      for (const p of [...places]) if ((p !== from || e.kind === 'mode') && within(p, from)) places.push(to + p.slice(from.length))
    }
    return places
  }

  /** The other names that hard links made during the run gave the object at `path`. */
  private linkedNames (path: string): string[] {
    const out: string[] = []
    for (const x of this.steps) {
      if (!x.ok || x.op !== 'link') continue
      const [from, to] = x.paths
      if (path === from) out.push(to)
      if (path === to) out.push(from)
    }
    return out
  }

  /**
   * A name `w` removes that its own client made and may not have sent yet: the two cancel
   * in its log (Coda's cancellation), and whatever another client made there stays.
   */
  private ownUnsent (w: Step, e: Effect): boolean {
    if (e.kind !== 'absent') return false
    return this.steps.some(x => x.i < w.i && x.ok && x.client === w.client && x.pendingUntil > w.i && x.effects.some(f => f.kind === 'exists' && f.path === e.path))
  }

  /**
   * Whether the token `w` wrote into `slot` may have been replaced: a later write of the
   * same slot or of the whole file, a truncate below it, another client's write session
   * while `w` was still in a log (the last close wins), or the file's removal — at any
   * path its object may have had since (renames and links carry it along), or through
   * any name with its inode number.
   */
  private tokenReplaced (w: Step, slot: number, later: Step[]): boolean {
    const places = new Set([w.paths[0]])
    for (const x of this.steps) {
      if (x.i <= w.i || !x.ok) continue
      if (x.op === 'rename' || x.op === 'link') {
        const [from, to] = x.paths
        for (const p of [...places]) if (within(p, from)) places.add(to + p.slice(from.length))
      }
    }
    // A write or truncate that failed after its open may have cut the file all the same (its ftruncate had succeeded).
    const cut = w.op !== 'xattr' && this.steps.some(x => x.i > w.i && !x.ok && x.ino !== undefined &&
      (places.has(x.paths[0]) || x.ino === w.ino) && ((x.op === 'write' && x.slot === -1) || (x.op === 'truncate' && (x.keepSlots ?? 0) <= slot)))
    if (cut) return true
    return later.some(x => {
      const at = (p: string) => [...places].some(q => within(q, p))
      // The same file under another name: a hard link made before `w`.
      const same = places.has(x.paths[0]) || (x.ino !== undefined && x.ino === w.ino)
      // An attribute's token: replaced by setting the attribute again, or the object's end.
      if (w.op === 'xattr') return (x.op === 'xattr' && same) || ((x.op === 'remove' || x.op === 'rmdir') && at(x.paths[0])) || (x.op === 'rename' && at(x.paths[1]))
      // The last close wins: another client's write while `w` may still have been on its
      // way to the servers (in a log) stores that client's whole file over it.
      const session = x.op === 'write' || x.op === 'append' || x.op === 'truncate'
      if (same && session && x.client !== w.client && x.i <= w.pendingUntil) return true
      switch (x.op) {
        case 'write': return same && (x.slot === -1 || x.slot === slot)
        case 'truncate': return same && (x.keepSlots ?? 0) <= slot
        case 'remove': case 'rmdir': return at(x.paths[0])
        case 'rename': return at(x.paths[1])
        default: return false
      }
    })
  }
}

/** Whether step `x` (later, allowed to) changes what effect `e` says about its path. */
function replacesEffect (x: Step, e: Effect): boolean {
  if (e.kind === 'mode') return x.paths.some(p => related(p, e.path)) && (x.op === 'chmod' || x.effects.some(f => f.kind !== 'mode'))
  return x.effects.some(f => f.kind !== 'mode' && related(f.path, e.path))
}

function describe (e: Effect): string {
  switch (e.kind) {
    case 'exists': return `${e.path} to exist${e.type ? ` as a ${e.type}` : ''}`
    case 'absent': return `${e.path} to be gone`
    case 'mode': return `${e.path} to have mode ${e.mode.toString(8)}`
  }
}
