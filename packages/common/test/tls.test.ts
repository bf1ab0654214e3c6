// The TLS handshake against hostile peers: garbage, a handshake cut short, silence. Each is
// refused with a reason and closed, within the handshake's time bound; nothing crashes,
// and a good client is served all along.
import test from 'ava'
import fc from 'fast-check'
import { createServer, connect, type AddressInfo, type Server } from 'node:net'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RpcConnection } from '../src/connection.ts'
import { connectTo, tlsAcceptor } from '../src/tls.ts'
import { serverTrust } from '../src/cell-ca.ts'

const HANDSHAKE_MS = 300

async function tlsServer () {
  const dir = await mkdtemp(join(tmpdir(), 'afs-tls-unit-'))
  const trust = await serverTrust(dir, '127.0.0.1', { newCell: 'unit', keep: true })
  const refused: string[] = []
  const server: Server = createServer(tlsAcceptor(trust, s => { new RpcConnection(s, async () => ({ ok: true })) }, why => refused.push(why), HANDSHAKE_MS))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`
  return { trust, refused, address, port: (server.address() as AddressInfo).port, close: async () => { server.close(); await rm(dir, { recursive: true, force: true }) } }
}

/** Sends `bytes` raw and resolves when the server closes the connection (with how long it took). */
async function sendRaw (port: number, bytes: Uint8Array): Promise<number> {
  const started = Date.now()
  const s = connect({ host: '127.0.0.1', port })
  s.on('error', () => {})
  s.on('data', () => {})
  await once(s, 'connect')
  if (bytes.length) s.write(bytes)
  await once(s, 'close')
  return Date.now() - started
}

test('garbage, a cut-off handshake or silence is refused and closed within the time bound; a good client still gets answers', async t => {
  const srv = await tlsServer()
  try {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 2048 }), fc.boolean(), async (bytes, asHandshake) => {
      // (As a handshake: the TLS record type of one, then garbage.)
      const sent = asHandshake && bytes.length > 0 ? Uint8Array.from([0x16, ...bytes.subarray(1)]) : bytes
      const ms = await sendRaw(srv.port, sent)
      return ms < HANDSHAKE_MS + 2_000
    }), { numRuns: 40 })
    t.true(srv.refused.length >= 40, `each refused with a reason (${srv.refused.length})`)
    t.true(srv.refused.some(r => /no TLS handshake in/.test(r) || /TLS handshake failed/.test(r) || /plaintext/.test(r)))
    const good = new RpcConnection(await connectTo(srv.address, 2_000, { ca: srv.trust.ca }))
    t.deepEqual(await good.request('x', {}), { ok: true })
    good.close()
  } finally { await srv.close() }
})

test('a client that trusts another CA is refused before any request', async t => {
  const srv = await tlsServer()
  const other = await mkdtemp(join(tmpdir(), 'afs-tls-other-'))
  try {
    const wrong = await serverTrust(other, '127.0.0.1', { newCell: 'other', keep: true })
    const err = await t.throwsAsync(connectTo(srv.address, 2_000, { ca: wrong.ca }))
    t.regex(err?.message ?? '', /not signed by the cell CA trusted here/)
  } finally {
    await srv.close()
    await rm(other, { recursive: true, force: true })
  }
})
