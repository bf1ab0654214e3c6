// Prometheus metrics of a server and a cache manager (`--metrics HOST:PORT`), scraped over
// HTTP while a client works.
import test from 'ava'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { rm } from 'node:fs/promises'
import { Stack, addClient, afs, startServer } from './helpers/cell.ts'

/** The value of one sample of the exposition text (labels as written, e.g. `op="store",result="ok"`). */
function sample (text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find(l => l.startsWith(labels ? `${name}{${labels}}` : `${name} `))
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1))
}

test('a server and a cache manager serve /metrics: requests by operation and result with latencies, callbacks, cache use, the log', async t => {
  const stack = new Stack()
  try {
    const s = await startServer(undefined, 'test', '127.0.0.1:0', ['--metrics', '127.0.0.1:0'])
    stack.defer(s.dataDir)
    stack.push(() => s.stop())
    const a = await addClient(stack, [s.address], { extra: ['--metrics', '127.0.0.1:0'] })
    const b = await addClient(stack, [s.address])
    writeFileSync(join(a.cellPath, 'f'), 'hello\n')
    t.is(readFileSync(join(b.cellPath, 'f'), 'utf8'), 'hello\n')
    writeFileSync(join(a.cellPath, 'f'), 'again\n') // breaks b's promise
    const server = await (await fetch(`http://${s.ready.metrics as string}/metrics`)).text()
    t.true((sample(server, 'afs_server_requests_total', 'op="store",result="ok"') ?? 0) >= 2, 'stores counted')
    t.true((sample(server, 'afs_server_request_seconds_count', 'op="store"') ?? 0) >= 2, 'their latency')
    t.true((sample(server, 'afs_server_callback_breaks_total') ?? 0) >= 1)
    t.true((sample(server, 'afs_server_callback_promises') ?? 0) >= 1)
    t.is(sample(server, 'afs_server_clients'), 2)
    t.is(sample(server, 'afs_server_location_db_up', 'kind="embedded"'), 1)
    const client = await (await fetch(`http://${a.ready.metrics as string}/metrics`)).text()
    t.true((sample(client, 'afs_cache_stores_total') ?? 0) >= 2)
    t.true((sample(client, 'afs_cache_rpcs_total') ?? 0) > 0)
    t.true((sample(client, 'afs_cache_bytes') ?? 0) > 0)
    t.is(sample(client, 'afs_cache_cml_records'), 0)
    t.true((sample(client, 'afs_cache_volumes', 'state="connected"') ?? 0) >= 1)
    t.is((await fetch(`http://${s.ready.metrics as string}/other`)).status, 404)
    const bad = await afs(['server', '--data', s.dataDir, '--listen', '127.0.0.1:0', '--cell', 'test', '--metrics', 'nowhere'])
    t.is(bad.code, 2, 'a bad --metrics address is refused')
  } finally { await stack.unwind() }
})

test('logs are JSON lines off a terminal (AFS_LOG_FORMAT=json), each with its level, time, component and message', async t => {
  const s = await startServer(undefined, 'test', '127.0.0.1:0', [], { AFS_LOG_FORMAT: 'json' })
  try {
    await new Promise(resolve => setTimeout(resolve, 200))
    const lines = s.stderr().split('\n').filter(Boolean).map(l => JSON.parse(l) as { level: number, time: number, component: string, msg: string })
    const serving = lines.find(l => /serving on/.test(l.msg))
    t.truthy(serving, s.stderr())
    t.is(serving?.component, 'fileserver')
    t.is(serving?.level, 30, 'info')
    t.true(typeof serving?.time === 'number')
  } finally { await s.stop(); await rm(s.dataDir, { recursive: true, force: true }) }
})
