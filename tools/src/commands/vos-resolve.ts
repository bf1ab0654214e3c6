// `afs vos resolve NAME`: makes a replicated volume's members equal now, object by object
// (directories first, outermost first: what they gained is what the objects under them
// resolve into), with progress; lists what could not be resolved.
import type { PendingReply } from '@afs-ts/common'
import { EXIT_FAILURE, EXIT_OK } from '../args.ts'
import { progress } from '../progress.ts'
import { withServer, type ServerCall, type ToolCreds } from '../server-client.ts'
import { table } from '../table.ts'

/** Objects resolved at once (files; directories go one at a time). */
const AT_ONCE = 8

type Pending = PendingReply['objects'][number]

export async function resolveVolume (creds: ToolCreds, via: string, name: string, asJson: boolean): Promise<number> {
  const entry = await withServer(via, creds, async call => await call('vlGet', { name }))
  if (entry.servers.length < 2) {
    if (asJson) process.stdout.write(JSON.stringify({ name, replicated: false, objects: 0, resolved: 0, left: [], unreachable: [] }, null, 2) + '\n')
    else process.stdout.write(`${name} is on one server: nothing to resolve\n`)
    return EXIT_OK
  }
  // Asked of a member that answers (the paths come from its replica), else of the server given.
  let member = via
  for (const s of entry.servers) { if (await withServer(s, creds, async call => await call('ping', {})).then(() => true, () => false)) { member = s; break } }
  return await withServer(member, creds, async call => {
    const started = Date.now()
    const before = await call('volPending', { name })
    const counts = await resolveAll(call, before.objects)
    const after = await call('volPending', { name })
    const left = after.objects.map(o => ({ ...o, why: why(o, after) }))
    const seconds = (Date.now() - started) / 1000
    if (asJson) {
      process.stdout.write(JSON.stringify({ name, replicated: true, via: member, objects: before.objects.length, ...counts, seconds, left, unreachable: after.unreachable }, null, 2) + '\n')
    } else {
      process.stdout.write(`${name}: ${before.objects.length} objects differed between members; ${counts.resolved} resolved, ${left.length} left, in ${seconds.toFixed(1)} s\n`)
      if (after.unreachable.length) process.stdout.write(`not reachable: ${after.unreachable.join(', ')} (resolved when they answer again)\n`)
      if (left.length) {
        process.stdout.write(table(['PATH', 'TYPE', 'FID', 'WHY'], left.map(o => [o.path ?? `(not in ${member}'s replica)`, o.type, `${o.fid.vnode}.${o.fid.unique}`, o.why])))
        if (left.some(o => o.conflict)) process.stdout.write('repair server/server conflicts with afs repair resolve PATH --keep-replica HOST:PORT\n')
      }
    }
    return left.length === 0 && after.unreachable.length === 0 ? EXIT_OK : EXIT_FAILURE
  })
}

async function resolveAll (call: ServerCall, objects: Pending[]): Promise<{ resolved: number, conflicts: number, failed: number }> {
  const depth = (o: Pending) => o.path === null ? Infinity : o.path.split('/').length
  const dirs = objects.filter(o => o.type === 'dir').sort((a, b) => depth(a) - depth(b))
  const rest = objects.filter(o => o.type !== 'dir')
  const counts = { resolved: 0, conflicts: 0, failed: 0 }
  const line = progress()
  const one = async (o: Pending) => {
    try {
      const { outcome } = await call('resolve', { fid: o.fid })
      if (outcome === 'conflict') counts.conflicts++
      else if (outcome === 'unreachable') counts.failed++
      else counts.resolved++
    } catch {
      counts.failed++ // listed at the end, with the reason it still differs
    }
    line.show(`resolving: ${counts.resolved + counts.conflicts + counts.failed}/${objects.length} objects, ${counts.conflicts} in server/server conflict`)
  }
  for (const d of dirs) await one(d)
  let next = 0
  await Promise.all(Array.from({ length: Math.min(AT_ONCE, rest.length) }, async () => {
    while (next < rest.length) await one(rest[next++])
  }))
  line.done()
  return counts
}

function why (o: Pending, seen: PendingReply): string {
  if (o.conflict) return 'server/server conflict'
  if (seen.unreachable.length) return 'a member does not answer'
  return 'still differs (changed meanwhile, or under a directory in conflict)'
}
