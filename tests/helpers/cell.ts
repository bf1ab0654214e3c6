// Test harness: real `afs server` and `afs client` processes on ephemeral loopback
// ports with FUSE mounts in temp dirs. Waits for each one's readiness line (never a
// sleep) and tears down last-in-first-out: clients unmount before servers stop.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, readFile } from 'node:fs/promises'
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { RpcConnection, PROTOCOL_VERSION, badRequest, connectTo } from '@afs-ts/common'
import { initCellCa } from '@afs-ts/common/cell-ca'

export const ROOT = resolve(import.meta.dirname, '..', '..')
export const AFS = join(ROOT, 'tools', 'bin', 'afs.js')

export interface Daemon {
  proc: ChildProcess
  ready: Record<string, unknown>
  stderr: () => string
  stop (signal?: NodeJS.Signals): Promise<number | null>
}

export async function tempDir (prefix = 'afs-test-'): Promise<string> {
  return await mkdtemp(join(tmpdir(), prefix))
}

/** Starts `afs ARGS…` and resolves when it prints its JSON readiness line. */
export async function startDaemon (args: string[], env: Record<string, string> = {}): Promise<Daemon> {
  const nodeArgs = (env.AFS_NODE_ARGS ?? process.env.AFS_NODE_ARGS)?.split(' ').filter(Boolean) ?? []
  const proc = spawn(process.execPath, [...nodeArgs, AFS, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, AFS_LOG: 'info', AFS_LOG_FORMAT: 'text', ...env } })
  let err = ''
  proc.stderr!.on('data', d => { err += d; if (err.length > 200_000) err = err.slice(-100_000) })
  const exited = new Promise<number | null>(res => proc.once('exit', code => res(code)))
  const lines = createInterface({ input: proc.stdout! })
  const ready = await new Promise<Record<string, unknown>>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`afs ${args[0]} not ready in 30 s: ${err}`)), 30_000)
    lines.on('line', l => { try { const v = JSON.parse(l); if (v.ready) { clearTimeout(timer); res(v) } } catch { /* other output */ } })
    void exited.then(code => { clearTimeout(timer); rej(new Error(`afs ${args[0]} exited (${code}) before ready: ${err}`)) })
  })
  return {
    proc,
    ready,
    stderr: () => err,
    async stop (signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode
      proc.kill(signal)
      const t = setTimeout(() => proc.kill('SIGKILL'), 20_000)
      const code = await exited
      clearTimeout(t)
      return code
    },
  }
}

export interface Server extends Daemon { address: string, dataDir: string }
export interface Client extends Daemon { mount: string, cache: string, cellPath: string }

/**
 * Each cell's TLS directory (its CA, with the key that issues servers' certificates), by
 * what its servers join through: a first server's address (its DATA/tls), or an etcd
 * URL (one made here). The CA file that commands naming a server trust, by its address.
 */
const cellTls = new Map<string, string>()
const caOf = new Map<string, string>()
/** Each server's data directory, by address: commands naming it act as the cell's administrator (--localauth). */
const dataOf = new Map<string, string>()

/** The TLS directory of the cell a server with `extra` arguments joins, if it joins one. */
async function joinedTls (extra: string[]): Promise<string | undefined> {
  const i = extra.indexOf('--vldb')
  if (i < 0 || extra.includes('--tls')) return undefined
  const via = extra[i + 1]
  let dir = cellTls.get(via)
  if (!dir && via.startsWith('etcd://')) {
    dir = await tempDir('afs-tls-')
    await initCellCa(dir, 'test')
    cellTls.set(via, dir)
  }
  return dir
}

/** The CA file a server at `address` started here is trusted by. */
export function caFileOf (address: string): string | undefined {
  return caOf.get(address)
}

/**
 * `extra`: more `afs server` arguments (`--vldb HOST:PORT` for a cell's second server:
 * it is given the cell's TLS directory, as an admin would with --tls).
 */
export async function startServer (dataDir?: string, cell = 'test', listen = '127.0.0.1:0', extra: string[] = [], env: Record<string, string> = {}): Promise<Server> {
  const dir = dataDir ?? await tempDir('afs-srv-')
  const tls = await joinedTls(extra)
  const d = await startDaemon(['server', '--data', dir, '--listen', listen, '--cell', cell, ...extra, ...tls ? ['--tls', tls] : []], env)
  const address = d.ready.address as string
  const t = tls ?? (extra.includes('--tls') ? extra[extra.indexOf('--tls') + 1] : join(dir, 'tls'))
  if (!extra.includes('--vldb')) cellTls.set(address, t)
  caOf.set(address, join(t, 'ca.pem'))
  dataOf.set(address, dir)
  return { ...d, address, dataDir: dir }
}

