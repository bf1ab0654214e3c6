// The control socket (`<cache>/control.sock`): how `afs status`, `afs fs …` and other
// tools talk to a running cache manager. Same framing as the server protocol.
import { createServer, type Server } from 'node:net'
import { rm } from 'node:fs/promises'
import { join, relative, isAbsolute, resolve, sep } from 'node:path'
import { z } from 'zod'
import { RpcConnection, badRequest, invalid, fidKey, MAX_ACL_ENTRIES, type Acl } from '@afs-ts/common'
import type { CacheManager } from './cache-manager.ts'
import type { Vfs } from './vfs.ts'
import { actingWith } from './tokens.ts'
import { statusReport } from './status.ts'
import { CLI_SOURCE, DEFAULT_HOARD_PRIORITY, parsePriority, type HoardDb } from './hoard/hoard-db.ts'
import type { HoardWalker } from './hoard/walker.ts'
import type { ProfileDaemon } from './hoard/profile-daemon.ts'
import { parseProfile } from './hoard/profile.ts'
import { KIND_MEANING, type Resolution } from './repair/conflict.ts'
import { dropListing } from './fs-object.ts'
import type { Choice } from './repair/repairer.ts'

export const CONTROL_SOCKET = 'control.sock'

/** The tokens a control request came with (a JSON list of {cell, token}); none or malformed: none. */
function callerTokens (token: string | null): Map<string, string> {
  const out = new Map<string, string>()
  if (!token) return out
  try {
    const list = JSON.parse(token) as unknown
    if (Array.isArray(list)) for (const t of list) if (typeof t?.cell === 'string' && typeof t?.token === 'string') out.set(t.cell, t.token)
  } catch { /* none */ }
  return out
}

/** A path as the user gave it (absolute, under the mount) → the mount-relative path the Vfs takes. */
export function toMountPath (mountDir: string, p: string): string {
  const abs = isAbsolute(p) ? p : resolve(p)
  const rel = relative(mountDir, abs)
  if (rel.startsWith('..') || isAbsolute(rel)) throw invalid(`${p} is not under the mount ${mountDir}`)
  return '/' + rel.split(sep).filter(Boolean).join('/')
}

/** Hoarding's parts, for the hoard requests. */
export interface HoardParts { db: HoardDb, walker: HoardWalker, profiles: ProfileDaemon }

const path = z.string().min(1).max(4096)
const pathArgs = z.object({ path })
const none = z.object({}).optional()

/** Every control request and its arguments (checked on arrival); the replies are what its handler returns (`ControlReply`). */
export const controlRequests = {
  status: none,
  servers: none,
  trust: none,
  flush: pathArgs,
  whereis: pathArgs,
  getacl: pathArgs,
  setacl: z.object({ path, acl: z.object({ pos: z.array(z.tuple([z.number().int(), z.number().int()])).max(MAX_ACL_ENTRIES), neg: z.array(z.tuple([z.number().int(), z.number().int()])).max(MAX_ACL_ENTRIES) }) }),
  lsmount: pathArgs,
  mkmount: z.object({ path, volume: z.string().min(1).max(63) }),
  listquota: pathArgs,
  disconnect: z.object({ writeBack: z.boolean(), ageMs: z.number().int().min(0).max(86_400_000).optional() }),
  reconnect: none,
  sync: z.object({ waitMs: z.number().int().min(0).max(86_400_000) }),
  repairList: none,
  repairShow: z.object({ ref: path }),
  repairResolve: z.object({
    ref: path,
    keep: z.enum(['local', 'server', 'both']).optional(),
    as: z.string().min(1).max(255).optional(),
    merge: path.optional(),
    mergeAuto: z.boolean().optional(),
    discardLocal: z.boolean().optional(),
  }),
  repairHistory: none,
  /** Server/server conflicts of replicated volumes this cache has seen, with each member's version. */
  replicaConflicts: none,
  /** Whether the object at a path is in server/server conflict (its status revalidated). */
  inReplicaConflict: z.object({ path }),
  /** A server/server conflict: every member's version, copied to this disk. */
  replicaShow: z.object({ path }),
  repairReplica: z.object({ path, keep: z.string().min(1).max(270).optional(), merge: path.optional() }),
  repairUndo: z.object({ ref: path }),
  resolverAdd: z.object({ pattern: z.string().min(1).max(1024), command: z.string().min(1).max(4096), kinds: z.array(z.string().max(32)).max(8).optional() }),
  resolverRemove: z.object({ pattern: z.string().min(1).max(1024) }),
  resolverList: none,
  hoardAdd: z.object({ path, priority: z.string().max(16).optional() }),
  hoardRemove: pathArgs,
  hoardList: none,
  hoardClear: none,
  hoardLoad: z.object({ text: z.string().max(4 * 1024 * 1024), name: z.string().max(255) }),
  hoardWalk: none,
  hoardProgress: none,
  hoardCancel: none,
  hoardVerify: none,
  hoardSuggest: none,
} as const

