import test from 'ava'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { once } from 'node:events'
import { RpcConnection, Download } from '../src/connection.ts'
import { AfsError, notFound } from '../src/errors.ts'
import { createHash } from 'node:crypto'

async function pair (handler: ConstructorParameters<typeof RpcConnection>[1]) {
  let serverConn: RpcConnection | null = null
  const server: Server = createServer(s => { serverConn = new RpcConnection(s, handler) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port
  const socket = connect({ host: '127.0.0.1', port })
  await once(socket, 'connect')
  const client = new RpcConnection(socket)
  return { client, server, port, serverConn: () => serverConn!, close: () => { client.destroy(); server.close() } }
}

test('many requests in flight on one connection, answered out of order', async t => {
  const p = await pair(async (op, args) => {
    const n = (args as { n: number }).n
    await new Promise(r => setTimeout(r, (100 - n) % 17))
    return { echo: n }
  })
  const replies = await Promise.all(Array.from({ length: 100 }, (_, n) => p.client.request('echo', { n })))
  t.deepEqual(replies.map(r => (r as { echo: number }).echo), Array.from({ length: 100 }, (_, n) => n))
  p.close()
})

test('errors cross the wire with their code and message', async t => {
  const p = await pair(async () => { throw notFound('no such thing', { x: 1 }) })
  const err = await t.throwsAsync(p.client.request('x', {})) as AfsError
  t.is(err.code, 'NOT_FOUND')
  t.is(err.message, 'no such thing')
  t.deepEqual(err.data, { x: 1 })
  p.close()
})

test('uploads and downloads stream in chunks and are verified by hash', async t => {
  const data = Buffer.alloc(5 * 1024 * 1024 + 17)
  for (let i = 0; i < data.length; i++) data[i] = i * 7 & 0xff
  const p = await pair(async (op, _args, ctx) => {
    if (op === 'up') {
      const h = createHash('sha256')
      let n = 0
      for await (const c of ctx.body!) { h.update(c); n += c.length }
      return { n, sha: h.digest('hex') }
    }
    return new Download({ size: data.length }, (async function * () { for (let i = 0; i < data.length; i += 300_000) yield data.subarray(i, i + 300_000) })())
  })
  const up = await p.client.upload('up', {}, (async function * () { yield data })()) as { n: number, sha: string }
  t.is(up.n, data.length)
  t.is(up.sha, createHash('sha256').update(data).digest('hex'))
  const { result, body } = await p.client.download('down', {})
  t.deepEqual(result, { size: data.length })
  const parts: Buffer[] = []
  for await (const c of body) parts.push(c)
  t.true(Buffer.concat(parts).equals(data))
  p.close()
})

test('garbage on the socket gets a PROTOCOL error back and the server keeps serving others', async t => {
  const p = await pair(async () => ({ ok: true }))
  const raw: Socket = connect({ host: '127.0.0.1', port: p.port })
  await once(raw, 'connect')
  raw.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))
  const reply = await new Promise<Buffer>(res => { const parts: Buffer[] = []; raw.on('data', d => parts.push(d)); raw.on('close', () => res(Buffer.concat(parts))) })
  t.true(reply.includes(Buffer.from('PROTOCOL')), 'the peer is told why')
  t.deepEqual(await p.client.request('still', {}), { ok: true })
  p.close()
})

test('malformed frames with a valid envelope get an error reply, not a crash', async t => {
  const p = await pair(async () => ({ ok: true }))
  const { encodeFrame } = await import('../src/frame.ts')
  const raw = connect({ host: '127.0.0.1', port: p.port })
  await once(raw, 'connect')
  raw.write(encodeFrame('not an array'))
  raw.write(encodeFrame([0, 5, 12345, {}]))
  raw.write(encodeFrame([9, 6]))
  const got: Buffer[] = []
  raw.on('data', d => got.push(d))
  await new Promise(r => setTimeout(r, 200))
  const all = Buffer.concat(got)
  t.true(all.includes(Buffer.from('BAD_REQUEST')))
  t.true(all.includes(Buffer.from('PROTOCOL')))
  raw.destroy()
  t.deepEqual(await p.client.request('still', {}), { ok: true })
  p.close()
})

test('a request gets a TIMEOUT when the peer never answers, and CONNECTION when it goes away', async t => {
  const p = await pair(() => new Promise(() => {}))
  const err = await t.throwsAsync(p.client.request('hang', {}, { timeoutMs: 100 })) as AfsError
  t.is(err.code, 'TIMEOUT')
  const pending = p.client.request('hang', {}, { timeoutMs: 10_000 })
  p.serverConn().destroy()
  t.is((await t.throwsAsync(pending) as AfsError).code, 'CONNECTION')
  p.close()
})
