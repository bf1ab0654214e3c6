// How `afs repair` shows conflicts and resolutions: the replies of the control protocol,
// the side-by-side table, the diffs.
import { readFile } from 'node:fs/promises'
import { createTwoFilesPatch } from 'diff'
import { formatSize, isText } from '@afs-ts/common'
import type { ControlReply } from '@afs-ts/cache-manager'
import { table } from '../table.ts'

const MAX_DIFF_BYTES = 4 * 1024 * 1024

/** A conflict as `afs repair list` gets it, as `show` gets it, and a resolution: the control protocol's replies. */
export type ConflictView = ControlReply<'repairList'>[number]
export type ShowView = ControlReply<'repairShow'>
export type ResolutionView = ControlReply<'repairResolve'>
export type ReplicaShowView = ControlReply<'replicaShow'>
/** What the side-by-side table shows of a version. */
interface SideView { type: string, size: number | null, sha256: string | null, mtimeMs: number | null, copy: string | null, target?: string }

/** What a resolution did, with where the result went when that is not the conflicted path. */
export function did (r: ResolutionView): string {
  return r.result && r.result.fullPath !== r.fullPath ? `${r.action}: ${r.result.fullPath}` : r.action
}

/** Larger versions are not diffed by `show` (the files are named for other tools). */
/** `afs repair show`: both versions side by side, the diffs, and what can be done. */
export async function describe (c: ShowView): Promise<string> {
  const out: string[] = [`${c.fullPath}: ${c.kind} conflict — ${c.meaning}`, `found ${when(c.time)}: ${c.message}`]
  const r = c.resolution
  if (r) out.push(`resolved ${when(r.at)} by ${r.by} (${r.choice}): ${did(r)}${r.undoneAt ? `; undone ${when(r.undoneAt)}` : ` (afs repair undo ${r.id})`}`)
  out.push('')
  const cols: Array<[string, SideView | null]> = [['HERE', c.local], ['SERVER', c.server], ['ANCESTOR', c.base ? { type: 'file', ...c.base, mtimeMs: null } : null]]
  const shown = cols.filter(([, s]) => s !== null) as Array<[string, SideView]>
  const row = (label: string, f: (s: SideView, i: number) => string) => [label, ...shown.map(([, s], i) => f(s, i))]
  out.push(table(['', ...shown.map(([n]) => n)], [
    row('change', (_, i) => i === 0 ? `${c.local.op} at ${when(c.local.changedAt)}` : i === 1 ? (c.server.type === 'none' ? 'nothing there' : `version ${c.server.dataVersion}`) : `version ${c.base!.dataVersion}`),
    row('by', (_, i) => i === 0 ? c.local.client : ''),
    row('type', s => s.type === 'none' ? 'removed' : s.type + (s.target ? ` → ${s.target}` : '')),
    row('size', s => size(s)),
    row('modified', s => when(s.mtimeMs)),
    row('sha256', s => s.sha256 ? s.sha256.slice(0, 16) : '-'),
    row('file', s => s.copy ?? '-'),
  ]).trimEnd())
  if (c.server.movedTo?.length) out.push(`the server has the object at ${c.server.movedTo.join(', ')}`)
  if (c.entries) {
    const where = (e: { where: string, here: string | null, server: string | null }) => e.where === 'here'
      ? `only here (a ${e.here}; a conflict of its own: resolve it after the directory)`
      : e.where === 'server' ? `only on the server (a ${e.server})` : e.where === 'both' ? `on both sides, the same ${e.here}` : `on both sides: here a ${e.here}, there another ${e.server}`
    out.push('', 'directory entries:', table(['ENTRY', 'WHERE'], c.entries.map(e => [e.name, where(e)])).trimEnd())
  }
  const [l, s, b] = await Promise.all([c.local.copy, c.server.copy, c.base?.copy].map(f => f ? readFile(f).catch(() => null) : Promise.resolve(null)))
  if ([l, s, b].some(x => x && x.length > MAX_DIFF_BYTES)) {
    out.push('', `too large to diff here (over ${formatSize(MAX_DIFF_BYTES)}): compare the files above with diff(1) or a merge tool`)
  } else if (l && s) {
    if (!isText(l) || !isText(s)) out.push('', `binary contents: ${l.equals(s) ? 'identical' : 'they differ'} (compare the sha256 above)`)
    else if (b && isText(b)) {
      out.push('', patch('ancestor', 'here', b, l), patch('ancestor', 'server', b, s))
    } else out.push('', patch('server', 'here', s, l))
  } else if (l && isText(l)) out.push('', patch('(nothing)', 'here', Buffer.alloc(0), l))
  else if (s && isText(s)) out.push('', patch('(nothing)', 'server', Buffer.alloc(0), s))
  if (r) return out.join('\n') + '\n'
  out.push(c.mergeAuto.ok ? 'merge-auto: the changes do not overlap; --merge-auto merges them' : `merge-auto: not possible: ${c.mergeAuto.reason}`)
  out.push(`resolve: afs repair resolve ${c.fullPath} --keep local|server|both [--as NAME] | --merge FILE${c.mergeAuto.ok ? ' | --merge-auto' : ''}`)
  return out.join('\n') + '\n'
}

