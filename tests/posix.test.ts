// What tools expect of a file system, through a real mount: exact times (the binding
// patch), ownership by the creating user (the patch), permissions, links, renames,
// errnos, and real tools (tar, cp -r, git).
import test from 'ava'
import { execFileSync } from 'node:child_process'
import {
  chmodSync, constants, linkSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, rmdirSync,
  statSync, symlinkSync, truncateSync, unlinkSync, utimesSync, writeFileSync, existsSync,
} from 'node:fs'
import { join } from 'node:path'
import { Stack, cell, type Client } from './helpers/cell.ts'

let stack: Stack
let client: Client

test.before(async () => {
  stack = new Stack()
  client = (await cell(stack, 1, {}, true)).clients[0]
})
test.after.always(async () => { await stack.unwind() })

const p = (...parts: string[]) => join(client.cellPath, ...parts)
const asNobody = (...cmd: string[]) => execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })

test('touch -m sets exactly the mtime and leaves the atime (utimens patch)', t => {
  writeFileSync(p('times.txt'), 'x')
  utimesSync(p('times.txt'), new Date('2003-03-03T03:03:03.250Z'), new Date('2003-03-03T03:03:03.250Z'))
  execFileSync('touch', ['-m', '-d', '2001-02-03T04:05:06.125Z', p('times.txt')])
  const s = statSync(p('times.txt'))
  t.is(s.mtime.toISOString(), '2001-02-03T04:05:06.125Z')
  t.is(s.atime.toISOString(), '2003-03-03T03:03:03.250Z')
  execFileSync('touch', ['-a', '-d', '2002-02-02T02:02:02Z', p('times.txt')])
  const s2 = statSync(p('times.txt'))
  t.is(s2.mtime.toISOString(), '2001-02-03T04:05:06.125Z')
  t.is(s2.atime.toISOString(), '2002-02-02T02:02:02.000Z')
})

test('cp -p and tar x keep modification times', t => {
  mkdirSync(p('src'))
  const local = join(client.cache, '..', `cp-src-${process.pid}`)
  writeFileSync(local, 'payload')
  utimesSync(local, new Date('2010-01-01T00:00:00Z'), new Date('2011-06-15T12:34:56.789Z'))
  execFileSync('cp', ['-p', local, p('src', 'copied')])
  t.is(statSync(p('src', 'copied')).mtime.toISOString(), '2011-06-15T12:34:56.789Z')
  execFileSync('tar', ['cf', `${local}.tar`, '-C', join(local, '..'), `cp-src-${process.pid}`])
  mkdirSync(p('untar'))
  execFileSync('tar', ['xf', `${local}.tar`, '-C', p('untar')])
  t.is(statSync(p('untar', `cp-src-${process.pid}`)).mtime.toISOString(), '2011-06-15T12:34:56.000Z')
  rmSync(local); rmSync(`${local}.tar`)
})

test('files and directories created through the mount belong to the user who created them', t => {
  mkdirSync(p('shared'))
  chmodSync(p('shared'), 0o777)
  asNobody('touch', p('shared', 'by-nobody'))
  asNobody('mkdir', p('shared', 'dir-by-nobody'))
  for (const name of ['by-nobody', 'dir-by-nobody']) {
    const s = statSync(p('shared', name))
    t.is(s.uid, 65534, name)
    t.is(s.gid, 65534, name)
  }
})

test('Unix permissions are enforced for other users', t => {
  mkdirSync(p('private'), 0o700)
  writeFileSync(p('private', 'secret'), 'no')
  chmodSync(p('private'), 0o700)
  const err = t.throws<NodeJS.ErrnoException & { status?: number }>(() => asNobody('cat', p('private', 'secret')))
  t.regex(String(err?.message), /Permission denied/)
  writeFileSync(p('readonly.txt'), 'r')
  chmodSync(p('readonly.txt'), 0o644)
  t.throws<NodeJS.ErrnoException & { status?: number }>(() => asNobody('sh', '-c', `echo x > ${p('readonly.txt')}`))
  t.is(asNobody('cat', p('readonly.txt')), 'r')
})

