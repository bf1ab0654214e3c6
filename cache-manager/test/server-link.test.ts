// The link to one server, against a scripted peer on real TCP: a callback break that
// overtakes the reply whose promise it breaks leaves that reply (or that status of a bulk
// reply) without a promise.
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
      // Another client's store commits while this reply is on its way: the break goes first.
      await conn.request('callbackBreak', { fids: [fid] })
      const reply = (f: Fid) => ({ status: { ...status, fid: f }, callback: { expiresAt: Date.now() + 60_000 } })
      if (op === 'fetchStatuses') return { statuses: (args as { fids: Fid[] }).fids.map(reply) }
      return reply((args as { fid: Fid }).fid)
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
  // Each status of a bulk reply alike.
  const bulk = await link.call('fetchStatuses', { volume: 1, fids: [{ ...fid, vnode: 9 }, fid] })
  t.true(bulk.statuses[0]!.callback.expiresAt > Date.now(), 'not broken: its promise holds')
  t.is(bulk.statuses[1]!.callback.expiresAt, 0, 'broken while the reply was on its way: no promise')
})