export type ControlOp = keyof typeof controlRequests
/** A request's arguments as a caller gives them. */
export type ControlArgs<O extends ControlOp> = z.input<(typeof controlRequests)[O]>
type Parsed<O extends ControlOp> = z.infer<(typeof controlRequests)[O]>
/** A request's reply: whatever its handler resolves with, so the two cannot drift apart. */
export type ControlReply<O extends ControlOp> = Awaited<ReturnType<ControlServer['handlers'][O]>>

export class ControlServer {
  private server: Server | null = null
  readonly socketPath: string

  constructor (private readonly cm: CacheManager, private readonly vfs: Vfs, private readonly mountDir: string, private readonly hoard: HoardParts) {
    this.socketPath = join(cm.opts.cacheDir, CONTROL_SOCKET)
  }

  async listen (): Promise<void> {
    await rm(this.socketPath, { force: true })
    const server = createServer(socket => { new RpcConnection(socket, (op, args, ctx) => this.onRequest(op, args, ctx.token)) })
    this.server = server
    await new Promise<void>((res, rej) => { server.once('error', rej); server.listen(this.socketPath, () => res()) })
  }

  async close (): Promise<void> {
    await new Promise<void>(res => this.server ? this.server.close(() => res()) : res())
    await rm(this.socketPath, { force: true })
  }

  private inMount (p: string): string {
    return toMountPath(this.mountDir, p)
  }

