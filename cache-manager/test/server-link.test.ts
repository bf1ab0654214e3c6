// The link to one server, against a scripted peer on real TCP: a callback break that
// overtakes the reply whose promise it breaks leaves that reply without a promise.
import test from 'ava'
import { createServer, type AddressInfo } from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RpcConnection, PROTOCOL_VERSION, tlsAcceptor, type Fid, type StatusReply, type VnodeStatus } from '@afs-ts/common'
import { serverTrust } from '@afs-ts/common/cell-ca'
import { ServerLink } from '../src/server-link.ts'
import { newCounters } from '../src/counters.ts'

const fid: Fid = { volume: 1, vnode: 7, unique: 1 }
const status: VnodeStatus = { fid, type: 'file', mode: 0o100644, uid: 0, gid: 0, nlink: 1, size: 0, atimeMs: 0, mtimeMs: 0, ctimeMs: 0, dataVersion: 1 }

test('a break that arrives before the reply it breaks voids the reply\'s promise; one for another object does not', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'afs-link-'))
  const trust = await serverTrust(dir, '127.0.0.1', { newCell: 'c', keep: true })
  const server = createServer(tlsAcceptor(trust, socket => {
    const conn = new RpcConnection(socket)
    conn.handler = async (op, args) => {
      if (op === 'hello') return { cell: 'c', protocol: PROTOCOL_VERSION, serverId: 's', rootVolume: 'root.cell' }
      if (op === 'ping') return {}
      const asked = (args as { fid: Fid }).fid
      // Another client's store commits while this reply is on its way: the break goes first.
      await conn.request('callbackBreak', { fids: [fid] })
      return { status: { ...status, fid: asked }, callback: { expiresAt: Date.now() + 60_000 } }
    }
  }, () => {}))
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const link = new ServerLink(`127.0.0.1:${(server.address() as AddressInfo).port}`, 'client-1', newCounters(), { trust: { ca: trust.ca }, tokenFor: () => undefined }, 60_000)
  t.teardown(async () => { link.close(); server.close(); await rm(dir, { recursive: true, force: true }) })
  t.true(await link.start())
  const broken = await link.call('fetchStatus', { fid }) as StatusReply
  t.is(broken.callback.expiresAt, 0, 'the version in the reply is already stale: no promise')
  const other = await link.call('fetchStatus', { fid: { ...fid, vnode: 8 } }) as StatusReply
  t.true(other.callback.expiresAt > Date.now(), 'a break of another object leaves this promise')
})
