// TLS on every link: servers show certificates of their cell's CA, clients and tools
// check them, servers know each other by theirs. Plaintext, an unknown CA and a
// certificate for another host are refused with one clear line on both sides.
import test from 'ava'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { createServer, connect, type AddressInfo } from 'node:net'
import { once } from 'node:events'
import { join } from 'node:path'
import { PROTOCOL_VERSION, RpcConnection, connectTo } from '@afs-ts/common'
import { Stack, addClient, afs, afsOk, caFileOf, cell, eventually, startServer, tempDir } from './helpers/cell.ts'

async function freePort (): Promise<number> {
  const s = createServer()
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as AddressInfo).port
  await new Promise(resolve => s.close(resolve))
  return port
}

test('a plaintext client is told the server speaks TLS only, and the server says so in one line', async t => {
  const stack = new Stack()
  try {
    const { server } = await cell(stack, 0)
    const [host, port] = server.address.split(':')
    const socket = connect({ host, port: Number(port) })
    await once(socket, 'connect')
    const conn = new RpcConnection(socket)
    const err = await t.throwsAsync(conn.request('hello', { protocol: PROTOCOL_VERSION, clientId: 'plain', hostname: 'test' }, { timeoutMs: 5_000 }))
    t.regex(err?.message ?? '', /speaks TLS only/)
    conn.close()
    t.true(await eventually(() => /a plaintext connection, refused/.test(server.stderr()), 5_000), server.stderr())
  } finally { await stack.unwind() }
})

test('a tool or a client trusting another CA is refused with a clear line; so is a server whose certificate is for another host', async t => {
  const stack = new Stack()
  try {
    const { server } = await cell(stack, 0)
    const other = await tempDir('afs-tls-')
    stack.defer(other)
    await afsOk(['cell', 'init', other, '--cell', 'other'])
    const wrongCa = await afs(['vos', 'list', '--server', server.address, '--ca', join(other, 'ca.pem')])
    t.is(wrongCa.code, 1)
    t.regex(wrongCa.stderr, /its certificate is not signed by the cell CA trusted here/)
    t.is(wrongCa.stderr.trim().split('\n').length, 1, wrongCa.stderr)
    t.true(await eventually(() => /TLS handshake failed/.test(server.stderr()), 5_000), 'the server says why too')
    // A server started with a certificate for another host: clients that reach it at 127.0.0.1 refuse it.
    await afsOk(['cell', 'issue-server', other, 'elsewhere.example', '--out', join(other, 'elsewhere')])
    const port = await freePort()
    const misnamed = await startServer(undefined, 'other', `127.0.0.1:${port}`, ['--tls', join(other, 'elsewhere'), '--advertise', `elsewhere.example:${port}`])
    stack.defer(misnamed.dataDir)
    stack.push(() => misnamed.stop())
    const wrongHost = await afs(['vos', 'list', '--server', `127.0.0.1:${port}`, '--ca', join(other, 'ca.pem')])
    t.is(wrongHost.code, 1)
    t.regex(wrongHost.stderr, /its certificate is for another host/)
    // A raw client that claims to be a server of the cell, without the cell's certificate, is refused.
    const conn = new RpcConnection(await connectTo(server.address, 5_000, { ca: readFileSync(caFileOf(server.address)!, 'utf8') }))
    const err = await t.throwsAsync(conn.request('hello', { protocol: PROTOCOL_VERSION, clientId: 'server:forged', hostname: 'test' }))
    t.regex(err?.message ?? '', /proves itself with a certificate of the cell's CA/)
    conn.close()
  } finally { await stack.unwind() }
})

test('a cell made with afs cell init and issue-server: its server starts with --tls, keeps it for restarts, and clients with --ca use it', async t => {
  const stack = new Stack()
  try {
    const ca = await tempDir('afs-tls-')
    stack.defer(ca)
    t.regex(await afsOk(['cell', 'init', ca, '--cell', 'made']), /made the CA of cell made/)
    t.is(statSync(join(ca, 'ca-key.pem')).mode & 0o777, 0o600)
    const again = await afs(['cell', 'init', ca, '--cell', 'made'])
    t.is(again.code, 1)
    t.regex(again.stderr, /holds a cell CA already/)
    await afsOk(['cell', 'issue-server', ca, '127.0.0.1'])
    t.is(statSync(join(ca, '127.0.0.1', 'server-key.pem')).mode & 0o777, 0o600)
    const s = await startServer(undefined, 'made', '127.0.0.1:0', ['--tls', join(ca, '127.0.0.1')])
    stack.defer(s.dataDir)
    stack.push(() => s.stop())
    const a = await addClient(stack, [s.address], { extra: ['--ca', join(ca, 'ca.pem')] })
    writeFileSync(join(a.cellPath, 'f'), 'over TLS\n')
    await s.stop()
    // Restarted without --tls: what it was given is kept with its data (the CA's key is not).
    const back = await startServer(s.dataDir, 'made', s.address)
    stack.push(() => back.stop())
    t.throws(() => statSync(join(s.dataDir, 'tls', 'ca-key.pem')))
    t.true(await eventually(async () => (await afs(['vos', 'list', '--server', s.address, '--ca', join(ca, 'ca.pem')])).code === 0, 10_000))
    t.is(readFileSync(join(a.cellPath, 'f'), 'utf8'), 'over TLS\n')
    // A client with no CA to trust is told what to give it.
    const none = await afs(['client', '--server', s.address, '--mount', join(ca, 'm'), '--cache', join(ca, 'c')])
    t.is(none.code, 2)
    t.regex(none.stderr, /--ca FILE is required/)
  } finally { await stack.unwind() }
})