  /** One handler a request, given its checked arguments. */
  readonly handlers = {
    status: () => statusReport(this.cm, this.mountDir),
    servers: () => [...this.cm.cells.values()].map(c => ({ cell: c.name, servers: c.servers })),
    /** The cells' CAs this cache manager trusts (`afs` commands that talk to a server directly trust them too), and its mount (where a user's tokens are). */
    trust: () => ({ ca: [this.cm.opts.trust.ca].flat(), mount: this.mountDir }),
    flush: async (a: Parsed<'flush'>) => await this.onFlush(a.path),
    whereis: async (a: Parsed<'whereis'>) => await this.onWhereis(a.path),
    getacl: async (a: Parsed<'getacl'>) => await this.onGetAcl(a.path),
    setacl: async (a: Parsed<'setacl'>) => await this.onSetAcl(a.path, a.acl),
    lsmount: async (a: Parsed<'lsmount'>) => await this.onLsmount(a.path),
    mkmount: async (a: Parsed<'mkmount'>) => { await this.vfs.mkmount(this.inMount(a.path), a.volume, { uid: 0, gid: 0, pid: 0 }); return {} },
    listquota: async (a: Parsed<'listquota'>) => await this.onListquota(a.path),
    disconnect: (a: Parsed<'disconnect'>) => { this.cm.connectivity.disconnect(a.writeBack, a.ageMs); return {} },
    reconnect: () => { this.cm.connectivity.reconnect(); return {} },
    sync: async (a: Parsed<'sync'>) => await this.cm.connectivity.sync(a.waitMs),
    repairList: () => this.cm.cml.conflicts().map(c => ({ ...c, fullPath: this.outOfMount(c.path) })),
    repairShow: async (a: Parsed<'repairShow'>) => await this.onRepairShow(a.ref),
    repairResolve: async (a: Parsed<'repairResolve'>) => await this.onRepairResolve(a),
    repairHistory: () => this.cm.cml.history().map(r => this.resolutionView(r)),
    replicaConflicts: async () => (await this.cm.replicas.list()).map(c => ({ ...c, fullPath: this.outOfMount(c.path) })),
    inReplicaConflict: async (a: Parsed<'inReplicaConflict'>) => ({ conflict: (await this.vfs.resolveObject(this.inMount(a.path), false)).obj.status.conflict === true }),
    replicaShow: async (a: Parsed<'replicaShow'>) => {
      const { cell, obj } = await this.vfs.resolveObject(this.inMount(a.path), false)
      const c = await this.cm.replicas.show(cell, obj)
      return { ...c, fullPath: this.outOfMount(c.path) }
    },
    repairReplica: async (a: Parsed<'repairReplica'>) => {
      const { cell, obj } = await this.vfs.resolveObject(this.inMount(a.path), false)
      if (a.keep !== undefined) await this.cm.replicas.keep(cell, obj, a.keep)
      else if (a.merge !== undefined) await this.cm.replicas.merge(cell, obj, a.merge)
      else throw invalid('a server/server repair keeps a member\'s version or takes a merged file')
      return { path: a.path, kept: a.keep ?? null, merged: a.merge ?? null }
    },
    repairUndo: async (a: Parsed<'repairUndo'>) => { const c = await this.cm.repairer.undo(a.ref); return { ...c, fullPath: this.outOfMount(c.path) } },
    resolverAdd: async (a: Parsed<'resolverAdd'>) => { await this.cm.resolvers.add({ ...a, pattern: this.patternInCell(a.pattern) }); return {} },
    resolverRemove: async (a: Parsed<'resolverRemove'>) => ({ removed: await this.cm.resolvers.remove(this.patternInCell(a.pattern)) }),
    resolverList: () => this.cm.resolvers.all(),
    hoardAdd: async (a: Parsed<'hoardAdd'>) => { await this.hoard.db.add({ path: this.inMount(a.path), ...parsePriority(a.priority), source: CLI_SOURCE }); return {} },
    hoardRemove: async (a: Parsed<'hoardRemove'>) => ({ removed: await this.hoard.db.remove(this.inMount(a.path)) }),
    hoardList: () => ({ entries: this.hoard.db.list().map(e => ({ ...e, path: this.outOfMount(e.path) })), profileErrors: [...this.hoard.profiles.errors.values()] }),
    hoardClear: async () => { await this.hoard.db.clear(); return {} },
    hoardLoad: async (a: Parsed<'hoardLoad'>) => await this.onHoardLoad(a),
    hoardWalk: async () => await this.hoard.walker.walk(),
    hoardProgress: () => ({ progress: this.hoard.walker.progress, last: this.hoard.walker.last }),
    hoardCancel: () => { this.hoard.walker.cancel(); return {} },
    hoardVerify: async () => (await this.hoard.walker.verify()).map(f => ({ ...f, path: this.outOfMount(f.path) })),
    hoardSuggest: () => [...this.cm.objects.misses.values()].sort((a, b) => b.count - a.count).map(m => `add ${this.outOfMount(m.path)} ${DEFAULT_HOARD_PRIORITY}`),
  } satisfies { [O in ControlOp]: (a: Parsed<O>) => unknown }

  /** A request runs as the caller: with the tokens it came with (`afs` reads them from the caller's own token file), or as system:anyuser. */
  private async onRequest (op: string, args: unknown, token: string | null): Promise<unknown> {
    if (!Object.hasOwn(controlRequests, op)) throw badRequest(`unknown control request ${op}`)
    const o = op as ControlOp
    const handler = this.handlers[o] as (a: unknown) => unknown
    return await actingWith(callerTokens(token), async () => await handler(parse(controlRequests[o], args)))
  }

  /** A resolver's path pattern as the user gives it (under the mount) → as conflicts know paths (from the cell down). */
  private patternInCell (pattern: string): string {
    const under = this.mountDir.endsWith('/') ? this.mountDir : `${this.mountDir}/`
    return pattern.startsWith(under) ? pattern.slice(under.length - 1) : pattern
  }

  /** A conflict by id, or by a path under the mount. */
  private conflictAt (ref: string) {
    return this.cm.repairer.find(isAbsolute(ref) ? this.inMount(ref) : ref)
  }

  /** An open conflict, or a resolved one from the history by id (to inspect what a resolver did). */
  private async onRepairShow (ref: string) {
    const resolved = this.cm.cml.conflict(ref) ? undefined : this.cm.repairer.resolution(ref)
    const c = resolved?.conflict ?? this.conflictAt(ref)
    const merge = await this.cm.repairer.mergePreview(c)
    const entries = resolved ? null : await this.cm.repairer.entries(c).catch(() => null)
    const resolution = resolved && this.resolutionView(resolved)
    return { ...c, fullPath: this.outOfMount(c.path), meaning: KIND_MEANING[c.kind], mergeAuto: merge.ok ? { ok: true as const } : merge, entries, resolution }
  }