/** `extra`: more `afs client` arguments. */
/** `login` false: the client's user gets no token (it acts as system:anyuser). */
export async function startClient (servers: string[], opts: { mount?: string, cache?: string, cacheSize?: string, profiles?: string, hoardInterval?: number, env?: Record<string, string>, extra?: string[], login?: boolean } = {}): Promise<Client> {
  const mount = opts.mount ?? await tempDir('afs-mnt-')
  const cache = opts.cache ?? await tempDir('afs-cache-')
  const args = ['client', ...servers.flatMap(s => ['--server', s]), '--mount', mount, '--cache', cache]
  // Each cell's CA (one --server per cell).
  if (!opts.extra?.includes('--ca')) for (const ca of new Set(servers.flatMap(s => caFileOf(s) ?? []))) args.push('--ca', ca)
  if (opts.cacheSize) args.push('--cache-size', opts.cacheSize)
  // Never the user's own profiles: a directory of the test's (inside its cache unless given).
  args.push('--profiles', opts.profiles ?? join(cache, 'profiles'))
  if (opts.hoardInterval) args.push('--hoard-interval', String(opts.hoardInterval))
  args.push(...opts.extra ?? [])
  const d = await startDaemon(args, opts.env)
  const cells = d.ready.cells as string[]
  if (opts.login !== false) for (const s of servers) await loginAsAdmin(s, cache)
  return { ...d, mount: d.ready.mount as string, cache, cellPath: join(d.ready.mount as string, cells[0]) }
}

/**
 * Gives the test's user (this process's uid) a token as the cell's admin, as `afs up`
 * does, when the cell's admin password is known here and its server answers (a client
 * started while its servers are away keeps the token it held before, in its cache).
 */
async function loginAsAdmin (server: string, cache: string): Promise<void> {
  const ca = caOf.get(server)
  const pw = [...dataOf].filter(([a]) => caOf.get(a) === ca).map(([, dir]) => join(dir, 'admin.password')).find(f => existsSync(f))
  if (!pw) return
  await new Promise<void>(resolve => {
    const p = spawn(process.execPath, [AFS, 'login', 'admin', '--password-file', pw, '--cache', cache, '--server', server], { stdio: 'ignore', env: { ...process.env, AFS_CA: ca ?? '' } })
    const timer = setTimeout(() => p.kill('SIGKILL'), 10_000)
    p.on('close', () => { clearTimeout(timer); resolve() })
  })
}

/**
 * Runs `afs ARGS…` to completion. A command that names a server started here trusts that
 * server's cell CA and acts as the cell's administrator (--localauth with its data
 * directory), unless `env` says otherwise (AFS_LOCALAUTH: '' to act as the caller).
 */
export function afs (args: string[], opts: { cwd?: string, env?: Record<string, string>, input?: string } = {}): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return new Promise(res => {
    const server = args.find(a => caOf.has(a))
    const known = server ? { AFS_CA: caOf.get(server)!, AFS_LOCALAUTH: dataOf.get(server)! } : {}
    const p = spawn(process.execPath, [AFS, ...args], { stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], cwd: opts.cwd, env: { ...process.env, ...known, ...opts.env } })
    if (opts.input !== undefined) p.stdin!.end(opts.input)
    let stdout = ''
    let stderr = ''
    p.stdout!.on('data', d => { stdout += d })
    p.stderr!.on('data', d => { stderr += d })
    p.on('close', code => res({ code, stdout, stderr })) // close, not exit: after the output is all read
  })
}

/** Runs `afs ARGS…` and returns its output; throws with its error when it fails. */
export async function afsOk (args: string[]): Promise<string> {
  const r = await afs(args)
  if (r.code !== 0) throw new Error(`afs ${args.join(' ')}: ${r.stderr}`)
  return r.stdout
}

/** Waits until every volume of `c` is connected with an empty log (its changes are on the servers). */
export async function drained (c: Client, ms = 30_000): Promise<boolean> {
  return await eventually(async () => {
    const s = await status(c) as unknown as { volumes: Array<{ state: string, cml: { records: number } }> }
    return s.volumes.every(v => v.state === 'connected' && v.cml.records === 0)
  }, ms)
}

export async function status (c: Client): Promise<{ counters: Record<string, number>, [k: string]: unknown }> {
  const r = await afs(['status', '--cache', c.cache, '--json'])
  if (r.code !== 0) throw new Error(`afs status failed: ${r.stderr}`)
  return JSON.parse(r.stdout)
}

export async function isMounted (dir: string): Promise<boolean> {
  const mounts = await readFile('/proc/mounts', 'utf8')
  return mounts.split('\n').some(l => l.split(' ')[1] === dir)
}

