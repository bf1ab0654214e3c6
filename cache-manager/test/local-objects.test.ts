// Local fid replacement finished at start: what a crash left under the local fid (the
// object, a parent's listing, the container) ends up under the server fid.
import test from 'ava'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Fid, VnodeStatus } from '@afs-ts/common'
import { ClientModifyLog } from '../src/cml.ts'
import { ContainerStore } from '../src/container-file.ts'
import { FsObjectTable, objectKey } from '../src/fs-object-table.ts'
import { LocalObjects } from '../src/local-objects.ts'
import { ReadFdCache } from '../src/read-fd-cache.ts'

const status = (fid: Fid, type: 'file' | 'dir'): VnodeStatus => ({
  fid, type, mode: type === 'dir' ? 0o40755 : 0o100644, uid: 0, gid: 0, nlink: 1, size: 0, atimeMs: 0, mtimeMs: 0, ctimeMs: 0, dataVersion: 0,
})

test('a replacement cut short by a crash is finished at start, listings included', async t => {
  const d = await mkdtemp(join(tmpdir(), 'afs-local-'))
  const cml = new ClientModifyLog(d)
  const table = new FsObjectTable(d)
  const containers = new ContainerStore(d)
  t.teardown(async () => { await cml.close(); await table.close(); await rm(d, { recursive: true, force: true }) })
  await containers.ready()
  const dir: Fid = { volume: 9, vnode: 1, unique: 1 }
  const local = cml.newLocalFid(9)
  const server: Fid = { volume: 9, vnode: 30, unique: 1 }
  await cml.append('c', { op: 'create', dir, name: 'f', fid: local, mode: 0o644, uid: 0, gid: 0 })
  const parent = table.upsert('c', status(dir, 'dir'))
  parent.entries = new Map([['f', { fid: local, type: 'file' }]])
  const o = table.upsert('c', status(local, 'file'))
  o.cachedVersion = 0
  await writeFile(containers.path(o.key), 'made offline')
  // The log recorded the replay; the cache did not get as far.
  cml.done(cml.all()[0].seq, { created: { local, server } })
  await cml.flushDone()
  await new LocalObjects({ table, containers, readFds: new ReadFdCache(), cml }).finish()
  t.is(table.get(objectKey('c', local)), undefined)
  t.is(table.get(objectKey('c', server)), o)
  t.deepEqual(parent.entries.get('f')?.fid, server)
  t.is(await readFile(containers.path(objectKey('c', server)), 'utf8'), 'made offline')
  t.deepEqual(await containers.list(), [objectKey('c', server)])
})
