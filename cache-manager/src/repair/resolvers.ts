// Resolvers: commands a user registers for a path pattern (like git's merge drivers)
// that resolve new conflicts by themselves. Responsibilities:
//   1. keep the registered resolvers in `<cache>/resolvers.json` (written atomically)
//   2. after a reintegration found conflicts, run the first matching resolver once on
//      each new one: it gets the local, server and ancestor files and writes the
//      result; exit 0 with a result resolves the conflict through the server as a
//      merge, recorded in the history with the resolver's name (so it can be undone)
//
// A command is run by /bin/sh with %L %S %B %O %P replaced by the (quoted) local,
// server, ancestor and output files and the path; the same are in AFS_LOCAL,
// AFS_SERVER, AFS_BASE, AFS_OUTPUT and AFS_PATH. It runs as the owner of the local
// version when the cache manager runs as root, for at most a minute. `merge-auto` is
// the built-in three-way text merge.
import { spawn } from 'node:child_process'
import { chown, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import picomatch from 'picomatch'
import { z } from 'zod'
import { invalid, makeLog } from '@afs-ts/common'
import type { ClientModifyLog } from '../cml.ts'
import type { ConflictRecord } from './conflict.ts'
import type { Repairer } from './repairer.ts'

const log = makeLog('resolvers')
const RESOLVER_TIMEOUT_MS = 60_000
export const BUILTIN_MERGE = 'merge-auto'

const resolverSchema = z.object({
  pattern: z.string().min(1).max(1024),
  command: z.string().min(1).max(4096),
  kinds: z.array(z.string()).optional(),
})
export type Resolver = z.infer<typeof resolverSchema>

/** What running resolvers needs of the cache manager. */
export interface ResolversDeps {
  readonly cml: Pick<ClientModifyLog, 'conflicts'>
  readonly opts: { cacheDir: string }
}

export class Resolvers {
  private readonly file: string
  private list: Resolver[] = []
  /** Conflicts a resolver has been tried on (each gets one try). */
  private readonly tried = new Set<string>()

  constructor (private readonly d: ResolversDeps, private readonly repairer: Repairer) {
    this.file = join(d.opts.cacheDir, 'resolvers.json')
  }

  async load (): Promise<void> {
    // Conflicts already open when the cache manager starts were offered to the resolvers before.
    for (const c of this.d.cml.conflicts()) this.tried.add(c.id)
    let text: string
    try { text = await readFile(this.file, 'utf8') } catch { return }
    this.list = []
    let problem: string
    try {
      const r = z.array(resolverSchema).safeParse(JSON.parse(text))
      if (r.success) { this.list = r.data; return }
      problem = r.error.issues.map(i => `${i.path.join('.')}: ${i.message}`).join('; ')
    } catch (err) { problem = (err as Error).message }
    log.error(`${this.file} is not a list of resolvers; none will run (${problem})`)
  }

  all (): Resolver[] {
    return [...this.list]
  }

  async add (r: Resolver): Promise<void> {
    try { picomatch(r.pattern) } catch (err) { throw invalid(`bad pattern ${r.pattern}: ${(err as Error).message}`) }
    this.list = [...this.list.filter(x => x.pattern !== r.pattern), r]
    await this.save()
  }

  async remove (pattern: string): Promise<boolean> {
    const before = this.list.length
    this.list = this.list.filter(x => x.pattern !== pattern)
    await this.save()
    return this.list.length < before
  }

  private async save (): Promise<void> {
    const tmp = `${this.file}.tmp`
    await writeFile(tmp, JSON.stringify(this.list, null, 2) + '\n')
    await rename(tmp, this.file)
  }

  /** The resolver for a conflict: the first whose pattern matches its path (or, without a slash, its name). */
  match (c: ConflictRecord): Resolver | null {
    for (const r of this.list) {
      if (r.kinds && !r.kinds.includes(c.kind)) continue
      const subject = r.pattern.includes('/') ? c.path : (c.name ?? '')
      if (picomatch.isMatch(subject, r.pattern, { dot: true })) return r
    }
    return null
  }

  /** Offers every new open conflict to its resolver. */
  async run (): Promise<void> {
    for (const c of this.d.cml.conflicts()) {
      if (this.tried.has(c.id)) continue
      this.tried.add(c.id)
      const r = this.match(c)
      if (r) await this.apply(r, c).catch(err => log.warn(`resolver for ${r.pattern} on ${c.path}: ${(err as Error).message}`))
    }
  }

  private async apply (r: Resolver, c: ConflictRecord): Promise<void> {
    const by = `resolver ${r.pattern}`
    if (r.command === BUILTIN_MERGE) { await this.repairer.resolve(c, { mergeAuto: true }, by); return }
    // The command runs as the owner of the local version (when the cache manager is root), writing into a folder of its own.
    const owner = process.getuid?.() === 0 && c.local.uid !== undefined ? { uid: c.local.uid, gid: c.local.gid ?? c.local.uid } : null
    const work = await mkdtemp(join(tmpdir(), 'afs-resolver-'))
    try {
      if (owner) await chown(work, owner.uid, owner.gid)
      const out = join(work, c.name ?? 'result')
      const files = { L: c.local.copy ?? '/dev/null', S: c.server.copy ?? '/dev/null', B: c.base?.copy ?? '/dev/null', O: out, P: c.path }
      const command = r.command.replace(/%([LSBOP%])/g, (_, k: string) => k === '%' ? '%' : shellQuote(files[k as keyof typeof files]))
      const env = { ...process.env, AFS_LOCAL: files.L, AFS_SERVER: files.S, AFS_BASE: files.B, AFS_OUTPUT: out, AFS_PATH: c.path, AFS_KIND: c.kind }
      const failed = await run(command, env, owner)
      if (failed) { log.warn(`resolver ${r.pattern} left ${c.path} in conflict: ${failed}`); return }
      try { await stat(out) } catch { log.warn(`resolver ${r.pattern} wrote no result for ${c.path} (%O): left in conflict`); return }
      await this.repairer.resolve(c, { merge: out }, by)
    } finally {
      await rm(work, { recursive: true, force: true })
    }
  }
}

/** Runs a resolver command; null when it succeeded, else why not. */
function run (command: string, env: NodeJS.ProcessEnv, owner: { uid: number, gid: number } | null): Promise<string | null> {
  return new Promise(resolve => {
    const child = spawn('/bin/sh', ['-c', command], { env, stdio: ['ignore', 'ignore', 'pipe'], ...(owner ?? {}) })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => { if (stderr.length < 2000) stderr += d.toString() })
    const timer = setTimeout(() => child.kill('SIGKILL'), RESOLVER_TIMEOUT_MS)
    child.on('error', err => { clearTimeout(timer); resolve(err.message) })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const why = signal ? `killed by ${signal}${signal === 'SIGKILL' ? ` (over ${RESOLVER_TIMEOUT_MS / 1000} s?)` : ''}` : code === 0 ? null : `exit ${code}`
      resolve(why && `${why}${stderr.trim() ? `: ${stderr.trim().slice(0, 500)}` : ''}`)
    })
  })
}

function shellQuote (s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}