test('symlinks, hard links, renames and errnos', t => {
  writeFileSync(p('target.txt'), 'target')
  symlinkSync('target.txt', p('link'))
  t.is(readlinkSync(p('link')), 'target.txt')
  t.true(lstatSync(p('link')).isSymbolicLink())
  t.is(readFileSync(p('link'), 'utf8'), 'target')
  linkSync(p('target.txt'), p('hard.txt'))
  t.is(readFileSync(p('hard.txt'), 'utf8'), 'target')
  unlinkSync(p('target.txt'))
  t.is(readFileSync(p('hard.txt'), 'utf8'), 'target')
  mkdirSync(p('a'))
  mkdirSync(p('a', 'b'))
  writeFileSync(p('a', 'b', 'f'), 'f')
  renameSync(p('a', 'b'), p('b2'))
  t.is(readFileSync(p('b2', 'f'), 'utf8'), 'f')
  writeFileSync(p('over'), 'old')
  writeFileSync(p('newer'), 'new')
  renameSync(p('newer'), p('over'))
  t.is(readFileSync(p('over'), 'utf8'), 'new')
  t.false(existsSync(p('newer')))
  t.is(t.throws<NodeJS.ErrnoException & { status?: number }>(() => readFileSync(p('missing')))?.code, 'ENOENT')
  t.is(t.throws<NodeJS.ErrnoException & { status?: number }>(() => mkdirSync(p('a')))?.code, 'EEXIST')
  writeFileSync(p('a', 'x'), 'x')
  t.is(t.throws<NodeJS.ErrnoException & { status?: number }>(() => rmSync(p('a'), { recursive: false }))?.code, 'ERR_FS_EISDIR')
  t.is(t.throws<NodeJS.ErrnoException & { status?: number }>(() => execFileSync('rmdir', [p('a')], { stdio: 'pipe' }))?.status, 1)
  t.is(t.throws<NodeJS.ErrnoException & { status?: number }>(() => renameSync(p('b2'), p('b2', 'inside')))?.code, 'EINVAL')
  truncateSync(p('over'), 1)
  t.is(readFileSync(p('over'), 'utf8'), 'n')
  t.deepEqual(readdirSync(p('a')).sort(), ['x'])
})

test('cp -r and git clone into the mount work', t => {
  const repo = join(import.meta.dirname, '..')
  execFileSync('cp', ['-r', join(repo, 'packages'), p('copy')])
  t.is(readFileSync(p('copy', 'common', 'src', 'fid.ts'), 'utf8'), readFileSync(join(repo, 'packages', 'common', 'src', 'fid.ts'), 'utf8'))
  execFileSync('git', ['init', '-q', p('repo')])
  writeFileSync(p('repo', 'README'), 'hello\n')
  execFileSync('git', ['-C', p('repo'), 'add', '.'])
  execFileSync('git', ['-C', p('repo'), '-c', 'user.name=t', '-c', 'user.email=t@example.org', 'commit', '-qm', 'first'])
  execFileSync('git', ['clone', '-q', p('repo'), p('clone')])
  t.is(readFileSync(p('clone', 'README'), 'utf8'), 'hello\n')
  t.is(execFileSync('git', ['-C', p('clone'), 'status', '--porcelain'], { encoding: 'utf8' }), '')
})

/** What a call ended with: 'ok' or its errno code. */
const code = (f: () => unknown) => { try { f(); return 'ok' } catch (err) { return (err as NodeJS.ErrnoException).code } }

test('a name over 255 bytes is ENAMETOOLONG for every operation; 255 bytes is fine', t => {
  const long = 'n'.repeat(256)
  const wide = 'é'.repeat(128) // 256 bytes in UTF-8, 128 characters
  mkdirSync(p('names'))
  for (const name of [long, wide]) {
    t.is(code(() => writeFileSync(p('names', name), 'x')), 'ENAMETOOLONG')
    t.is(code(() => mkdirSync(p('names', name))), 'ENAMETOOLONG')
    t.is(code(() => statSync(p('names', name))), 'ENAMETOOLONG')
    t.is(code(() => symlinkSync('x', p('names', name))), 'ENAMETOOLONG')
  }
  writeFileSync(p('names', 'x'), 'x')
  t.is(code(() => renameSync(p('names', 'x'), p('names', long))), 'ENAMETOOLONG')
  t.is(code(() => linkSync(p('names', 'x'), p('names', long))), 'ENAMETOOLONG')
  const max = 'm'.repeat(255)
  writeFileSync(p('names', max), 'at the limit')
  t.is(readFileSync(p('names', max), 'utf8'), 'at the limit')
  t.deepEqual(readdirSync(p('names')).sort(), [max, 'x'].sort())
})

