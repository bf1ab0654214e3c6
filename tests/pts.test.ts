// Users, groups and tokens: the protection database kept beside the location database,
// `afs login` tokens held by the cache manager for the local user who ran it, and
// servers that know who asks only by a token their cell signed.
import test from 'ava'
import { readFileSync, statSync } from 'node:fs'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import type { RpcConnection } from '@afs-ts/common'
import { readTokenKey } from '@afs-ts/common/cell-ca'
import { signToken } from '@afs-ts/protection'
import { AFS, Stack, afs, afsAsCaller, caFileOf, cell, rawConnection, readableFile } from './helpers/cell.ts'


async function whoami (conn: RpcConnection, token?: string): Promise<string> {
  return await conn.request('whoami', {}, { token }).then(r => (r as { name: string }).name, (err: Error & { code?: string }) => `${err.code}: ${err.message}`)
}

test('the first server makes admin; admin makes users and groups; tokens are per local user; non-admins are refused; bad passwords slow down', async t => {
  const stack = new Stack()
  try {
    const { server, clients: [a] } = await cell(stack, 1, { login: false })
    const adminPw = join(server.dataDir, 'admin.password')
    t.is(statSync(adminPw).mode & 0o777, 0o600)
    // No token yet: the cell's administrators' commands are refused, with what to do.
    const refused = await afsAsCaller(['vos', 'create', 'nope', '--server', server.address, '--cache', a.cache])
    t.is(refused.code, 1)
    t.regex(refused.stderr, /system:administrators \(you are anonymous: afs login/)
    t.regex((await afsAsCaller(['login', 'admin', '--password-file', adminPw, '--cache', a.cache])).stdout, /admin has a token for cell test until/)
    const tokens = JSON.parse((await afsAsCaller(['tokens', '--json', '--cache', a.cache])).stdout) as Array<{ user: string, cell: string, expired: boolean, expiresMs: number }>
    t.deepEqual(tokens.map(x => [x.user, x.cell, x.expired]), [['admin', 'test', false]])
    t.true(tokens[0].expiresMs > Date.now() + 24 * 3600_000, 'a token lasts 25 hours')
    // Users and groups.
    const alicePw = readableFile('alice-secret-1')
    t.regex((await afsAsCaller(['pts', 'createuser', 'alice', '--password-file', alicePw, '--cache', a.cache])).stdout, /user alice has id \d+/)
    t.regex((await afsAsCaller(['pts', 'creategroup', 'staff', '--cache', a.cache])).stdout, /group staff has id -\d+/)
    t.regex((await afsAsCaller(['pts', 'adduser', 'alice', 'staff', '--cache', a.cache])).stdout, /alice is in staff/)
    const groups = JSON.parse((await afsAsCaller(['pts', 'membership', 'alice', '--json', '--cache', a.cache])).stdout) as Array<{ name: string }>
    t.deepEqual(groups.map(g => g.name), ['staff'])
    const alice = JSON.parse((await afsAsCaller(['pts', 'examine', 'alice', '--json', '--cache', a.cache])).stdout) as { kind: string, hash?: string }
    t.is(alice.kind, 'user')
    t.is(alice.hash, undefined, 'a password hash is never shown')
    t.regex((await afsAsCaller(['vos', 'create', 'byadmin', '--server', server.address, '--cache', a.cache])).stdout, /created volume byadmin/)
    // Alice is no administrator.
    await afsAsCaller(['login', 'alice', '--password-file', alicePw, '--cache', a.cache])
    const notAdmin = await afsAsCaller(['vos', 'create', 'byalice', '--server', server.address, '--cache', a.cache])
    t.regex(notAdmin.stderr, /system:administrators \(you are alice/)
    t.regex((await afsAsCaller(['pts', 'createuser', 'bob', '--cache', a.cache], '')).stderr, /only members of system:administrators/)
    // A wrong password is refused; after a few, each next try waits.
    const wrong = readableFile('not-her-password')
    for (let i = 0; i < 3; i++) t.regex((await afsAsCaller(['login', 'alice', '--password-file', wrong, '--cache', a.cache])).stderr, /login as alice failed/)
    const started = Date.now()
    t.regex((await afsAsCaller(['login', 'alice', '--password-file', wrong, '--cache', a.cache])).stderr, /login as alice failed/)
    t.true(Date.now() - started >= 1000, `the fourth failure waited (${Date.now() - started} ms)`)
    // Logout drops them.
    t.regex((await afsAsCaller(['logout', '--cache', a.cache])).stdout, /dropped 1 token/)
    t.regex((await afsAsCaller(['tokens', '--cache', a.cache])).stdout, /no tokens/)
  } finally { await stack.unwind() }
})

test('a server takes a token only as its cell signed it: tampered, expired, another cell\'s, revoked by a new password or a removal are refused', async t => {
  const stack = new Stack()
  try {
    const { server, clients: [a] } = await cell(stack, 1)
    await afs(['pts', 'createuser', 'carol', '--password-file', readableFile('carol-secret-1'), '--server', server.address])
    const conn = await rawConnection(server.address)
    try {
      const key = await readTokenKey(join(server.dataDir, 'tls'))
      const carol = JSON.parse((await afs(['pts', 'examine', 'carol', '--json', '--server', server.address])).stdout) as { id: number }
      const good = (await signToken(key, { user: 'carol', uid: carol.id, epoch: 1, cell: 'test' })).token
      t.is(await whoami(conn), 'anonymous')
      t.is(await whoami(conn, good), 'carol')
      const tampered = good.slice(0, -3) + (good.endsWith('AAA') ? 'BBB' : 'AAA')
      t.regex(await whoami(conn, tampered), /^UNAUTHENTICATED: .*not signed by this cell/)
      t.regex(await whoami(conn, 'not.a.token'), /^UNAUTHENTICATED: .*malformed/)
      t.regex(await whoami(conn, (await signToken(key, { user: 'carol', uid: carol.id, epoch: 1, cell: 'test' }, -1000)).token), /^UNAUTHENTICATED: .*expired/)
      t.regex(await whoami(conn, (await signToken(key, { user: 'carol', uid: carol.id, epoch: 1, cell: 'other' })).token), /^UNAUTHENTICATED: .*another cell/)
      t.regex(await whoami(conn, (await signToken(new Uint8Array(32), { user: 'carol', uid: carol.id, epoch: 1, cell: 'test' })).token), /^UNAUTHENTICATED: .*not signed by this cell/)
      // A new password: the token got with the old one is void.
      await afs(['pts', 'setpassword', 'carol', '--password-file', readableFile('carol-secret-2'), '--server', server.address])
      await new Promise(resolve => setTimeout(resolve, 1_100)) // what the server found for the token is used for at most a second
      t.regex(await whoami(conn, good), /^UNAUTHENTICATED: .*revoked/)
      const again = await afsAsCaller(['login', 'carol', '--password-file', readableFile('carol-secret-2'), '--cache', a.cache])
      t.is(again.code, 0, again.stderr)
      const held = (JSON.parse((await afsAsCaller(['tokens', '--json', '--cache', a.cache])).stdout) as Array<{ user: string }>)
      t.deepEqual(held.map(h => h.user), ['carol'])
      await afs(['pts', 'delete', 'carol', '--server', server.address])
      const fresh = (await signToken(key, { user: 'carol', uid: carol.id, epoch: 2, cell: 'test' })).token
      t.regex(await whoami(conn, fresh), /^UNAUTHENTICATED: .*no user of the cell/)
    } finally { conn.close() }
  } finally { await stack.unwind() }
})

test('two local users of one client: each holds only their own tokens, and cannot read the other\'s', async t => {
  const stack = new Stack()
  try {
    const { server, clients: [a] } = await cell(stack, 1, { login: false })
    await afs(['pts', 'createuser', 'dave', '--password-file', readableFile('dave-secret-1'), '--server', server.address])
    await afsAsCaller(['login', 'admin', '--password-file', join(server.dataDir, 'admin.password'), '--cache', a.cache])
    // As uid 65534: dave logs in through the mount (the cache manager's control socket is root's).
    const nobody = (args: string[]) => new Promise<{ code: number | null, out: string }>(resolve => {
      const p = spawn(process.execPath, [AFS, ...args], { uid: 65534, gid: 65534, env: { ...process.env, AFS_LOCALAUTH: '', HOME: '/tmp' }, stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      p.stdout.on('data', d => { out += d })
      p.stderr.on('data', d => { out += d })
      p.on('close', code => resolve({ code, out }))
    })
    const ca = readableFile(readFileSync(caFileOf(server.address)!, 'utf8')) // (a copy the other user can read)
    const login = await nobody(['login', 'dave', '--password-file', readableFile('dave-secret-1'), '--mount', a.mount, '--server', server.address, '--ca', ca])
    t.is(login.code, 0, login.out)
    const mine = await nobody(['tokens', '--json', '--mount', a.mount])
    t.deepEqual((JSON.parse(mine.out) as Array<{ user: string }>).map(x => x.user), ['dave'])
    const rootTokens = JSON.parse((await afsAsCaller(['tokens', '--json', '--cache', a.cache])).stdout) as Array<{ user: string }>
    t.deepEqual(rootTokens.map(x => x.user), ['admin'])
    // The other's token file: the kernel refuses it.
    const peek = await new Promise<string>(resolve => {
      const p = spawn('cat', [join(a.mount, '.afs-tokens', '0')], { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      p.stdout.on('data', d => { out += d })
      p.stderr.on('data', d => { out += d })
      p.on('close', () => resolve(out))
    })
    t.regex(peek, /Permission denied/)
    t.false(peek.includes('"token"'))
    t.false(readFileSync(join(a.mount, '.afs-tokens', '65534'), 'utf8').includes('admin'), 'root sees dave\'s, which are dave\'s only')
  } finally { await stack.unwind() }
})
