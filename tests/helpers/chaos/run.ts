// The randomized fault harness: one or two real servers and 2–3 real cache managers with
// real mounts; operations drawn at random on a small shared tree, and faults between
// them — disconnect, write-back, reconnect, a server frozen (SIGSTOP) or killed (also in
// the middle of a store), a cache manager killed (also in the middle of a reintegration)
// and restarted. With two servers the tree is a volume of the second, which joins the
// cell through the first (the location database and the root volume): either may fail.
// With three, the tree is a volume replicated on all three, and any of them may fail:
// the clients are offline only while none of its members answers.
// Then everything heals, every client syncs, and the checker looks for silent losses,
// divergent views and false conflicts. A seed replays a run.
import { lstat, mkdir, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { execFile } from 'node:child_process'
import { controlCall, type ControlCallArgs } from '@afs-ts/tools'
import type { ControlOp } from '@afs-ts/cache-manager'
import type { Fid, PendingReply, RpcConnection, VnodeStatus } from '@afs-ts/common'
import { Stack, afs, afsOk, isMounted, rawConnection, startClient, startServer, tempDir, type Client, type Server } from '../cell.ts'
import { History, SERVERS, type Conflict, type FinalObject, type Verdict, type View } from './history.ts'
import { Random, TOKEN, Workload, XATTR, bounded, kindOf } from './workload.ts'

export interface ChaosOptions { seed: number, ops: number, clients?: number, servers?: 1 | 2 | 3, log?: (line: string) => void }
export interface ChaosReport extends Verdict {
  seed: number
  ops: number
  faults: number
  failedOps: Record<string, number>
  seconds: number
  history: string[]
  /** The cache managers' log lines about conflicts and errors. */
  clientLog: string[]
}

const FAULTS = { disconnect: 3, writeBack: 2, reconnect: 5, freeze: 1, killClient: 1, killClientReintegrating: 1, killServer: 1, killServerStoring: 1, moveTree: 1 } as const
type Fault = keyof typeof FAULTS
const TREE = 'chaos'

interface Member { name: string, client: Client | null, cache: string, mount: string, log: string }
/** A server of the run; `tree`: the one holding the tree the workload changes (its faults take the clients offline). */
interface Site { name: string, s: Server | null, frozen: boolean, address: string, dataDir: string, tree: boolean, extra: string[], log: string }

export async function runChaos (opts: ChaosOptions): Promise<ChaosReport> {
  const started = Date.now()
  const rnd = new Random(opts.seed)
  const work = new Workload(rnd)
  const history = new History()
  const say = opts.log ?? (() => {})
  const stack = new Stack()
  const failedOps: Record<string, number> = {}
  /** The log lines of clients whose operation hung, for the report. */
  const hung: string[] = []
  let faults = 0
  try {
    const sites: Site[] = []
    for (let n = 0; n < (opts.servers ?? 1); n++) {
      const dataDir = await tempDir('afs-chaos-srv-')
      stack.defer(dataDir)
      const site: Site = { name: n === 0 ? 'server' : `server${n + 1}`, s: null, frozen: false, address: '', dataDir, tree: false, extra: n === 0 ? [] : ['--vldb', sites[0].address], log: '' }
      sites.push(site)
      await startSite(site)
      stack.push(async () => { if (site.frozen) site.s?.proc.kill('SIGCONT'); await site.s?.stop() })
    }
    const first = sites[0]
    // The tree's servers: the one server, the second of two, or all three (replicated).
    const treeSites = sites.length === 3 ? sites : [sites[sites.length - 1]]
    for (const t of treeSites) t.tree = true
    const members: Member[] = []
    for (let n = 0; n < (opts.clients ?? 2); n++) {
      const cache = await tempDir('afs-chaos-cache-')
      const mount = await tempDir('afs-chaos-mnt-')
      stack.defer(cache)
      stack.push(async () => { if (!await isMounted(mount)) await rm(mount, { recursive: true, force: true }) })
      const m: Member = { name: `c${n}`, client: null, cache, mount, log: '' }
      stack.push(async () => { await m.client?.stop() })
      members.push(m)
    }
    // CHAOS_LOG=debug: the cache managers log every record they log and replay (shown with the findings).
    const up = async (m: Member) => { m.client = await startClient([first.address], { cache: m.cache, mount: m.mount, env: { AFS_LOG: process.env.CHAOS_LOG ?? 'info' } }) }
    for (const m of members) await up(m)
    if (sites.length === 1) await mkdir(join(members[0].client!.cellPath, TREE))
    else {
      await afsOk(['vos', 'create', TREE, ...treeSites.flatMap(t => ['--server', t.address])])
      await afsOk(['fs', 'mkmount', join(members[0].client!.cellPath, TREE), TREE, '--cache', members[0].cache])
    }
    const root = (m: Member) => join(m.client!.cellPath, TREE)
    const call = <O extends ControlOp>(m: Member, op: O, ...args: ControlCallArgs<O>) => bounded(controlCall(m.cache, op, ...args), 60_000)

    const everyone = (f: (name: string) => void) => { for (const m of members) f(m.name) }
    // Only the tree's last member going and its first coming back take the clients offline and back.
    const treeUp = () => treeSites.some(t => running(t) && !t.frozen)
    /** Clients disconnected by hand: offline whatever the servers do, until reconnected. */
    const forced = new Set<string>()
    const changing = async (site: Site, what: string, change: () => unknown) => {
      const was = treeUp()
      await change()
      history.note(site.name, what)
      if (was && !treeUp()) everyone(n => history.goOffline(n))
      if (!was && treeUp()) everyone(n => { if (!forced.has(n)) history.goOnline(n) })
    }
    const thaw = async (site: Site) => { if (site.frozen) await changing(site, 'SIGCONT', () => { site.s!.proc.kill('SIGCONT'); site.frozen = false }) }
    const restartServer = async (site: Site) => { if (!running(site)) await changing(site, 'restarted', () => startSite(site)) }
    // A client starts connected (a forced one is disconnected again just after): it may replay if the tree is up.
    const restartClient = async (m: Member) => { if (!m.client) { await up(m); history.note(m.name, 'restarted'); if (treeUp()) history.goOnline(m.name) } }
    /** A move of the tree to the other server (two servers), under way while the workload goes on; server faults wait for it. */
    let moving: Promise<void> | null = null

    const fault = async (f: Fault): Promise<void> => {
      const alive = members.filter(m => m.client)
      const m = rnd.pick(alive)
      faults++
      switch (f) {
        case 'disconnect': await call(m, 'disconnect', { writeBack: false }); forced.add(m.name); history.goOffline(m.name); history.note(m.name, 'disconnect'); return
        case 'writeBack': await call(m, 'disconnect', { writeBack: true, ageMs: 1000 }); history.note(m.name, 'disconnect --write-back'); return
        case 'reconnect': {
          await call(m, 'reconnect'); forced.delete(m.name); history.note(m.name, 'reconnect')
          if (treeUp()) history.goOnline(m.name)
          return
        }
        case 'moveTree': {
          if (sites.length !== 2 || moving || sites.some(x => !running(x) || x.frozen)) return
          const to = sites.find(x => x !== treeSites[0])!
          history.note('server', `vos move of the tree to ${to.name} begins`)
          moving = afs(['vos', 'move', TREE, '--to', to.address, '--server', first.address]).then(r => {
            if (r.code !== 0) { say(`the move failed: ${r.stderr.trim()}`); return }
            treeSites[0].tree = false
            treeSites[0] = to
            to.tree = true
            history.note('server', `vos move of the tree to ${to.name} done`)
            say(`the tree moved to ${to.name}`)
          }).finally(() => { moving = null })
          return
        }
        case 'freeze': {
          if (moving) return
          const site = rnd.pick(sites)
          if (site.frozen || !running(site)) return
          await changing(site, 'SIGSTOP', () => { site.s!.proc.kill('SIGSTOP'); site.frozen = true })
          return
        }
        case 'killClient': case 'killClientReintegrating': {
          if (alive.length < 2) return
          if (f === 'killClientReintegrating') { await call(m, 'reconnect'); forced.delete(m.name); await sleep(rnd.int(400)) }
          await m.client!.stop('SIGKILL')
          m.log += m.client!.stderr()
          m.client = null
          history.goOffline(m.name); history.note(m.name, f === 'killClient' ? 'SIGKILL' : 'reconnect, then SIGKILL')
          await restartClient(m)
          if (forced.has(m.name)) { await call(m, 'disconnect', { writeBack: false }); history.goOffline(m.name) }
          return
        }
        case 'killServer': case 'killServerStoring': {
          if (moving) return
          const site = f === 'killServerStoring' ? rnd.pick(treeSites) : rnd.pick(sites)
          if (!running(site) || site.frozen) return
          let storing: Promise<unknown> | null = null
          if (f === 'killServerStoring') {
            const big = join(root(m), `big-${faults}`)
            storing = writeFile(big, Buffer.alloc(4 << 20, 0x61)).catch(() => {})
            await sleep(rnd.int(300))
          }
          await changing(site, f === 'killServer' ? 'SIGKILL' : 'SIGKILL during a 4 MiB store', () => site.s!.stop('SIGKILL'))
          if (storing) await bounded(storing, 60_000).catch(() => {})
          return
        }
      }
    }

    /** The servers' word on resolution (replicated trees): what they merged, took or found apart. */
    const serverWord = () => sites.flatMap(t => (t.log + (t.s?.stderr() ?? '')).split('\n').filter(l => /conflict|error|resol|took|merged|refused/i.test(l)).map(l => `${t.name}: ${l}`))

    for (let n = 0; n < opts.ops; n++) {
      if (rnd.chance(0.08)) {
        const f = rnd.weighted<Fault>(FAULTS)
        await fault(f)
        say(`fault ${f}`)
      }
      // A frozen or dead server comes back after a while.
      for (const site of sites) {
        if (site.frozen && rnd.chance(0.15)) await thaw(site)
        if (!running(site) && rnd.chance(0.2)) await restartServer(site)
      }
      const alive = members.filter(m => m.client)
      const m = rnd.pick(alive)
      const out = await work.run(root(m), members.indexOf(m))
      const step = history.add({ client: m.name, ...out })
      if (await drained(m)) history.drained(m.name)
      if (!out.ok) failedOps[`${out.op} ${out.errno}`] = (failedOps[`${out.op} ${out.errno}`] ?? 0) + 1
      say(`${step.i} ${m.name}${step.offline ? ' (offline)' : ''} ${out.op} ${out.detail}: ${out.ok ? 'ok' : out.errno}`)
      if (out.errno === 'HUNG') {
        // What the stuck client was doing: shown with the findings (and live, with opts.log).
        const tail = (m.log + m.client!.stderr()).split('\n').slice(-40)
        hung.push(`${m.name}: step ${step.i} (${out.op} ${out.detail}) hung; its last log lines:`, ...tail.map(l => `${m.name}:   ${l}`))
        say(`${m.name} log, last lines:\n${tail.join('\n')}`)
      }
    }

    // Heal: everything back, every log replayed.
    await moving
    for (const site of sites) { await thaw(site); await restartServer(site) }
    for (const m of members) await restartClient(m)
    for (const m of members) { await call(m, 'reconnect'); history.goOnline(m.name) }
    for (let round = 0; round < 2; round++) {
      for (const m of members) {
        const synced = await waitSynced(m)
        if (!synced) throw new Error(`${m.name} did not finish replaying its log: ${JSON.stringify(await call(m, 'status'))}`)
      }
    }
    // A replicated tree: its members compare and resolve by themselves; they must end equal.
    if (treeSites.length > 1 && !await membersEqual(first.address)) {
      throw new Error(`the tree's members did not end equal: ${await afsOk(['vos', 'examine', TREE, '--server', first.address])}\n${serverWord().join('\n')}`)
    }
    await sleep(1500) // the kernel's attribute and entry caches (1 s)
    const freshMount = await tempDir('afs-chaos-mnt-')
    const fresh = await startClient([first.address], { mount: freshMount, env: { AFS_LOG: 'quiet' } })
    stack.defer(fresh.cache)
    stack.push(async () => { if (!await isMounted(freshMount)) await rm(freshMount, { recursive: true, force: true }) })
    stack.push(async () => { await fresh.stop(); if (await isMounted(freshMount)) await unmount(freshMount) })
    const server = await viewOf(join(fresh.cellPath, TREE))
    const clients = new Map<string, View>()
    const conflicts: Conflict[] = []
    const found = new Set<string>()
    const collect = (text: string) => { for (const t of text.match(TOKEN) ?? []) found.add(t) }
    for (const o of server.values()) collect(`${o.content ?? ''}${o.xattr ?? ''}`)
    for (const m of members) {
      clients.set(m.name, await viewOf(root(m)))
      type Side = { xattrs?: Record<string, string> }
      for (const c of await call(m, 'repairList') as Array<{ path: string, kind: string, localCopy: string | null, serverCopy: string | null, fid: unknown, local: Side & { op: string }, server: Side, message: string }>) {
        const path = c.path.replace(/^\/chaos\/chaos\/?/, '')
        const copies = [c.localCopy, c.serverCopy].filter((x): x is string => x !== null)
        for (const f of copies) collect(await readFile(f, 'utf8').catch(() => ''))
        for (const side of [c.local, c.server]) for (const v of Object.values(side.xattrs ?? {})) collect(`${Buffer.from(v, 'base64').toString()}\n`)
        conflicts.push({ client: m.name, path, kind: `${c.kind}, local ${c.local.op} of ${JSON.stringify(c.fid)}: ${c.message}`, copies })
      }
    }
    if (treeSites.length > 1) conflicts.push(...await serverConflicts(treeSites, collect))
    const verdict = history.judge(server, clients, conflicts, found)
    const clientLog = [
      ...members.flatMap(m => (m.log + m.client!.stderr()).split('\n').filter(l => /conflict|error| debug /i.test(l)).map(l => `${m.name}: ${l}`)),
      ...serverWord(),
      ...hung,
    ]
    return {
      clientLog,
      seed: opts.seed, ops: opts.ops, faults, failedOps, seconds: (Date.now() - started) / 1000, ...verdict,
      history: history.steps.map(s => `${s.i} ${new Date(s.at).toISOString().slice(11, 23)} ${s.client}${s.offline ? ' (offline)' : ''} ${s.op} ${s.detail}${s.ok ? '' : `: ${s.errno}`}`),
    }
  } finally {
    await stack.unwind()
  }
}

/**
 * Whether every member of the tree's volume answers with nothing pending but what is in
 * conflict, within a minute — or, where a directory is in server/server conflict (what
 * is under it waits for its repair), with nothing changing for ten seconds.
 */
async function membersEqual (via: string): Promise<boolean> {
  const end = Date.now() + 60_000
  let last = ''
  let since = Date.now()
  while (Date.now() < end) {
    const x = JSON.parse(await afsOk(['vos', 'examine', TREE, '--server', via, '--json'])) as { replicas: Array<{ reachable: boolean, pending: number | null, conflicts: number | null, vector: unknown }> }
    if (x.replicas.every(r => r.reachable && (r.pending ?? 1) <= (r.conflicts ?? 0))) return true
    const seen = JSON.stringify(x.replicas)
    if (seen !== last) { last = seen; since = Date.now() }
    if (x.replicas.every(r => r.reachable) && x.replicas.some(r => (r.conflicts ?? 0) > 0) && Date.now() - since > 10_000) return true
    await sleep(500)
  }
  return false
}

/**
 * The tree's objects in server/server conflict, at their paths (as the members' replicas
 * have them), every member's version of each collected as kept: its bytes and xattrs.
 */
async function serverConflicts (treeSites: Site[], collect: (text: string) => void): Promise<Conflict[]> {
  const out: Conflict[] = []
  const conns = await Promise.all(treeSites.map(t => rawConnection(t.address)))
  try {
    const pending = await conns[0].request('volPending', { name: TREE }) as PendingReply
    const inConflict = pending.objects.filter(x => x.conflict)
    const keptBy = async (c: RpcConnection, fid: Fid) => {
      const status = await c.request('fetchStatus', { fid }).then(r => (r as { status: VnodeStatus }).status, () => null)
      if (!status) return
      for (const v of Object.values(status.xattrs ?? {})) collect(`${Buffer.from(v).toString()}\n`)
      if (status.type !== 'file') return
      const chunks: Buffer[] = []
      for await (const chunk of (await c.download('fetchData', { fid })).body) chunks.push(chunk)
      collect(Buffer.concat(chunks).toString())
    }
    // A directory in conflict keeps, on each member, what its version there leads to: every object of every replica counts as kept.
    const everything = inConflict.some(o => o.type === 'dir')
    for (const c of conns) {
      const fids = everything
        ? ((await c.request('vectors', { volume: pending.volume.id, after: 0, limit: 10_000 })) as { vectors: Array<{ vnode: number, unique: number }> }).vectors.map(v => ({ volume: pending.volume.id, vnode: v.vnode, unique: v.unique }))
        : inConflict.map(o => o.fid)
      for (const fid of fids) await keptBy(c, fid)
    }
    for (const o of inConflict) {
      out.push({ client: SERVERS, path: o.path === null ? `/(vnode ${o.fid.vnode})` : o.path.replace(/^\//, ''), kind: `server/server of ${JSON.stringify(o.fid)}`, copies: [] })
    }
  } finally {
    for (const c of conns) c.close()
  }
  return out
}

async function startSite (site: Site): Promise<void> {
  if (site.s) site.log += site.s.stderr()
  site.s = await startServer(site.dataDir, 'chaos', site.address || '127.0.0.1:0', site.extra)
  site.address = site.s.address
}

function running (site: Site): boolean {
  return site.s !== null && site.s.proc.exitCode === null && site.s.proc.signalCode === null
}

/** Whether the client is connected with nothing left in its log. */
async function drained (m: Member): Promise<boolean> {
  const s = await bounded(controlCall(m.cache, 'status'), 60_000) as { cml: { records: number }, volumes: Array<{ state: string }> }
  return s.cml.records === 0 && s.volumes.every(v => v.state === 'connected')
}

async function waitSynced (m: Member): Promise<boolean> {
  const end = Date.now() + 120_000
  while (Date.now() < end) {
    const r = await controlCall(m.cache, 'sync', { waitMs: 5_000 }) as { pending: { records: number } }
    const s = await controlCall(m.cache, 'status') as { volumes: Array<{ state: string }> }
    if (r.pending.records === 0 && s.volumes.every(v => v.state === 'connected')) return true
    await sleep(200)
  }
  return false
}

/** Everything under `root` as a client shows it: type, mode, contents, link targets. */
async function viewOf (root: string): Promise<View> {
  const view: View = new Map()
  const xattrs = await attributesUnder(root)
  const walk = async (rel: string) => {
    for (const name of (await readdir(join(root, rel))).sort()) {
      const path = rel ? `${rel}/${name}` : name
      const full = join(root, path)
      // A name listed that cannot be read is shown as such (a divergence, never a crash of the harness).
      const s = await lstat(full).catch((err: NodeJS.ErrnoException) => err)
      if (s instanceof Error) { view.set(path, { type: 'file', mode: 0, error: `lstat: ${s.code ?? s.message}` }); continue }
      const o: FinalObject = { type: kindOf(s), mode: s.mode & 0o7777 }
      try {
        if (o.type === 'symlink') o.target = await readlink(full)
        if (o.type === 'file') o.content = await readFile(full, 'utf8')
      } catch (err) {
        o.error = `read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`
      }
      const x = xattrs.get(full)
      if (x !== undefined) o.xattr = x
      view.set(path, o)
      if (o.type === 'dir') await walk(path)
    }
  }
  await walk('')
  return view
}

/** The workload's attribute of every object under `root` (one getfattr for the tree), by full path. */
async function attributesUnder (root: string): Promise<Map<string, string>> {
  const dump = await new Promise<string>(resolve => {
    execFile('getfattr', ['-R', '-h', '--absolute-names', '-d', '-m', `^${XATTR.replace('.', '\\.')}$`, '--', root], { maxBuffer: 1 << 26 }, (_err, stdout) => resolve(stdout))
  })
  const out = new Map<string, string>()
  let file = ''
  for (const line of dump.split('\n')) {
    if (line.startsWith('# file: ')) file = line.slice(8)
    const m = /^[^=]+="(.*)"$/.exec(line)
    if (m && file) out.set(file, `${m[1]}\n`)
  }
  return out
}

/** Last resort for a mount whose cache manager did not unmount it. */
function unmount (dir: string): Promise<void> {
  return new Promise(resolve => { execFile('fusermount', ['-u', '-z', dir], () => resolve()) })
}

function sleep (ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

/** The report as text: figures first, then each finding, then (on findings) the history. */
export function formatReport (r: ChaosReport): string {
  const lines = [
    `seed ${r.seed}: ${r.ops} operations, ${r.faults} faults in ${r.seconds.toFixed(1)} s (${(r.ops / r.seconds).toFixed(1)} ops/s)`,
    `silent losses ${r.losses.length}, divergences ${r.divergences.length}, conflicts ${r.conflicts} (${(1000 * r.conflicts / r.ops).toFixed(1)} per 1,000 ops), false conflicts ${r.falseConflicts.length}, conflicts at paths not found ${r.misplaced.length}`,
    `failed operations: ${Object.entries(r.failedOps).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ×${v}`).join(', ') || 'none'}`,
    ...r.losses.map(l => `LOSS ${l}`), ...r.divergences.map(d => `DIVERGENCE ${d}`), ...r.falseConflicts.map(f => `FALSE CONFLICT ${f}`), ...r.misplaced.map(f => `MISPLACED ${f}`),
  ]
  if (r.losses.length + r.divergences.length + r.falseConflicts.length > 0) lines.push('history:', ...r.history, 'cache managers:', ...r.clientLog)
  return lines.join('\n')
}