test('each operation\'s POSIX errors: EEXIST, ENOTEMPTY, ENOTDIR, EISDIR, EINVAL, ELOOP, EACCES, EPERM with the sticky bit, and setuid/setgid cleared by chown and write', t => {
  const code = (fn: () => unknown) => t.throws<NodeJS.ErrnoException>(fn)?.code
  const denied = (...cmd: string[]) => { try { asNobody(...cmd); return 'ok' } catch (e) { return String((e as { stderr?: string }).stderr ?? e) } }
  mkdirSync(p('e'))
  mkdirSync(p('e', 'full'))
  writeFileSync(p('e', 'full', 'x'), 'x')
  mkdirSync(p('e', 'empty'))
  writeFileSync(p('e', 'file'), 'f')
  t.is(code(() => mkdirSync(p('e', 'file'))), 'EEXIST', 'mkdir over a file')
  t.is(code(() => linkSync(p('e', 'file'), p('e', 'full'))), 'EEXIST', 'link over a name')
  t.is(code(() => symlinkSync('anything', p('e', 'file'))), 'EEXIST', 'symlink over a name')
  t.is(code(() => rmdirSync(p('e', 'full'))), 'ENOTEMPTY')
  t.is(code(() => renameSync(p('e', 'empty'), p('e', 'full'))), 'ENOTEMPTY', 'a directory onto a full one')
  t.is(code(() => readFileSync(p('e', 'file', 'below'))), 'ENOTDIR', 'a path through a file')
  t.is(code(() => rmdirSync(p('e', 'file'))), 'ENOTDIR')
  t.is(code(() => renameSync(p('e', 'empty'), p('e', 'file'))), 'ENOTDIR', 'a directory onto a file')
  t.is(code(() => unlinkSync(p('e', 'empty'))), 'EISDIR')
  t.is(code(() => writeFileSync(p('e', 'empty'), 'x')), 'EISDIR', 'a directory opened for writing')
  t.is(code(() => renameSync(p('e', 'file'), p('e', 'empty'))), 'EISDIR', 'a file onto a directory')
  mkdirSync(p('e', 'full', 'sub'))
  t.is(code(() => renameSync(p('e', 'full'), p('e', 'full', 'sub', 'inside'))), 'EINVAL', 'a directory into its own subtree')
  symlinkSync('loop2', p('e', 'loop1'))
  symlinkSync('loop1', p('e', 'loop2'))
  t.is(code(() => readFileSync(p('e', 'loop1'))), 'ELOOP', 'a symlink loop')
  t.is(code(() => openSync(p('e', 'loop1'), constants.O_RDONLY | constants.O_NOFOLLOW)), 'ELOOP', 'O_NOFOLLOW on a symlink')

  // Other users: a directory they may not write, someone else's file, the sticky bit.
  chmodSync(p('e', 'empty'), 0o755)
  t.regex(denied('touch', p('e', 'empty', 'new')), /Permission denied/, 'EACCES: no write permission on the directory')
  mkdirSync(p('e', 'tmp'))
  chmodSync(p('e', 'tmp'), 0o1777)
  writeFileSync(p('e', 'tmp', 'roots'), 'r')
  chmodSync(p('e', 'tmp', 'roots'), 0o666)
  t.regex(denied('rm', '-f', p('e', 'tmp', 'roots')), /Operation not permitted/, 'EPERM: the sticky bit keeps others\' files')
  t.is(denied('touch', p('e', 'tmp', 'theirs')), 'ok', 'anyone creates in a sticky directory')
  t.is(denied('rm', p('e', 'tmp', 'theirs')), 'ok', 'and removes their own')
  t.regex(denied('chmod', '600', p('e', 'tmp', 'roots')), /Operation not permitted/, 'EPERM: chmod of another\'s file')
  t.regex(denied('chown', '65534', p('e', 'tmp', 'roots')), /Operation not permitted/, 'EPERM: chown by a non-root user')

  writeFileSync(p('e', 'suid'), '#!/bin/sh\n')
  chmodSync(p('e', 'suid'), 0o6755)
  execFileSync('chown', ['65534:65534', p('e', 'suid')])
  t.is(statSync(p('e', 'suid')).mode & 0o7777, 0o755, 'chown clears setuid and setgid')
  chmodSync(p('e', 'suid'), 0o4777)
  execFileSync('setpriv', ['--reuid=65533', '--regid=65533', '--clear-groups', 'sh', '-c', `echo >> ${p('e', 'suid')}`])
  t.is(statSync(p('e', 'suid')).mode & 0o7777, 0o777, 'a write by another user clears setuid')
})
