// AFS directory ACLs, checked by the servers for the token behind each request, and by
// the cache manager for each local user from the rights their server gave them.
import test from 'ava'
import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { readTokenKey } from '@afs-ts/common/cell-ca'
import { signToken } from '@afs-ts/protection'
import { Stack, addClient, afs, afsAsCaller, afsOk, cell, readableFile, eventually, rawConnection, status, type Client, type Server } from './helpers/cell.ts'


async function user (server: Server, name: string): Promise<{ id: number, password: string }> {
  const password = `${name}-secret-1`
  await afsOk(['pts', 'createuser', name, '--password-file', readableFile(password), '--server', server.address])
  const { id } = JSON.parse(await afsOk(['pts', 'examine', name, '--json', '--server', server.address])) as { id: number }
  return { id, password }
}

async function login (c: Client, name: string, password: string): Promise<void> {
  const r = await afsAsCaller(['login', name, '--password-file', readableFile(password), '--cache', c.cache])
  if (r.code !== 0) throw new Error(r.stderr)
}

/** What a shell command run as uid 65534 on a client's mount prints (and whether it failed). */
async function asNobody (cmd: string): Promise<{ ok: boolean, out: string }> {
  return await new Promise(resolve => {
    const p = spawn('sh', ['-c', cmd], { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    p.stdout.on('data', d => { out += d })
    p.stderr.on('data', d => { out += d })
    p.on('close', code => resolve({ ok: code === 0, out }))
  })
}

test('no token: nothing where system:anyuser may do nothing; rl reads but cannot write; negative rights win; a group\'s rights follow its members; new directories inherit', async t => {
  const stack = new Stack()
  try {
    const { server, clients: [admin] } = await cell(stack, 1)
    const other = await addClient(stack, [server.address], { login: false })
    const dir = join(admin.cellPath, 'private')
    mkdirSync(dir)
    writeFileSync(join(dir, 'f'), 'secret\n')
    await afsOk(['fs', 'setacl', dir, 'system:anyuser', 'none', '--cache', admin.cache])
    // The other client's user has no token: it is system:anyuser, who has nothing here now.
    t.throws(() => readFileSync(join(other.cellPath, 'private', 'f')), { code: 'EACCES' })
    t.throws(() => writeFileSync(join(other.cellPath, 'private', 'g'), 'x'), { code: 'EACCES' })
    // A user with rl reads, and cannot write.
    const bob = await user(server, 'bob')
    await afsOk(['fs', 'setacl', dir, 'bob', 'rl', '--cache', admin.cache])
    await login(other, 'bob', bob.password)
    t.is(readFileSync(join(other.cellPath, 'private', 'f'), 'utf8'), 'secret\n')
    t.throws(() => writeFileSync(join(other.cellPath, 'private', 'f'), 'changed'), { code: 'EACCES' })
    t.throws(() => writeFileSync(join(other.cellPath, 'private', 'g'), 'new'), { code: 'EACCES' })
    t.is(readFileSync(join(admin.cellPath, 'private', 'f'), 'utf8'), 'secret\n', 'nothing changed')
    // Through a group: write; then a negative entry takes it away again.
    await afsOk(['pts', 'creategroup', 'staff', '--server', server.address])
    await afsOk(['pts', 'adduser', 'bob', 'staff', '--server', server.address])
    await afsOk(['fs', 'setacl', dir, 'staff', 'rlidwk', '--cache', admin.cache])
    await new Promise(resolve => setTimeout(resolve, 1_100)) // a token's identity (its groups) is found again after a second
    writeFileSync(join(other.cellPath, 'private', 'g'), 'by bob\n')
    t.is(readFileSync(join(admin.cellPath, 'private', 'g'), 'utf8'), 'by bob\n')
    await afsOk(['fs', 'setacl', dir, 'bob', 'w', '--negative', '--cache', admin.cache])
    t.true(await eventually(() => { try { writeFileSync(join(other.cellPath, 'private', 'g'), 'again'); return false } catch (err) { return (err as NodeJS.ErrnoException).code === 'EACCES' } }, 5_000), 'negative rights win')
    await afsOk(['fs', 'setacl', dir, 'bob', 'none', '--negative', '--cache', admin.cache])
    await afsOk(['pts', 'removeuser', 'bob', 'staff', '--server', server.address])
    await new Promise(resolve => setTimeout(resolve, 1_100))
    t.throws(() => writeFileSync(join(other.cellPath, 'private', 'h'), 'out of staff'), { code: 'EACCES' }, 'out of the group, its rights are gone')
    // A new directory starts with its parent's ACL.
    mkdirSync(join(dir, 'sub'))
    const listed = JSON.parse(await afsOk(['fs', 'listacl', join(dir, 'sub'), '--json', '--cache', admin.cache])) as { positive: Array<{ name: string, rights: string }> }
    t.deepEqual(listed.positive.map(e => `${e.name} ${e.rights}`).sort(), ['bob rl', 'staff rlidwk', 'system:administrators rlidwka'])
    // cleanacl drops the entries of users no longer in the database.
    await afsOk(['pts', 'delete', 'bob', '--server', server.address])
    t.regex(await afsOk(['fs', 'cleanacl', dir, '--cache', admin.cache]), /removed 1 entry/)
  } finally { await stack.unwind() }
})

test('a raw protocol client claiming another user\'s uid gets nothing; a tool without rights is refused setacl', async t => {
  const stack = new Stack()
  try {
    const { server, clients: [admin] } = await cell(stack, 1)
    const dir = join(admin.cellPath, 'closed')
    mkdirSync(dir)
    writeFileSync(join(dir, 'f'), 'closed\n')
    await afsOk(['fs', 'setacl', dir, 'system:anyuser', 'none', '--cache', admin.cache])
    const { fid } = JSON.parse(await afsOk(['fs', 'whereis', join(dir, 'f'), '--json', '--cache', admin.cache])) as { fid: string }
    const dirFid = JSON.parse(await afsOk(['fs', 'whereis', dir, '--json', '--cache', admin.cache])) as { fid: string }
    const parse = (f: string) => { const [volume, vnode, unique] = f.split('.').map(Number); return { volume, vnode, unique } }
    const conn = await rawConnection(server.address)
    try {
      const refused = async (op: string, args: object) => await conn.request(op, args).then(() => 'allowed', (err: Error & { code?: string }) => err.code ?? err.message)
      t.is(await refused('fetchData', { fid: parse(fid) }), 'PERMISSION')
      // Bulk status answers each object as its own fetchStatus would: nothing for what may not be looked up.
      const { volume } = parse(fid)
      const bulk = await conn.request('fetchStatuses', { volume, fids: [parse(fid), { volume, vnode: 1, unique: 1 }] }) as { statuses: Array<{ status: { type: string } } | null> }
      t.is(bulk.statuses[0], null, 'the closed file: no status')
      t.is(bulk.statuses[1]?.status.type, 'dir', 'the volume\'s root, open to lookups: its status')
      t.is(await refused('fetchStatuses', { volume: volume + 1, fids: [parse(fid)] }), 'INVALID')
      t.is(await refused('create', { dir: parse(dirFid.fid), name: 'forged', mode: 0o644, uid: 0, gid: 0, seq: 1 }), 'PERMISSION')
      t.is(await refused('storeAcl', { fid: parse(dirFid.fid), acl: { pos: [[-101, 127]], neg: [] }, seq: 2 }), 'PERMISSION')
    } finally { conn.close() }
    const anon = await addClient(stack, [server.address], { login: false })
    const r = await afsAsCaller(['fs', 'setacl', join(anon.cellPath, 'closed'), 'system:anyuser', 'all', '--cache', anon.cache])
    t.is(r.code, 1)
    t.regex(r.stderr, /lacks the/)
  } finally { await stack.unwind() }
})

test('two local users of one client: a file one of them has cached is not served to the other', async t => {
  const stack = new Stack()
  try {
    const { clients: [a] } = await cell(stack, 1)
    const dir = join(a.cellPath, 'mine')
    mkdirSync(dir)
    writeFileSync(join(dir, 'f'), 'for root only\n')
    await afsOk(['fs', 'setacl', dir, 'system:anyuser', 'l', '--cache', a.cache])
    t.is(readFileSync(join(dir, 'f'), 'utf8'), 'for root only\n') // cached for root (admin)
    const before = (await status(a)).counters.rpcs
    const peek = await asNobody(`cat ${join(dir, 'f')}`)
    t.false(peek.ok)
    t.regex(peek.out, /Permission denied/)
    t.false(peek.out.includes('for root only'))
    t.true((await status(a)).counters.rpcs > before, 'the other user\'s rights were asked of the server')
    const list = await asNobody(`ls ${dir}`)
    t.true(list.ok, 'l lets them list it')
    t.regex(list.out, /f/)
  } finally { await stack.unwind() }
})

test('a token that expires while disconnected: the log waits, status says who must log in, and it is replayed as them after afs login', async t => {
  const stack = new Stack()
  try {
    const { server, clients: [admin] } = await cell(stack, 1)
    const carol = await user(server, 'carol')
    const dir = join(admin.cellPath, 'carols')
    mkdirSync(dir)
    await afsOk(['fs', 'setacl', dir, 'carol', 'all', '--cache', admin.cache])
    const c = await addClient(stack, [server.address], { login: false })
    // A token for carol that lasts a few seconds (as if logged in a day ago).
    const key = await readTokenKey(join(server.dataDir, 'tls'))
    const { token, expiresMs } = await signToken(key, { user: 'carol', uid: carol.id, epoch: 1, cell: 'test' }, 4_000)
    writeFileSync(join(c.mount, '.afs-tokens', String(process.getuid!())), JSON.stringify([{ cell: 'test', user: 'carol', token, expiresMs }]) + '\n')
    t.deepEqual(readdirSync(join(c.cellPath, 'carols')), [], 'carol may look in it (known here before going offline)')
    await afsOk(['disconnect', '--cache', c.cache])
    writeFileSync(join(c.cellPath, 'carols', 'offline.txt'), 'written offline by carol\n')
    await new Promise(resolve => setTimeout(resolve, Math.max(0, expiresMs - Date.now()) + 500))
    await afsOk(['reconnect', '--cache', c.cache])
    t.true(await eventually(async () => /must log in again as carol/.test((await afs(['status', '--cache', c.cache])).stdout), 15_000), (await afs(['status', '--cache', c.cache])).stdout)
    t.is(((await status(c)).cml as { records: number }).records > 0, true, 'the changes wait in the log')
    await login(c, 'carol', carol.password)
    t.true(await eventually(async () => ((await status(c)).cml as { records: number }).records === 0, 15_000), 'replayed after the login')
    t.is(readFileSync(join(admin.cellPath, 'carols', 'offline.txt'), 'utf8'), 'written offline by carol\n')
    const conn = await rawConnection(server.address)
    try {
      const { fid } = JSON.parse(await afsOk(['fs', 'whereis', join(admin.cellPath, 'carols', 'offline.txt'), '--json', '--cache', admin.cache])) as { fid: string }
      const [volume, vnode, unique] = fid.split('.').map(Number)
      const adminToken = (await signToken(key, { user: '<localauth>', uid: 0, epoch: 0, cell: 'test' })).token
      const st = await conn.request('fetchStatus', { fid: { volume, vnode, unique } }, { token: adminToken }) as { status: { owner?: number } }
      t.is(st.status.owner, carol.id, 'made by carol, as the log said')
    } finally { conn.close() }
  } finally { await stack.unwind() }
})