/** Last-in-first-out teardown that runs even when a test fails. */
export class Stack {
  private readonly items: Array<() => Promise<unknown>> = []
  push (fn: () => Promise<unknown>): void { this.items.push(fn) }
  defer (path: string): void { this.push(() => rm(path, { recursive: true, force: true })) }
  async unwind (): Promise<void> {
    while (this.items.length) {
      const fn = this.items.pop()!
      await fn().catch(err => console.error('teardown:', err))
    }
  }
}

/** A client torn down by `stack`: unmounted (a leftover mount fails the run), then its directories removed. */
export async function addClient (stack: Stack, servers: string[], opts: Parameters<typeof startClient>[1] = {}): Promise<Client> {
  const c = await startClient(servers, opts)
  if (!opts.cache) stack.defer(c.cache)
  if (!opts.mount) stack.push(async () => { if (!await isMounted(c.mount)) await rm(c.mount, { recursive: true, force: true }) })
  stack.push(async () => { await c.stop(); if (await isMounted(c.mount)) throw new Error(`${c.mount} still mounted`) })
  return c
}

/**
 * A cell with one server and `n` clients, torn down by `stack`. `open`: its root
 * directory's ACL lets everyone do everything (for tests of other local users, and of
 * raw protocol clients, that are not about access).
 */
export async function cell (stack: Stack, n = 1, clientOpts: Parameters<typeof startClient>[1] = {}, open = false) {
  const server = await startServer()
  stack.defer(server.dataDir)
  stack.push(() => server.stop())
  if (open) await openRoot(server)
  const clients: Client[] = []
  for (let i = 0; i < n; i++) clients.push(await addClient(stack, [server.address], clientOpts))
  return { server, clients }
}

/**
 * A cell of `n` servers torn down by `stack`: the first keeps the location database and
 * the root volume, the others join it (`--vldb`). A server a test froze is woken first.
 * `extra`: more `afs server` arguments for each.
 */
export async function servers (stack: Stack, n: number, extra: string[] = []): Promise<Server[]> {
  const out: Server[] = []
  for (let i = 0; i < n; i++) {
    const s = await startServer(undefined, 'test', '127.0.0.1:0', [...i === 0 ? [] : ['--vldb', out[0].address], ...extra])
    stack.defer(s.dataDir)
    stack.push(async () => { s.proc.kill('SIGCONT'); await s.stop() })
    out.push(s)
  }
  return out
}

/** Waits until `check` holds (polling every 20 ms), failing after `ms`. */
export async function eventually (check: () => boolean | Promise<boolean>, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await check()) return true
    await new Promise(r => setTimeout(r, 20))
  }
  return false
}

/** A raw protocol connection to a server, as a cache manager would open one. */
export async function rawConnection (address: string): Promise<RpcConnection> {
  const ca = caFileOf(address)
  if (!ca) throw new Error(`no server started here at ${address}`)
  // (Generous: a server busy with resolution under a loaded test run may take a while over a handshake.)
  const conn = new RpcConnection(await connectTo(address, 20_000, { ca: await readFile(ca, 'utf8') }))
  // Its statuses come with callback promises: it takes their breaks, as a client does (a
  // server drops a client that refuses one, and closes its connection).
  conn.handler = async op => { if (op === 'callbackBreak') return {}; throw badRequest(`a test connection takes no ${op}`) }
  await conn.request('hello', { protocol: PROTOCOL_VERSION, clientId: `test-${process.pid}-${Math.random()}`, hostname: 'test' })
  return conn
}

/** Gives the cell's root directory the ACL `system:anyuser rlidwka`, as its administrator (a token made with the server's key). */
export async function openRoot (server: Server): Promise<void> {
  const { readTokenKey } = await import('@afs-ts/common/cell-ca')
  const { signToken } = await import('@afs-ts/protection')
  const token = (await signToken(await readTokenKey(join(server.dataDir, 'tls')), { user: '<localauth>', uid: 0, epoch: 0, cell: 'test' })).token
  const conn = await rawConnection(server.address)
  try {
    const root = await conn.request('vlGet', { name: 'root.cell' }) as { root: { volume: number, vnode: number, unique: number } }
    await conn.request('storeAcl', { fid: root.root, acl: { pos: [[-101, 127]], neg: [] } }, { token })
  } finally { conn.close() }
}

/** A file holding `text` (one line) that every local user may read (a password, a CA copy, for tests that run commands as other users). */
export function readableFile (text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'afs-shared-'))
  chmodSync(dir, 0o755)
  const f = join(dir, 'f')
  writeFileSync(f, text + '\n', { mode: 0o644 })
  return f
}

/** `afs ARGS…` as the caller: with the tokens its cache manager holds for this user, never --localauth. */
export async function afsAsCaller (args: string[], input?: string): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return await afs(args, { env: { AFS_LOCALAUTH: '' }, input })
}
