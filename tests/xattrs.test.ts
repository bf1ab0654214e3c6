// Extended attributes through real mounts: setfattr/getfattr, the flags and errors of
// setxattr(2) and getxattr(2), another client, offline changes replayed, cp -a, rsync -X
// and tar --xattrs between clients, and a get on a cached object that costs no RPC.
import test from 'ava'
import { execFile } from 'node:child_process'
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Stack, afsOk, cell, drained, eventually, status, tempDir, type Client } from './helpers/cell.ts'

const run = promisify(execFile)

/** Runs a few lines of Python against the mount (os.*xattr, and ctypes for a short buffer). */
async function py (code: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('python3', ['-c', `import os, sys, errno, ctypes\n${code}`, ...args])
  return stdout.trim()
}

/** The errno name a Python xattr call fails with, or 'ok'. */
const errnoOf = (call: string, ...args: string[]) => py(`try:\n  ${call}\n  print('ok')\nexcept OSError as e:\n  print(errno.errorcode[e.errno])`, ...args)

async function getfattr (path: string): Promise<Record<string, string>> {
  const { stdout } = await run('getfattr', ['--absolute-names', '-d', '-m', '-', path])
  const out: Record<string, string> = {}
  for (const line of stdout.split('\n')) {
    const m = /^([^#=][^=]*)=(?:"(.*)"|(.*))$/.exec(line)
    if (m) out[m[1]] = m[2] ?? m[3]
  }
  return out
}


async function rpcs (c: Client): Promise<number> {
  return (await status(c)).counters.rpcs
}

test.serial('setfattr and getfattr: set, list, replace, remove, seen by another client; a cached get costs no RPC', async t => {
  const stack = new Stack()
  try {
    const { clients: [a, b] } = await cell(stack, 2)
    const f = join(a.cellPath, 'f')
    writeFileSync(f, 'data\n')
    await run('setfattr', ['-n', 'user.colour', '-v', 'blue', f])
    await run('setfattr', ['-n', 'user.empty', f])
    await run('setfattr', ['-n', 'trusted.root-only', '-v', '0x00ff01', f])
    mkdirSync(join(a.cellPath, 'd'))
    await run('setfattr', ['-n', 'user.dir', '-v', 'yes', join(a.cellPath, 'd')])
    const here = await getfattr(f)
    t.deepEqual(Object.keys(here).sort(), ['trusted.root-only', 'user.colour', 'user.empty'])
    t.is(here['user.colour'], 'blue')
    t.is(here['user.empty'], '')
    const fb = join(b.cellPath, 'f')
    t.true(await eventually(async () => (await getfattr(fb))['user.colour'] === 'blue', 3000), 'B sees the attribute')
    t.is((await getfattr(join(b.cellPath, 'd')))['user.dir'], 'yes')
    t.is(await py('print(os.getxattr(sys.argv[1], "trusted.root-only").hex())', fb), '00ff01', 'binary values survive')

    await run('setfattr', ['-n', 'user.colour', '-v', 'green', f])
    await run('setfattr', ['-x', 'user.empty', f])
    t.true(await eventually(async () => { const x = await getfattr(fb); return x['user.colour'] === 'green' && !('user.empty' in x) }, 3000), 'the replace and the remove reach B')

    const before = await rpcs(b)
    for (let i = 0; i < 20; i++) await py('os.getxattr(sys.argv[1], "user.colour"); os.listxattr(sys.argv[1])', fb)
    t.is(await rpcs(b) - before, 0, 'gets and lists of a cached object send no RPC')
  } finally { await stack.unwind() }
})

test.serial('setxattr flags and errors: XATTR_CREATE, XATTR_REPLACE, ENODATA, ERANGE, EPERM on a symlink, EOPNOTSUPP for ACLs, ENOSPC past 64 KiB', async t => {
  const stack = new Stack()
  try {
    const { clients: [a] } = await cell(stack, 1)
    const f = join(a.cellPath, 'f')
    writeFileSync(f, '')
    t.is(await errnoOf('os.setxattr(sys.argv[1], "user.k", b"v", os.XATTR_REPLACE)', f), 'ENODATA', 'replace of a missing attribute')
    t.is(await errnoOf('os.setxattr(sys.argv[1], "user.k", b"v", os.XATTR_CREATE)', f), 'ok')
    t.is(await errnoOf('os.setxattr(sys.argv[1], "user.k", b"w", os.XATTR_CREATE)', f), 'EEXIST', 'create of an existing attribute')
    t.is(await errnoOf('os.setxattr(sys.argv[1], "user.k", b"longer value", os.XATTR_REPLACE)', f), 'ok')
    t.is(await errnoOf('os.getxattr(sys.argv[1], "user.none")', f), 'ENODATA')
    t.is(await errnoOf('os.removexattr(sys.argv[1], "user.none")', f), 'ENODATA')
    const short = 'libc = ctypes.CDLL(None, use_errno=True)\nbuf = ctypes.create_string_buffer(4)\n'
    t.is(await py(`${short}n = libc.getxattr(sys.argv[1].encode(), b"user.k", buf, 4)\nprint(n, errno.errorcode.get(ctypes.get_errno()))`, f), '-1 ERANGE', 'a value longer than the buffer')
    t.is(await py(`${short}print(libc.getxattr(sys.argv[1].encode(), b"user.k", None, 0))`, f), '12', 'an empty buffer asks the size')
    t.is(await py(`${short}n = libc.listxattr(sys.argv[1].encode(), buf, 4)\nprint(n, errno.errorcode.get(ctypes.get_errno()))`, f), '-1 ERANGE', 'a list longer than the buffer')
    await run('ln', ['-s', 'f', join(a.cellPath, 'link')])
    t.is(await errnoOf('os.setxattr(sys.argv[1], "user.k", b"v", follow_symlinks=False)', join(a.cellPath, 'link')), 'EPERM', 'user attributes on a symlink')
    // A well-formed ACL (user::r-x group::r-x other::r-x), so that the kernel passes it on.
    t.is(await errnoOf('os.setxattr(sys.argv[1], "system.posix_acl_access", bytes.fromhex("02000000" + "0100050" + "0ffffffff" + "0400050" + "0ffffffff" + "2000050" + "0ffffffff"))', f), 'ENOTSUP', 'POSIX ACLs (EOPNOTSUPP: the same number)')
    t.is(await errnoOf('[os.setxattr(sys.argv[1], "user.big%d" % i, b"x" * 60000) for i in range(2)]', f), 'ENOSPC', 'more than 64 KiB of attributes')
    t.is(await errnoOf('os.setxattr(sys.argv[1], "user.huge", b"x" * 70000)', f), 'E2BIG', 'a value over 64 KiB')
  } finally { await stack.unwind() }
})

test.serial('attributes set and removed offline are replayed; cp -a, rsync -X and tar --xattrs keep them between clients', async t => {
  const stack = new Stack()
  try {
    const { clients: [a, b] } = await cell(stack, 2)
    const f = join(a.cellPath, 'f')
    writeFileSync(f, 'offline\n')
    await run('setfattr', ['-n', 'user.gone', '-v', 'soon', f])
    readdirSync(a.cellPath)
    await afsOk(['disconnect', '--cache', a.cache])
    await run('setfattr', ['-n', 'user.made', '-v', 'offline', f])
    await run('setfattr', ['-x', 'user.gone', f])
    t.deepEqual(await getfattr(f), { 'user.made': 'offline' }, 'seen offline')
    await afsOk(['reconnect', '--cache', a.cache])
    t.true(await drained(a), 'the log drains')
    t.true(await eventually(async () => JSON.stringify(await getfattr(join(b.cellPath, 'f'))) === JSON.stringify({ 'user.made': 'offline' }), 3000), 'B sees the replayed attributes')

    // cp -a from a local tree into /afs, then within /afs on the other client.
    const local = await tempDir('afs-xattr-')
    stack.defer(local)
    mkdirSync(join(local, 'tree'))
    writeFileSync(join(local, 'tree', 'g'), 'copied\n')
    await run('setfattr', ['-n', 'user.origin', '-v', 'local', join(local, 'tree', 'g')])
    await run('cp', ['-a', join(local, 'tree'), join(a.cellPath, 'tree')])
    t.is((await getfattr(join(a.cellPath, 'tree', 'g')))['user.origin'], 'local', 'cp -a into /afs')
    t.true(await eventually(async () => (await getfattr(join(b.cellPath, 'tree', 'g')))['user.origin'] === 'local', 3000))
    await run('cp', ['-a', join(b.cellPath, 'tree'), join(b.cellPath, 'tree2')])
    t.true(await eventually(async () => (await getfattr(join(a.cellPath, 'tree2', 'g')))['user.origin'] === 'local', 3000), 'cp -a within /afs, seen on A')

    await run('rsync', ['-aX', join(local, 'tree') + '/', join(a.cellPath, 'synced') + '/'])
    t.true(await eventually(async () => (await getfattr(join(b.cellPath, 'synced', 'g')))['user.origin'] === 'local', 3000), 'rsync -X into /afs')
    await run('rsync', ['-aX', join(b.cellPath, 'synced') + '/', join(local, 'back') + '/'])
    t.is((await getfattr(join(local, 'back', 'g')))['user.origin'], 'local', 'rsync -X out of /afs')

    await run('tar', ['--xattrs', '--xattrs-include=user.*', '-cf', join(local, 't.tar'), '-C', a.cellPath, 'tree'])
    mkdirSync(join(b.cellPath, 'untar'))
    await run('tar', ['--xattrs', '--xattrs-include=user.*', '-xf', join(local, 't.tar'), '-C', join(b.cellPath, 'untar')])
    t.true(await eventually(async () => (await getfattr(join(a.cellPath, 'untar', 'tree', 'g')))['user.origin'] === 'local', 3000), 'tar --xattrs out of and into /afs')
  } finally { await stack.unwind() }
})

test.serial('an attribute set offline on a file changed on the server meanwhile is a conflict at the file\'s path, its value kept', async t => {
  const stack = new Stack()
  try {
    const { clients: [a, b] } = await cell(stack, 2)
    const f = join(a.cellPath, 'f')
    writeFileSync(f, 'original\n')
    readFileSync(join(b.cellPath, 'f'))
    await afsOk(['disconnect', '--cache', a.cache])
    await run('setfattr', ['-n', 'user.mine', '-v', 'set offline', f])
    writeFileSync(join(b.cellPath, 'f'), 'changed there\n')
    await afsOk(['reconnect', '--cache', a.cache])
    t.true(await drained(a), 'the log drains')
    const list = JSON.parse(await afsOk(['repair', 'list', '--json', '--cache', a.cache])) as Array<{ path: string, local: { xattrs?: Record<string, string> } }>
    t.deepEqual(list.map(c => c.path), ['/test/f'])
    t.is(Buffer.from(list[0].local.xattrs?.['user.mine'] ?? '', 'base64').toString(), 'set offline')
  } finally { await stack.unwind() }
})
