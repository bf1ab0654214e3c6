// The control socket (`<cache>/control.sock`): how `afs status`, `afs fs …` and other
// tools talk to a running cache manager. Same framing as the server protocol.
import { createServer, type Server } from 'node:net'
import { rm } from 'node:fs/promises'
import { join, relative, isAbsolute, resolve, sep } from 'node:path'
import { z } from 'zod'
import { RpcConnection, badRequest, invalid, fidKey } from '@afs-ts/common'
import type { CacheManager } from './cache-manager.ts'
import type { Vfs } from './vfs.ts'
import { statusReport } from './status.ts'
import { CLI_SOURCE, DEFAULT_HOARD_PRIORITY, parsePriority, type HoardDb } from './hoard/hoard-db.ts'
import type { HoardWalker } from './hoard/walker.ts'
import type { ProfileDaemon } from './hoard/profile-daemon.ts'
import { parseProfile } from './hoard/profile.ts'
import { KIND_MEANING, type Resolution } from './repair/conflict.ts'
import { dropListing } from './fs-object.ts'
import type { Choice } from './repair/repairer.ts'

export const CONTROL_SOCKET = 'control.sock'

/** A path as the user gave it (absolute, under the mount) → the mount-relative path the Vfs takes. */
export function toMountPath (mountDir: string, p: string): string {
  const abs = isAbsolute(p) ? p : resolve(p)
  const rel = relative(mountDir, abs)
  if (rel.startsWith('..') || isAbsolute(rel)) throw invalid(`${p} is not under the mount ${mountDir}`)
  return '/' + rel.split(sep).filter(Boolean).join('/')
}

/** Hoarding's parts, for the hoard requests. */
export interface HoardParts { db: HoardDb, walker: HoardWalker, profiles: ProfileDaemon }

const pathArgs = z.object({ path: z.string().min(1).max(4096) })
const disconnectArgs = z.object({ writeBack: z.boolean(), ageMs: z.number().int().min(0).max(86_400_000).optional() })
const syncArgs = z.object({ waitMs: z.number().int().min(0).max(86_400_000) })
const hoardAddArgs = z.object({ path: z.string().min(1).max(4096), priority: z.string().max(16).optional() })
const hoardLoadArgs = z.object({ text: z.string().max(4 * 1024 * 1024), name: z.string().max(255) })
const refArgs = z.object({ ref: z.string().min(1).max(4096) })
const resolveArgs = z.object({
  ref: z.string().min(1).max(4096),
  keep: z.enum(['local', 'server', 'both']).optional(),
  as: z.string().min(1).max(255).optional(),
  merge: z.string().min(1).max(4096).optional(),
  mergeAuto: z.boolean().optional(),
  discardLocal: z.boolean().optional(),
})
const resolverArgs = z.object({ pattern: z.string().min(1).max(1024), command: z.string().min(1).max(4096), kinds: z.array(z.string().max(32)).max(8).optional() })
const patternArgs = z.object({ pattern: z.string().min(1).max(1024) })
const mkmountArgs = z.object({ path: z.string().min(1).max(4096), volume: z.string().min(1).max(63) })

export class ControlServer {
  private server: Server | null = null
  readonly socketPath: string

  constructor (private readonly cm: CacheManager, private readonly vfs: Vfs, private readonly mountDir: string, private readonly hoard: HoardParts) {
    this.socketPath = join(cm.opts.cacheDir, CONTROL_SOCKET)
  }

  async listen (): Promise<void> {
    await rm(this.socketPath, { force: true })
    const server = createServer(socket => { new RpcConnection(socket, (op, args) => this.onRequest(op, args)) })
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

  private async onRequest (op: string, args: unknown): Promise<unknown> {
    switch (op) {
      case 'status': return statusReport(this.cm, this.mountDir)
      case 'servers': return [...this.cm.cells.values()].map(c => ({ cell: c.name, servers: c.servers }))
      case 'flush': return await this.onFlush(parse(pathArgs, args).path)
      case 'whereis': return await this.onWhereis(parse(pathArgs, args).path)
      case 'lsmount': return await this.onLsmount(parse(pathArgs, args).path)
      case 'mkmount': { const a = parse(mkmountArgs, args); await this.vfs.mkmount(this.inMount(a.path), a.volume, { uid: 0, gid: 0, pid: 0 }); return {} }
      case 'listquota': return await this.onListquota(parse(pathArgs, args).path)
      case 'disconnect': { const a = parse(disconnectArgs, args); this.cm.connectivity.disconnect(a.writeBack, a.ageMs); return {} }
      case 'reconnect': this.cm.connectivity.reconnect(); return {}
      case 'sync': return await this.cm.connectivity.sync(parse(syncArgs, args).waitMs)
      case 'repairList': return this.cm.cml.conflicts().map(c => ({ ...c, fullPath: this.outOfMount(c.path) }))
      case 'repairShow': return await this.onRepairShow(parse(refArgs, args).ref)
      case 'repairResolve': return await this.onRepairResolve(parse(resolveArgs, args))
      case 'repairHistory': return this.cm.cml.history().map(r => this.resolutionView(r))
      case 'repairUndo': { const c = await this.cm.repairer.undo(parse(refArgs, args).ref); return { ...c, fullPath: this.outOfMount(c.path) } }
      case 'resolverAdd': { const a = parse(resolverArgs, args); await this.cm.resolvers.add({ ...a, pattern: this.patternInCell(a.pattern) }); return {} }
      case 'resolverRemove': return { removed: await this.cm.resolvers.remove(this.patternInCell(parse(patternArgs, args).pattern)) }
      case 'resolverList': return this.cm.resolvers.all()
      case 'hoardAdd': { const a = parse(hoardAddArgs, args); await this.hoard.db.add({ path: this.inMount(a.path), ...parsePriority(a.priority), source: CLI_SOURCE }); return {} }
      case 'hoardRemove': return { removed: await this.hoard.db.remove(this.inMount(parse(pathArgs, args).path)) }
      case 'hoardList': return { entries: this.hoard.db.list().map(e => ({ ...e, path: this.outOfMount(e.path) })), profileErrors: [...this.hoard.profiles.errors.values()] }
      case 'hoardClear': await this.hoard.db.clear(); return {}
      case 'hoardLoad': return await this.onHoardLoad(parse(hoardLoadArgs, args))
      case 'hoardWalk': return await this.hoard.walker.walk()
      case 'hoardProgress': return { progress: this.hoard.walker.progress, last: this.hoard.walker.last }
      case 'hoardCancel': this.hoard.walker.cancel(); return {}
      case 'hoardVerify': return (await this.hoard.walker.verify()).map(f => ({ ...f, path: this.outOfMount(f.path) }))
      case 'hoardSuggest': return [...this.cm.objects.misses.values()].sort((a, b) => b.count - a.count).map(m => `add ${this.outOfMount(m.path)} ${DEFAULT_HOARD_PRIORITY}`)
      default: throw badRequest(`unknown control request ${op}`)
    }
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
    return { ...c, fullPath: this.outOfMount(c.path), meaning: KIND_MEANING[c.kind], mergeAuto: merge.ok ? { ok: true } : merge, entries, resolution }
  }

  private async onRepairResolve (a: z.infer<typeof resolveArgs>) {
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

function parse<T> (schema: z.ZodType<T>, args: unknown): T {
  const r = schema.safeParse(args)
  if (!r.success) throw badRequest(r.error.issues.map(i => `${i.path.join('.')} ${i.message}`).join('; '))
  return r.data
}
