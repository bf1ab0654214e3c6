// The location database, run by hand: `node --import tsx bench/location.ts [--move-mib 1024] [--lookups 20000]`
// (as root, with /dev/fuse and etcd installed). Location lookups per second that a
// server answers (from its etcd-watch-fed cache, beside the embedded database in the same
// run); a move of a volume of `--move-mib` MiB: how long it takes and how long updates wait
// during its final switch; the time from a server's SIGKILL to its leaving the live list.
import { openSync, writeSync, closeSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Stack, addClient, afsOk, rawConnection, startServer, type Server } from '../tests/helpers/cell.ts'
import { startEtcd } from '../tests/helpers/etcd.ts'
import { MiB } from './baselines.ts'

const { values } = parseArgs({ options: { 'move-mib': { type: 'string', default: '1024' }, lookups: { type: 'string', default: '20000' } } })
const MOVE_MIB = Number(values['move-mib'])
const LOOKUPS = Number(values.lookups)
const AT_ONCE = 64
const TTL_S = 3

async function lookupsPerSecond (server: Server, name: string): Promise<number> {
  const c = await rawConnection(server.address)
  try {
    let next = 0
    const started = process.hrtime.bigint()
    await Promise.all(Array.from({ length: AT_ONCE }, async () => {
      while (next++ < LOOKUPS) await c.request('vlGet', { name })
    }))
    return LOOKUPS / (Number(process.hrtime.bigint() - started) / 1e9)
  } finally { c.close() }
}

const stack = new Stack()
try {
  const etcd = await startEtcd(stack)
  const on: Server[] = []
  for (let i = 0; i < 3; i++) {
    const s = await startServer(undefined, 'bench', '127.0.0.1:0', ['--vldb', etcd.url, '--lease-ttl', String(TTL_S)])
    stack.defer(s.dataDir)
    stack.push(() => s.stop())
    on.push(s)
  }
  const embedded = await startServer(undefined, 'bench-embedded')
  stack.defer(embedded.dataDir)
  stack.push(() => embedded.stop())
  await afsOk(['vos', 'create', 'looked-up', '--server', on[0].address])
  await afsOk(['vos', 'create', 'looked-up', '--server', embedded.address])
  const viaEtcd = await lookupsPerSecond(on[1], 'looked-up')
  const viaEmbedded = await lookupsPerSecond(embedded, 'looked-up')
  console.log(`location lookups/s (${LOOKUPS}, ${AT_ONCE} at once): etcd cell, from a server's cache ${viaEtcd.toFixed(0)}; embedded database ${viaEmbedded.toFixed(0)} (${(viaEtcd / viaEmbedded).toFixed(2)}x)`)

  // A move: the volume filled through a client, then moved while the client keeps writing.
  await afsOk(['vos', 'create', 'moved', '--server', on[1].address])
  const a = await addClient(stack, [on[0].address], { cacheSize: '4G', env: { AFS_LOG: 'warn' } })
  await afsOk(['fs', 'mkmount', join(a.cellPath, 'moved'), 'moved', '--cache', a.cache])
  const chunk = Buffer.alloc(MiB, 0x61)
  for (let f = 0; f < Math.ceil(MOVE_MIB / 256); f++) {
    const fd = openSync(join(a.cellPath, 'moved', `part-${f}`), 'w')
    for (let i = 0; i < Math.min(256, MOVE_MIB - f * 256); i++) writeSync(fd, chunk)
    closeSync(fd)
  }
  const started = Date.now()
  await afsOk(['vos', 'move', 'moved', '--to', on[2].address, '--server', on[0].address])
  const took = (Date.now() - started) / 1000
  const line = on[1].stderr().split('\n').find(l => /moved to .* updates waited/.test(l)) ?? ''
  const waited = /updates waited (\d+) ms/.exec(line)?.[1] ?? '?'
  console.log(`move of a ${MOVE_MIB} MiB volume: ${took.toFixed(1)} s in all (${(MOVE_MIB / took).toFixed(0)} MB/s); updates waited ${waited} ms during the final switch`)

  // A server's death, to its leaving the live list.
  const listed = async () => JSON.parse(await afsOk(['vos', 'listaddrs', '--server', on[0].address, '--json'])) as unknown[]
  const before = (await listed()).length
  await on[2].stop('SIGKILL')
  const died = Date.now()
  while ((await listed()).length === before) await new Promise(resolve => setTimeout(resolve, 50))
  console.log(`a SIGKILLed server left the live list ${((Date.now() - died) / 1000).toFixed(2)} s after it died (lease ${TTL_S} s)`)
} finally {
  await stack.unwind()
}