/** `afs repair show` of a server/server conflict: every member's version side by side, the diffs from the first, what can be done. */
export async function describeReplicas (c: ReplicaShowView): Promise<string> {
  const out: string[] = [`${c.fullPath}: server/server conflict — the members of its volume changed it apart; each keeps its version until it is repaired`, '']
  const vs = c.versions
  const row = (label: string, f: (v: ReplicaShowView['versions'][number]) => string) => [label, ...vs.map(v => v.reachable ? f(v) : '-')]
  out.push(table(['', ...vs.map(v => v.server)], [
    row('vector', v => v.vv ? Object.values(v.vv).join(',') : '-'),
    row('type', v => v.type ?? '-'),
    row('size', v => v.size === null ? '-' : formatSize(v.size)),
    row('modified', v => when(v.mtimeMs)),
    row('by', v => v.by ?? '-'),
    row('sha256', v => v.sha256 ? v.sha256.slice(0, 16) : '-'),
    row('file', v => v.copy ?? '-'),
  ]).trimEnd())
  for (const v of vs) if (!v.reachable) out.push(`${v.server}: not reachable (${v.error ?? 'no answer'}): a repair needs every member`)
  const dirs = vs.filter(v => v.entries)
  if (dirs.length) {
    const names = [...new Set(dirs.flatMap(v => v.entries ?? []))].sort()
    out.push('', 'directory entries:', table(['ENTRY', ...dirs.map(v => v.server)], names.map(n => [n, ...dirs.map(v => v.entries!.includes(n) ? 'yes' : '-')])).trimEnd())
  }
  const bodies = await Promise.all(vs.map(v => v.copy ? readFile(v.copy).catch(() => null) : Promise.resolve(null)))
  const [first, ...others] = vs.map((v, i) => ({ v, b: bodies[i] })).filter(x => x.b !== null) as Array<{ v: ReplicaShowView['versions'][number], b: Buffer }>
  if (first) {
    for (const o of others) {
      if (first.b.length > MAX_DIFF_BYTES || o.b.length > MAX_DIFF_BYTES) out.push('', `too large to diff here (over ${formatSize(MAX_DIFF_BYTES)}): compare the files above with diff(1)`)
      else if (!isText(first.b) || !isText(o.b)) out.push('', `binary contents of ${first.v.server} and ${o.v.server}: ${first.b.equals(o.b) ? 'identical' : 'they differ'}`)
      else out.push('', patch(first.v.server, o.v.server, first.b, o.b))
    }
  }
  out.push(`resolve: afs repair resolve ${c.fullPath} --keep-replica HOST:PORT${c.type === 'file' ? ' | --merge FILE (a file you made of the versions above)' : ''}`)
  return out.join('\n') + '\n'
}

function patch (from: string, to: string, a: Buffer, b: Buffer): string {
  if (a.equals(b)) return `(${from} and ${to} are identical)\n`
  const lines = createTwoFilesPatch(from, to, a.toString('utf8'), b.toString('utf8'), undefined, undefined, { context: 3 }).split('\n').slice(1)
  return (COLOR ? lines.map(colored) : lines).join('\n')
}

/** Diffs in colour on a terminal, as git shows them (NO_COLOR turns it off). */
const COLOR = process.stdout.isTTY === true && !process.env.NO_COLOR
function colored (line: string): string {
  const paint = (code: number) => `\u001b[${code}m${line}\u001b[0m`
  if (line.startsWith('---') || line.startsWith('+++')) return paint(1)
  if (line.startsWith('@@')) return paint(36)
  if (line.startsWith('+')) return paint(32)
  if (line.startsWith('-')) return paint(31)
  return line
}

export function size (s: SideView): string {
  return s.type === 'none' ? '-' : s.size === null ? '?' : formatSize(s.size)
}

export function when (ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString().replace('T', ' ').slice(0, 19)
}