  private async onRepairResolve (a: Parsed<'repairResolve'>) {
    const c = this.conflictAt(a.ref)
    let choice: Choice
    if (a.discardLocal) choice = { discardLocal: true }
    else if (a.mergeAuto) choice = { mergeAuto: true }
    else if (a.merge) choice = { merge: a.merge }
    else if (a.keep) choice = { keep: a.keep, as: a.as }
    else throw invalid('resolve needs --keep local|server|both, --merge FILE or --merge-auto')
    return this.resolutionView(await this.cm.repairer.resolve(c, choice))
  }

  /** A resolution with the paths as the user sees them. */
  private resolutionView (r: Resolution) {
    return { ...r, fullPath: this.outOfMount(r.path), result: r.result && { ...r.result, fullPath: this.outOfMount(r.result.path) } }
  }

  private outOfMount (p: string): string {
    return this.mountDir + (p.startsWith('/') ? p : `/${p}`)
  }

  /** `afs hoard load FILE`: a profile applied once, into the CLI's entries; all or nothing. */
  private async onHoardLoad (a: { text: string, name: string }) {
    let lines
    try { lines = parseProfile(a.text, a.name, p => this.inMount(p)) } catch (err) { throw invalid((err as Error).message) }
    for (const l of lines) {
      if (l.op === 'add') await this.hoard.db.add({ path: l.path, priority: l.priority, expansion: l.expansion, source: CLI_SOURCE })
      else await this.hoard.db.remove(l.path)
    }
    void this.hoard.walker.walk()
    return { applied: lines.length }
  }

  private async onFlush (path: string) {
    const { obj } = await this.vfs.resolveObject(this.inMount(path))
    obj.cbExpiresAt = 0
    if (obj.status.type === 'dir') dropListing(obj)
    await this.cm.space.evict(obj)
    // An open or unsaved file keeps its data (a close's release may still be on its way).
    return { flushed: fidKey(obj.status.fid), evicted: obj.cachedVersion === null }
  }

  private async onWhereis (path: string) {
    const { cell, obj } = await this.vfs.resolveObject(this.inMount(path))
    const v = await cell.volumeById(obj.status.fid.volume)
    return { cell: cell.name, volume: v.name, fid: fidKey(obj.status.fid), servers: v.entry.servers }
  }

  /** A directory's ACL as its server has it now (asked as the caller). */
  private async onGetAcl (path: string) {
    const { cell, obj } = await this.vfs.resolveObject(this.inMount(path))
    if (obj.status.type !== 'dir') throw invalid(`${path} is not a directory: ACLs are directories'`)
    const { status, access } = await cell.route(obj.status.fid.volume).call('fetchStatus', { fid: obj.status.fid })
    return { cell: cell.name, fid: fidKey(status.fid), acl: status.acl ?? null, access: access ?? null }
  }

  /** Sets a directory's ACL (as the caller: the administer right on it needed), on every member that answers. */
  private async onSetAcl (path: string, acl: Acl) {
    const { cell, obj } = await this.vfs.resolveObject(this.inMount(path))
    if (obj.status.type !== 'dir') throw invalid(`${path} is not a directory: ACLs are directories'`)
    const r = await cell.route(obj.status.fid.volume).call('storeAcl', { fid: obj.status.fid, acl })
    obj.cbExpiresAt = 0 // (its status here is from before: fetched again when next used)
    return { cell: cell.name, fid: fidKey(r.status.fid), acl: r.status.acl ?? null }
  }

  private async onLsmount (path: string) {
    const { obj } = await this.vfs.resolveObject(this.inMount(path), false)
    if (obj.status.type !== 'mount') throw invalid(`${path} is not a mount point`)
    return { path, volume: obj.status.target }
  }

  private async onListquota (path: string) {
    const { cell, obj } = await this.vfs.resolveObject(this.inMount(path))
    const v = await cell.volumeById(obj.status.fid.volume)
    const s = await cell.route(v.id).call('statfs', { volume: v.id })
    return { volume: v.name, quota: s.quota, used: s.usage, files: s.files, partitionFree: s.diskFree }
  }
}

function parse (schema: z.ZodType, args: unknown): unknown {
  const r = schema.safeParse(args)
  if (!r.success) throw badRequest(r.error.issues.map(i => `${i.path.join('.')} ${i.message}`).join('; '))
  return r.data
}
