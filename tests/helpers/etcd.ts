// Real etcd processes for tests: one member or a cluster of three, on free loopback
// ports, with their data in temp dirs, stopped (and their data removed) by the stack.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { tempDir, type Stack } from './cell.ts'

export interface EtcdMember {
  name: string
  client: string
  proc: ChildProcess | null
  log: string
  stop (signal?: NodeJS.Signals): Promise<void>
  start (): Promise<void>
}

export interface EtcdCluster {
  members: EtcdMember[]
  /** etcd://HOST:PORT,… for `afs server --vldb`. */
  url: string
}

async function freePort (): Promise<number> {
  const s = createServer()
  s.listen(0, '127.0.0.1')
  await once(s, 'listening')
  const port = (s.address() as { port: number }).port
  await new Promise(resolve => s.close(resolve))
  return port
}

/** Starts an etcd cluster of `n` members (1 or 3) and waits until it answers. */
export async function startEtcd (stack: Stack, n = 1): Promise<EtcdCluster> {
  const dir = await tempDir('afs-etcd-')
  stack.defer(dir)
  const ports = await Promise.all(Array.from({ length: n }, async () => ({ client: await freePort(), peer: await freePort() })))
  const names = ports.map((_, i) => `m${i}`)
  const initial = ports.map((p, i) => `${names[i]}=http://127.0.0.1:${p.peer}`).join(',')
  const members: EtcdMember[] = ports.map((p, i) => {
    const m: EtcdMember = {
      name: names[i],
      client: `127.0.0.1:${p.client}`,
      proc: null,
      log: '',
      async start () {
        const proc = spawn('etcd', [
          '--name', names[i], '--data-dir', join(dir, names[i]),
          '--listen-client-urls', `http://127.0.0.1:${p.client}`, '--advertise-client-urls', `http://127.0.0.1:${p.client}`,
          '--listen-peer-urls', `http://127.0.0.1:${p.peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${p.peer}`,
          '--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', `afs-test-${ports[0].peer}`,
          '--heartbeat-interval', '50', '--election-timeout', '500', '--logger', 'zap', '--log-level', 'warn',
        ], { stdio: ['ignore', 'ignore', 'pipe'] })
        proc.stderr!.on('data', d => { m.log = (m.log + d).slice(-20_000) })
        m.proc = proc
      },
      async stop (signal = 'SIGTERM') {
        const proc = m.proc
        if (!proc || proc.exitCode !== null || proc.signalCode !== null) return
        const exited = once(proc, 'exit')
        proc.kill(signal)
        await exited
      },
    }
    return m
  })
  for (const m of members) {
    await m.start()
    stack.push(async () => { m.proc?.kill('SIGCONT'); await m.stop('SIGKILL') })
  }
  const url = `etcd://${members.map(m => m.client).join(',')}`
  await healthy(members)
  return { members, url }
}

/** Waits until every running member says it is healthy (a leader elected). */
export async function healthy (members: EtcdMember[], ms = 30_000): Promise<void> {
  const end = Date.now() + ms
  for (const m of members.filter(x => x.proc && x.proc.exitCode === null && x.proc.signalCode === null)) {
    for (;;) {
      const ok = await fetch(`http://${m.client}/health`, { signal: AbortSignal.timeout(2_000) }).then(r => r.ok, () => false)
      if (ok) break
      if (Date.now() > end) throw new Error(`etcd ${m.name} not healthy in ${ms} ms: ${m.log.slice(-2000)}`)
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  }
}
