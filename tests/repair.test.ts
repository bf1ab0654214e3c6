// The repair tool with real processes: conflicts of every kind made by two clients
// (one offline), resolved with each choice through `afs repair`, and the result checked
// byte for byte on the server (a fresh client) and in both clients' views.
import test from 'ava'
import { chownSync, existsSync, lstatSync, mkdirSync, rmdirSync, statSync, symlinkSync, readFileSync, readdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { AFS, Stack, addClient, afs, cell, eventually, startClient, startServer, status, type Client } from './helpers/cell.ts'

interface Conflict {
  id: string
  path: string
  fullPath: string
  kind: string
  local: { type: string, copy: string | null, sha256: string | null, client: string }
  server: { type: string, copy: string | null, sha256: string | null, dataVersion: number | null }
  base: { copy: string } | null
  localCopy: string | null
  serverCopy: string | null
}

async function conflicts (c: Client): Promise<Conflict[]> {
  const r = await afs(['repair', 'list', '--json', '--cache', c.cache])
  if (r.code !== 0) throw new Error(r.stderr)
  return JSON.parse(r.stdout)
}

async function settled (c: Client): Promise<boolean> {
  return await eventually(async () => {
    const s = await status(c) as unknown as { volumes: Array<{ state: string, cml: { records: number } }>, reintegration: { running: string[] } }
    return s.volumes.every(v => v.cml.records === 0 && v.state === 'connected') && (s.reintegration.running?.length ?? 0) === 0
  }, 30_000)
}

/** Takes `a` offline, runs the local and the other side's changes, and brings `a` back. */
async function offline (t: { is: (a: unknown, b: unknown, m?: string) => void }, a: Client, local: () => void, elsewhere: () => void): Promise<void> {
  t.is((await afs(['disconnect', '--cache', a.cache])).code, 0)
  local()
  elsewhere()
  t.is((await afs(['reconnect', '--cache', a.cache])).code, 0)
  t.is(await settled(a), true, 'reintegrated')
}

const repair = (c: Client, ...args: string[]) => afs(['repair', ...args, '--cache', c.cache])
const read = (p: string) => readFileSync(p, 'utf8')
/** Another client sees a change once its kernel's attribute cache (1 s) lapses. */
const sees = async (p: string, text: string) => await eventually(() => existsSync(p) && read(p) === text, 5000) ? text : (existsSync(p) ? read(p) : '(missing)')

test.serial('every kind of conflict resolved with each choice ends the same on the server and on both clients', async t => {
  const stack = new Stack()
  try {
    const { server, clients: [a, b] } = await cell(stack, 2)
    const pa = (x: string) => join(a.cellPath, x)
    const pb = (x: string) => join(b.cellPath, x)
    const files: Record<string, string> = {
      'both.txt': 'original\n', 'merge.txt': 'one\ntwo\nthree\nfour\nfive\n', 'overlap.txt': 'one\ntwo\nthree\n', 'discard.txt': 'original\n',
      'removed-there.txt': 'original\n', 'removed-here.txt': 'original\n', 'renamed-here.txt': 'original\n',
    }
    for (const [f, text] of Object.entries(files)) { writeFileSync(pa(f), text); readFileSync(pa(f)) }
    readdirSync(a.cellPath)
    await offline(t, a, () => {
      writeFileSync(pa('both.txt'), 'local version\n')
      writeFileSync(pa('merge.txt'), 'ONE here\ntwo\nthree\nfour\nfive\n')
      writeFileSync(pa('overlap.txt'), 'one\nTWO here\nthree\n')
      writeFileSync(pa('discard.txt'), 'local, to drop\n')
      writeFileSync(pa('removed-there.txt'), 'updated here\n')
      writeFileSync(pa('same-name.txt'), 'mine\n')
      unlinkSync(pa('removed-here.txt'))
      renameSync(pa('renamed-here.txt'), pa('renamed-to.txt'))
    }, () => {
      writeFileSync(pb('both.txt'), 'server version\n')
      writeFileSync(pb('merge.txt'), 'one\ntwo\nthree\nfour\nFIVE there\n')
      writeFileSync(pb('overlap.txt'), 'one\nTWO there\nthree\n')
      writeFileSync(pb('discard.txt'), 'server, kept\n')
      unlinkSync(pb('removed-there.txt'))
      writeFileSync(pb('same-name.txt'), 'theirs\n')
      writeFileSync(pb('removed-here.txt'), 'updated there\n')
      renameSync(pb('renamed-here.txt'), pb('renamed-there.txt'))
    })
    const list = await conflicts(a)
    const by = Object.fromEntries(list.map(c => [c.path.slice('/test/'.length), c]))
    t.deepEqual(Object.keys(by).sort(), ['both.txt', 'discard.txt', 'merge.txt', 'overlap.txt', 'removed-here.txt', 'removed-there.txt', 'renamed-to.txt', 'same-name.txt'])
    t.is(by['merge.txt'].kind, 'update/update')
    t.truthy(by['merge.txt'].base, 'the common ancestor was kept')
    t.is(read(by['merge.txt'].base!.copy), files['merge.txt'])
    t.regex(by['both.txt'].local.client, /\(/)

    // While pending, the conflicted name takes no remove, rename or replacement (the server's version would go).
    t.throws(() => unlinkSync(pa('both.txt')), { code: 'EROFS' })
    t.throws(() => renameSync(pa('both.txt'), pa('elsewhere.txt')), { code: 'EROFS' })
    writeFileSync(pa('other.txt'), 'other\n')
    t.throws(() => renameSync(pa('other.txt'), pa('both.txt')), { code: 'EROFS' })
    unlinkSync(pa('other.txt'))
    t.is(read(pb('both.txt')), 'server version\n')

    // show: metadata side by side and a three-way view of the text.
    const shown = await repair(a, 'show', pa('merge.txt'))
    t.is(shown.code, 0, shown.stderr)
    t.regex(shown.stdout, /update\/update conflict/)
    t.regex(shown.stdout, /HERE\s+SERVER\s+ANCESTOR/)
    t.regex(shown.stdout, /\+ONE here/)
    t.regex(shown.stdout, /\+FIVE there/)
    t.regex(shown.stdout, /--merge-auto merges them/)
    // A path relative to where the command runs, and an id, name the same conflict.
    const relative = await afs(['repair', 'show', 'merge.txt', '--json', '--cache', a.cache], { cwd: a.cellPath })
    t.is(relative.code, 0, relative.stderr)
    t.is(JSON.parse(relative.stdout).id, by['merge.txt'].id)
    t.is(JSON.parse((await repair(a, 'show', by['merge.txt'].id, '--json')).stdout).path, '/test/merge.txt')
    const shownOverlap = await repair(a, 'show', pa('overlap.txt'))
    t.regex(shownOverlap.stdout, /merge-auto: not possible: 1 change\(s\) overlap/)

    // Each choice.
    const ok = async (...args: string[]) => { const r = await repair(a, 'resolve', ...args); t.is(r.code, 0, `${args.join(' ')}: ${r.stdout}${r.stderr}`); return r }
    await ok(pa('both.txt'), '--keep', 'local')
    await ok(pa('merge.txt'), '--merge-auto')
    const refused = await repair(a, 'resolve', pa('overlap.txt'), '--merge-auto')
    t.is(refused.code, 1)
    t.regex(refused.stdout + refused.stderr, /cannot merge by itself: 1 change\(s\) overlap/)
    const hand = join(a.cache, 'hand-merged.txt')
    writeFileSync(hand, 'one\nTWO, merged by hand\nthree\n')
    await ok(pa('overlap.txt'), '--merge', hand)
    const discarded = await repair(a, 'discard-local', pa('discard.txt'), '--yes')
    t.is(discarded.code, 0, discarded.stderr)
    await ok(pa('removed-there.txt'), '--keep', 'local')
    await ok(pa('same-name.txt'), '--keep', 'both', '--as', 'same-name.mine.txt')
    await ok(pa('removed-here.txt'), '--keep', 'server')
    await ok(pa('renamed-to.txt'), '--keep', 'local')
    t.deepEqual(await conflicts(a), [])

    const expected: Record<string, string> = {
      'both.txt': 'local version\n',
      'merge.txt': 'ONE here\ntwo\nthree\nfour\nFIVE there\n',
      'overlap.txt': 'one\nTWO, merged by hand\nthree\n',
      'discard.txt': 'server, kept\n',
      'removed-there.txt': 'updated here\n',
      'same-name.txt': 'theirs\n',
      'same-name.mine.txt': 'mine\n',
      'removed-here.txt': 'updated there\n',
      'renamed-to.txt': 'original\n',
    }
    const fresh = await addClient(stack, [server.address])
    const names = readdirSync(fresh.cellPath).sort()
    t.deepEqual(names, Object.keys(expected).sort(), 'the server holds exactly the chosen versions')
    for (const root of [fresh.cellPath, a.cellPath, b.cellPath]) {
      for (const [f, text] of Object.entries(expected)) {
        t.false(lstatSync(join(root, f)).isSymbolicLink(), `${f} is a normal file again`)
        t.is(await sees(join(root, f), text), text, `${root}/${f}`)
      }
    }
    t.false(existsSync(pb('renamed-there.txt')), 'keeping the local rename moved the object')
    const history = await repair(a, 'history', '--json')
    t.is(JSON.parse(history.stdout).length, 8)
    // The files of each version stay while the resolution is in the history.
    t.true(existsSync(by['both.txt'].serverCopy!))
  } finally { await stack.unwind() }
})

type Choice = 'local' | 'server' | 'both' | 'merge'
interface Kind {
  kind: string
  /** Before: what both sides start from (name → contents). */
  before: (n: string) => Record<string, string>
  here: (p: (x: string) => string, n: string) => void
  there: (p: (x: string) => string, n: string) => void
  /** Where the conflict shows, and what the server holds after each choice (null: nothing; a `~` name: beside the path). */
  path: (n: string) => string
  after: (n: string, choice: Choice) => Record<string, string | null>
}

const KIND_TABLE: Kind[] = [
  {
    kind: 'update/update',
    before: n => ({ [n]: 'base\n' }),
    here: (p, n) => writeFileSync(p(n), 'L\n'),
    there: (p, n) => writeFileSync(p(n), 'S\n'),
    path: n => n,
    after: (n, c) => ({ local: { [n]: 'L\n' }, server: { [n]: 'S\n' }, both: { [n]: 'S\n', [`~${n}`]: 'L\n' }, merge: { [n]: 'M\n' } })[c],
  },
  {
    kind: 'remove/update',
    before: n => ({ [n]: 'base\n' }),
    here: (p, n) => writeFileSync(p(n), 'L\n'),
    there: (p, n) => unlinkSync(p(n)),
    path: n => n,
    after: (n, c) => ({ local: { [n]: 'L\n' }, server: { [n]: null }, both: { [n]: null, [`~${n}`]: 'L\n' }, merge: { [n]: 'M\n' } })[c],
  },
  {
    kind: 'update/remove',
    before: n => ({ [n]: 'base\n' }),
    here: (p, n) => unlinkSync(p(n)),
    there: (p, n) => writeFileSync(p(n), 'S\n'),
    path: n => n,
    after: (n, c) => ({ local: { [n]: null }, server: { [n]: 'S\n' }, both: { [n]: 'S\n' }, merge: { [n]: 'M\n' } })[c],
  },
  {
    kind: 'name/name',
    before: () => ({}),
    here: (p, n) => writeFileSync(p(n), 'L\n'),
    there: (p, n) => writeFileSync(p(n), 'S\n'),
    path: n => n,
    after: (n, c) => ({ local: { [n]: 'L\n' }, server: { [n]: 'S\n' }, both: { [n]: 'S\n', [`~${n}`]: 'L\n' }, merge: { [n]: 'M\n' } })[c],
  },
  {
    kind: 'rename',
    before: n => ({ [`${n}.orig`]: 'base\n' }),
    here: (p, n) => renameSync(p(`${n}.orig`), p(n)),
    there: (p, n) => renameSync(p(`${n}.orig`), p(`${n}.there`)),
    path: n => n,
    after: (n, c) => ({
      local: { [n]: 'base\n', [`${n}.there`]: null },
      server: { [n]: null, [`${n}.there`]: 'base\n' },
      both: { [n]: null, [`${n}.there`]: 'base\n', [`~${n}`]: 'base\n' },
      merge: { [n]: 'M\n', [`${n}.there`]: null },
    })[c],
  },
]

test.serial('each kind of conflict resolved with each choice: the server and both clients hold exactly the choice', async t => {
  const stack = new Stack()
  try {
    const { server, clients: [a, b] } = await cell(stack, 2)
    mkdirSync(join(a.cellPath, 'm'))
    const pa = (x: string) => join(a.cellPath, 'm', x)
    const pb = (x: string) => join(b.cellPath, 'm', x)
    const choices: Choice[] = ['local', 'server', 'both', 'merge']
    const cases = KIND_TABLE.flatMap(k => choices.map(c => ({ k, c, n: `${k.kind.replace('/', '-')}.${c}.txt` })))
    for (const { k, n } of cases) for (const [f, text] of Object.entries(k.before(n))) writeFileSync(pa(f), text)
    for (const { k, n } of cases) for (const f of Object.keys(k.before(n))) readFileSync(pa(f))
    readdirSync(join(a.cellPath, 'm'))
    await offline(t, a, () => { for (const { k, n } of cases) k.here(pa, n) }, () => { for (const { k, n } of cases) k.there(pb, n) })
    const open = await conflicts(a)
    t.deepEqual(open.map(c => `${c.kind} ${c.path}`).sort(), cases.map(({ k, n }) => `${k.kind} /test/m/${k.path(n)}`).sort())
    const merged = join(a.cache, 'merged.txt')
    writeFileSync(merged, 'M\n')
    for (const { k, c, n } of cases) {
      const args = c === 'merge' ? ['--merge', merged] : ['--keep', c]
      const r = await repair(a, 'resolve', pa(k.path(n)), ...args)
      t.is(r.code, 0, `${k.kind} ${c}: ${r.stdout}${r.stderr}`)
    }
    t.deepEqual(await conflicts(a), [])
    const fresh = await addClient(stack, [server.address])
    const names = readdirSync(join(fresh.cellPath, 'm'))
    const expected = new Map<string, string>()
    for (const { k, c, n } of cases) {
      for (const [f, text] of Object.entries(k.after(n, c))) {
        if (f.startsWith('~')) {
          const stem = f.slice(1, -'.txt'.length)
          const beside = names.filter(x => x.startsWith(`${stem}.conflict-`) && x.endsWith('.txt'))
          t.is(beside.length, 1, `${k.kind} ${c}: one file beside ${n}`)
          if (beside[0]) expected.set(beside[0], text!)
        } else if (text === null) {
          t.false(names.includes(f), `${k.kind} ${c}: no ${f} on the server`)
        } else expected.set(f, text)
      }
    }
    t.deepEqual(names.filter(x => !expected.has(x)), [], 'nothing else on the server')
    for (const [f, text] of expected) {
      for (const root of [fresh.cellPath, a.cellPath, b.cellPath]) t.is(await sees(join(root, 'm', f), text), text, `${root}: ${f}`)
    }
  } finally { await stack.unwind() }
})

test.serial('the same change made on both sides is no conflict', async t => {
  const stack = new Stack()
  try {
    const { server, clients: [a, b] } = await cell(stack, 2)
    writeFileSync(join(a.cellPath, 'edited.txt'), 'before\n')
    writeFileSync(join(a.cellPath, 'moved.txt'), 'moved\n')
    for (const f of ['edited.txt', 'moved.txt']) readFileSync(join(a.cellPath, f))
    readdirSync(a.cellPath)
    const same = (p: (x: string) => string) => {
      writeFileSync(p('edited.txt'), 'after, on both sides\n')
      writeFileSync(p('made.txt'), 'made on both sides\n')
      symlinkSync('edited.txt', p('link'))
      renameSync(p('moved.txt'), p('moved-to.txt'))
    }
    await offline(t, a, () => same(x => join(a.cellPath, x)), () => same(x => join(b.cellPath, x)))
    t.deepEqual(await conflicts(a), [])
    const fresh = await addClient(stack, [server.address])
    t.deepEqual(readdirSync(fresh.cellPath).sort(), ['edited.txt', 'link', 'made.txt', 'moved-to.txt'])
    t.is(read(join(fresh.cellPath, 'made.txt')), 'made on both sides\n')
    t.is(read(join(a.cellPath, 'edited.txt')), 'after, on both sides\n')
    // And the client goes on as usual with the object it shares with the server now.
    writeFileSync(join(a.cellPath, 'made.txt'), 'changed after\n')
    t.is(await sees(join(b.cellPath, 'made.txt'), 'changed after\n'), 'changed after\n')
  } finally { await stack.unwind() }
})

test.serial('keep both puts the local version beside the server one under a clear name; --all resolves many and says what it did', async t => {
  const stack = new Stack()
  try {
    const { clients: [a, b] } = await cell(stack, 2)
    mkdirSync(join(a.cellPath, 'many'))
    const N = 12
    for (let i = 0; i < N; i++) { writeFileSync(join(a.cellPath, 'many', `f${i}.txt`), 'v0\n'); readFileSync(join(a.cellPath, 'many', `f${i}.txt`)) }
    writeFileSync(join(a.cellPath, 'report.txt'), 'v0\n')
    readFileSync(join(a.cellPath, 'report.txt'))
    readdirSync(join(a.cellPath, 'many'))
    await offline(t, a, () => {
      for (let i = 0; i < N; i++) writeFileSync(join(a.cellPath, 'many', `f${i}.txt`), `here ${i}\n`)
      writeFileSync(join(a.cellPath, 'report.txt'), 'here\n')
    }, () => {
      for (let i = 0; i < N; i++) writeFileSync(join(b.cellPath, 'many', `f${i}.txt`), `there ${i}\n`)
      writeFileSync(join(b.cellPath, 'report.txt'), 'there\n')
    })
    t.is((await conflicts(a)).length, N + 1)
    const both = await repair(a, 'resolve', join(a.cellPath, 'report.txt'), '--keep', 'both')
    t.is(both.code, 0, both.stderr)
    const beside = readdirSync(b.cellPath).filter(n => n.startsWith('report.conflict-'))
    t.is(beside.length, 1)
    t.regex(beside[0], /^report\.conflict-\d{8}-\d{6}-[A-Za-z0-9_-]+\.txt$/)
    t.is(await sees(join(b.cellPath, beside[0]), 'here\n'), 'here\n')
    t.true(both.stdout.includes(join(a.cellPath, beside[0])), both.stdout)
    t.is(await sees(join(b.cellPath, 'report.txt'), 'there\n'), 'there\n')

    const bad = await repair(a, 'resolve', '--all', '--keep', 'sideways')
    t.is(bad.code, 2)
    const dry = await repair(a, 'resolve', '--all', '--keep', 'local', '--prefix', join(a.cellPath, 'many'), '--dry-run')
    t.is(dry.code, 0, dry.stderr)
    t.is(dry.stdout.split('\n').filter(l => / would put the local version \(\d+ B, changed .*\) in place of the server's version \d+ \(\d+ B\)$/.test(l)).length, N)
    t.regex(dry.stdout, /nothing changed \(--dry-run\)/)
    t.is((await conflicts(a)).length, N)
    const all = await repair(a, 'resolve', '--all', '--keep', 'local', '--prefix', join(a.cellPath, 'many'))
    t.is(all.code, 0, all.stderr)
    t.is(all.stdout.split('\n').filter(l => /: put the local version on the server$/.test(l)).length, N)
    t.regex(all.stdout, new RegExp(`${N} of ${N} resolved`))
    t.deepEqual(await conflicts(a), [])
    for (let i = 0; i < N; i++) t.is(await sees(join(b.cellPath, 'many', `f${i}.txt`), `here ${i}\n`), `here ${i}\n`)
  } finally { await stack.unwind() }
})

test.serial('two clients resolving the same conflict at once: one clean result, the other told why', async t => {
  const stack = new Stack()
  try {
    const { clients: [a, c, b] } = await cell(stack, 3)
    writeFileSync(join(a.cellPath, 'shared.txt'), 'original\n')
    for (const x of [a, c]) readFileSync(join(x.cellPath, 'shared.txt'))
    for (const x of [a, c]) t.is((await afs(['disconnect', '--cache', x.cache])).code, 0)
    writeFileSync(join(a.cellPath, 'shared.txt'), 'from a\n')
    writeFileSync(join(c.cellPath, 'shared.txt'), 'from c\n')
    writeFileSync(join(b.cellPath, 'shared.txt'), 'from b\n')
    for (const x of [a, c]) t.is((await afs(['reconnect', '--cache', x.cache])).code, 0)
    for (const x of [a, c]) t.true(await settled(x))
    t.is((await conflicts(a)).length, 1)
    t.is((await conflicts(c)).length, 1)
    const [ra, rc] = await Promise.all([a, c].map(x => repair(x, 'resolve', join(x.cellPath, 'shared.txt'), '--keep', 'local')))
    t.deepEqual([ra.code, rc.code].sort(), [0, 1], ra.stdout + ra.stderr + rc.stdout + rc.stderr)
    const [winner, loser, loserOut] = ra.code === 0 ? [a, c, rc] : [c, a, ra]
    const won = winner === a ? 'from a\n' : 'from c\n'
    t.regex(loserOut.stdout + loserOut.stderr, /changed on the server since the conflict was found/)
    t.is(await sees(join(b.cellPath, 'shared.txt'), won), won)
    // The loser still has both versions, the server side now being the winner's.
    const [left] = await conflicts(loser)
    t.is(read(left.localCopy!), loser === a ? 'from a\n' : 'from c\n')
    t.is(read(left.serverCopy!), won)
    // Keeping the server's version is checked too: a change after the user looked is not taken blindly.
    writeFileSync(join(b.cellPath, 'shared.txt'), 'from b, later\n')
    const stale = await repair(loser, 'resolve', join(loser.cellPath, 'shared.txt'), '--keep', 'server')
    t.is(stale.code, 1)
    t.regex(stale.stdout, /changed on the server since the conflict was found/)
    t.is(read((await conflicts(loser))[0].serverCopy!), 'from b, later\n', 'show has the new server version')
    t.is((await repair(loser, 'resolve', join(loser.cellPath, 'shared.txt'), '--keep', 'server')).code, 0)
    const won2 = 'from b, later\n'
    for (const x of [a, b, c]) t.is(await sees(join(x.cellPath, 'shared.txt'), won2), won2)
  } finally { await stack.unwind() }
})

test.serial('resolvers resolve new conflicts by themselves, recorded so that they can be undone', async t => {
  const stack = new Stack()
  try {
    const { clients: [a, b] } = await cell(stack, 2)
    const add = await repair(a, 'resolver', 'add', '*.ics', 'cat %L %S > %O')
    t.is(add.code, 0, add.stderr)
    t.is((await repair(a, 'resolver', 'add', join(a.cellPath, '**', '*.md'), 'merge-auto')).code, 0)
    t.is((await repair(a, 'resolver', 'add', '*.fail', 'exit 3')).code, 0)
    t.is((await repair(a, 'resolver', 'add', '*.who', 'id -u > %O')).code, 0)
    const listed = await repair(a, 'resolver', 'list', '--json')
    t.is(JSON.parse(listed.stdout).length, 4)
    const files = { 'cal.ics': 'BEGIN\n', 'notes.md': 'a\nb\nc\n', 'x.fail': 'x\n', 'owner.who': '?\n' }
    for (const [f, text] of Object.entries(files)) { writeFileSync(join(a.cellPath, f), text); readFileSync(join(a.cellPath, f)) }
    chownSync(join(a.cellPath, 'owner.who'), 65534, 65534)
    statSync(join(a.cellPath, 'owner.who'))
    await offline(t, a, () => {
      writeFileSync(join(a.cellPath, 'cal.ics'), 'EVENT here\n')
      writeFileSync(join(a.cellPath, 'notes.md'), 'A\nb\nc\n')
      writeFileSync(join(a.cellPath, 'x.fail'), 'here\n')
      writeFileSync(join(a.cellPath, 'owner.who'), 'here\n')
    }, () => {
      writeFileSync(join(b.cellPath, 'cal.ics'), 'EVENT there\n')
      writeFileSync(join(b.cellPath, 'notes.md'), 'a\nb\nC\n')
      writeFileSync(join(b.cellPath, 'x.fail'), 'there\n')
      writeFileSync(join(b.cellPath, 'owner.who'), 'there\n')
    })
    t.true(await eventually(async () => (await conflicts(a)).length === 1, 20_000), 'the three resolvers resolved theirs')
    // A resolver runs as the owner of the file, not as the (root) cache manager.
    t.is(await sees(join(b.cellPath, 'owner.who'), process.getuid!() === 0 ? '65534\n' : `${process.getuid!()}\n`), process.getuid!() === 0 ? '65534\n' : `${process.getuid!()}\n`)
    t.is((await conflicts(a))[0].path, '/test/x.fail', 'a failing resolver leaves the conflict')
    t.is(await sees(join(b.cellPath, 'cal.ics'), 'EVENT here\nEVENT there\n'), 'EVENT here\nEVENT there\n')
    t.is(await sees(join(b.cellPath, 'notes.md'), 'A\nb\nC\n'), 'A\nb\nC\n')
    const history = JSON.parse((await repair(a, 'history', '--json')).stdout) as Array<{ id: string, path: string, by: string }>
    const cal = history.find(h => h.path === '/test/cal.ics')!
    t.is(cal.by, 'resolver *.ics')
    // What a resolver did can be inspected: both versions as they were, and what it put there.
    const inspected = await repair(a, 'show', cal.id)
    t.is(inspected.code, 0, inspected.stderr)
    t.regex(inspected.stdout, /resolved .* by resolver \*\.ics \(merge\): put the resolver's version on the server/)
    t.regex(inspected.stdout, /\+EVENT here/)
    // Undo: the server gets back what it had, and the conflict is open again.
    const undo = await repair(a, 'undo', cal.id)
    t.is(undo.code, 0, undo.stderr)
    t.is(await sees(join(b.cellPath, 'cal.ics'), 'EVENT there\n'), 'EVENT there\n')
    const open = await conflicts(a)
    t.deepEqual(open.map(c => c.path).sort(), ['/test/cal.ics', '/test/x.fail'])
    t.is(read(open.find(c => c.path === '/test/cal.ics')!.localCopy!), 'EVENT here\n')
    t.true(lstatSync(join(a.cellPath, 'cal.ics')).isSymbolicLink(), 'marked again')
    t.is((await repair(a, 'resolve', join(a.cellPath, 'cal.ics'), '--keep', 'local')).code, 0)
    t.is(await sees(join(b.cellPath, 'cal.ics'), 'EVENT here\n'), 'EVENT here\n')
    // An undo that would lose a later change refuses.
    writeFileSync(join(b.cellPath, 'notes.md'), 'A\nb\nC\nlater\n')
    const notes = history.find(h => h.path === '/test/notes.md')!
    const late = await repair(a, 'undo', notes.id)
    t.is(late.code, 1)
    t.regex(late.stderr, /changed on the server after the repair/)
    t.is(read(join(b.cellPath, 'notes.md')), 'A\nb\nC\nlater\n')
  } finally { await stack.unwind() }
})

test.serial('a repair cut by a SIGKILL of the cache manager loses neither version; directories made on both sides merge', async t => {
  const stack = new Stack()
  try {
    const server = await startServer()
    stack.defer(server.dataDir)
    stack.push(() => server.stop())
    const b = await addClient(stack, [server.address])
    const first = await startClient([server.address])
    stack.defer(first.cache)
    stack.defer(first.mount)
    const box = { a: first }
    stack.push(() => box.a.stop())
    writeFileSync(join(first.cellPath, 'f.txt'), 'original\n')
    readFileSync(join(first.cellPath, 'f.txt'))
    readdirSync(first.cellPath)
    await offline(t, first, () => {
      writeFileSync(join(first.cellPath, 'f.txt'), 'local\n')
      mkdirSync(join(first.cellPath, 'proj'))
      writeFileSync(join(first.cellPath, 'proj', 'mine.txt'), 'mine\n')
    }, () => {
      writeFileSync(join(b.cellPath, 'f.txt'), 'server\n')
      mkdirSync(join(b.cellPath, 'proj'))
      writeFileSync(join(b.cellPath, 'proj', 'theirs.txt'), 'theirs\n')
    })
    const [c] = await conflicts(first)
    t.is(c.path, '/test/f.txt', 'the directory made on both sides is one directory, not a conflict')
    t.deepEqual(readdirSync(join(b.cellPath, 'proj')).sort(), ['mine.txt', 'theirs.txt'])
    // No repair while the server is out of reach (here: the user disconnected).
    t.is((await afs(['disconnect', '--cache', first.cache])).code, 0)
    const away = await repair(first, 'resolve', join(first.cellPath, 'f.txt'), '--keep', 'local')
    t.is(away.code, 1)
    t.regex(away.stdout, /its server is not reachable now/)
    t.is((await afs(['reconnect', '--cache', first.cache])).code, 0)
    t.true(await settled(first))
    // Freeze the server so the repair hangs mid-way, then kill the cache manager under it.
    server.proc.kill('SIGSTOP')
    const pending = repair(first, 'resolve', join(first.cellPath, 'f.txt'), '--keep', 'local')
    await new Promise(r => setTimeout(r, 500))
    await first.stop('SIGKILL')
    server.proc.kill('SIGCONT')
    t.not((await pending).code, 0)
    box.a = await startClient([server.address], { cache: first.cache, mount: first.mount })
    const [still] = await conflicts(box.a)
    t.is(still.id, c.id)
    t.is(read(still.localCopy!), 'local\n')
    t.is(read(still.serverCopy!), 'server\n')
    const again = await repair(box.a, 'resolve', join(box.a.cellPath, 'f.txt'), '--keep', 'local')
    t.is(again.code, 0, again.stdout + again.stderr)
    t.is(await sees(join(b.cellPath, 'f.txt'), 'local\n'), 'local\n')
  } finally { await stack.unwind() }
})

test.serial('a directory made here where the server made a file: kept beside it, then its entries one by one', async t => {
  const stack = new Stack()
  try {
    const { server, clients: [a, b] } = await cell(stack, 2)
    mkdirSync(join(a.cellPath, 'old'))
    readdirSync(join(a.cellPath, 'old'))
    readdirSync(a.cellPath)
    await offline(t, a, () => {
      rmdirSync(join(a.cellPath, 'old'))
      mkdirSync(join(a.cellPath, 'x'))
      writeFileSync(join(a.cellPath, 'x', 'one.txt'), 'one\n')
      writeFileSync(join(a.cellPath, 'x', 'two.txt'), 'two\n')
    }, () => {
      writeFileSync(join(b.cellPath, 'x'), 'a file\n')
      writeFileSync(join(b.cellPath, 'old', 'new.txt'), 'new there\n')
    })
    const list = await conflicts(a)
    t.deepEqual(list.map(c => c.path).sort(), ['/test/old', '/test/x', '/test/x/one.txt', '/test/x/two.txt'])
    // A directory removed here that gained entries there: the entries are shown, and removing it is refused.
    t.regex((await repair(a, 'show', join(a.cellPath, 'old'))).stdout, /new\.txt\s+only on the server/)
    const rm = await repair(a, 'resolve', join(a.cellPath, 'old'), '--keep', 'local')
    t.is(rm.code, 1)
    t.regex(rm.stdout, /the server's directory has entries/)
    t.is((await repair(a, 'resolve', join(a.cellPath, 'old'), '--keep', 'server')).code, 0)
    t.is(await sees(join(a.cellPath, 'old', 'new.txt'), 'new there\n'), 'new there\n')
    const early = await repair(a, 'resolve', join(a.cellPath, 'x', 'one.txt'), '--keep', 'local')
    t.is(early.code, 1)
    t.regex(early.stdout, /resolve \/test\/x first/)
    const shown = await repair(a, 'show', join(a.cellPath, 'x'))
    t.regex(shown.stdout, /one\.txt\s+only here/)
    t.is((await repair(a, 'resolve', join(a.cellPath, 'x'), '--keep', 'both', '--as', 'x-mine')).code, 0)
    const all = await repair(a, 'resolve', '--all', '--keep', 'local')
    t.is(all.code, 0, all.stdout + all.stderr)
    const fresh = await addClient(stack, [server.address])
    t.is(read(join(fresh.cellPath, 'x')), 'a file\n')
    t.deepEqual(readdirSync(join(fresh.cellPath, 'x-mine')).sort(), ['one.txt', 'two.txt'])
    t.is(read(join(fresh.cellPath, 'x-mine', 'two.txt')), 'two\n')
    t.is(await sees(join(a.cellPath, 'x-mine', 'one.txt'), 'one\n'), 'one\n')
  } finally { await stack.unwind() }
})

test.serial('afs repair interactive walks through the conflicts, shows each and asks', async t => {
  const stack = new Stack()
  try {
    const { clients: [a, b] } = await cell(stack, 2)
    for (const f of ['p.txt', 'q.txt']) { writeFileSync(join(a.cellPath, f), 'base\n'); readFileSync(join(a.cellPath, f)) }
    await offline(t, a, () => {
      for (const f of ['p.txt', 'q.txt']) writeFileSync(join(a.cellPath, f), `${f} here\n`)
    }, () => {
      for (const f of ['p.txt', 'q.txt']) writeFileSync(join(b.cellPath, f), `${f} there\n`)
    })
    const r = await new Promise<{ code: number | null, out: string }>(resolve => {
      const p = spawn(process.execPath, [AFS, 'repair', 'interactive', '--cache', a.cache], { stdio: ['pipe', 'pipe', 'pipe'] })
      let out = ''
      p.stdout.on('data', d => { out += d })
      p.stderr.on('data', d => { out += d })
      p.on('exit', code => resolve({ code, out }))
      p.stdin.end('x\ns\nl\n')
    })
    t.is(r.code, 0, r.out)
    t.regex(r.out, /\(1\/2\) .*p\.txt: update\/update conflict/)
    t.regex(r.out, /say one of/)
    t.regex(r.out, /2 of 2 resolved/)
    t.deepEqual(await conflicts(a), [])
    t.is(await sees(join(b.cellPath, 'p.txt'), 'p.txt there\n'), 'p.txt there\n')
    t.is(await sees(join(b.cellPath, 'q.txt'), 'q.txt here\n'), 'q.txt here\n')
  } finally { await stack.unwind() }
})

test.serial('afs repair refuses bad input clearly', async t => {
  const stack = new Stack()
  try {
    const { clients: [a] } = await cell(stack, 1)
    const cases: Array<[string[], number, RegExp]> = [
      [['resolve', join(a.cellPath, 'nothing.txt'), '--keep', 'local'], 1, /no conflict at/],
      [['resolve', join(a.cellPath, 'x'), '--keep', 'local', '--merge-auto'], 2, /one of --keep/],
      [['resolve', join(a.cellPath, 'x'), '--keep', 'local', '--as', 'y'], 2, /--as goes with --keep both/],
      [['resolve', '--all', '--keep', 'local', '--kind', 'weird'], 2, /--kind <kind>' argument 'weird' is invalid. Allowed choices are update\/update/],
      [['show'], 2, /afs repair show: missing required argument 'ref'/],
      [['frobnicate'], 2, /afs repair: unknown command 'frobnicate'/],
      [['undo', 'no-such-id'], 1, /no resolution no-such-id/],
      [['resolver', 'add', '*.x'], 2, /afs repair resolver add: missing required argument 'command'/],
      [['discard-local', '/elsewhere/file'], 1, /not under the mount/],
    ]
    for (const [args, code, re] of cases) {
      const r = await repair(a, ...args)
      t.is(r.code, code, args.join(' '))
      t.regex(r.stderr + r.stdout, re, args.join(' '))
    }
    t.is((await repair(a, 'list')).stdout, 'no conflicts\n')
  } finally { await stack.unwind() }
})
