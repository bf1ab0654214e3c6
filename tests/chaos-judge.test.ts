// The chaos checker judged on hand-made histories: what it must call a loss, and what not.
import test from 'ava'
import { History, type Effect, type FinalObject, type View } from './helpers/chaos/history.ts'

const op = (h: History, client: string, name: string, paths: string[], effects: Effect[]) =>
  h.add({ client, op: name, paths, detail: paths.join(' → '), ok: true, tokens: [], effects })
const dir: FinalObject = { type: 'dir', mode: 0o755 }
const file: FinalObject = { type: 'file', mode: 0o644, content: '' }

/** c0 makes y, goes offline and creates y/b; meanwhile c1 moves y to z; c0 comes back. */
function movedUnderOfflineCreate (): History {
  const h = new History()
  op(h, 'c0', 'mkdir', ['y'], [{ kind: 'exists', path: 'y', type: 'dir' }])
  h.goOffline('c0')
  op(h, 'c0', 'create', ['y/b'], [{ kind: 'exists', path: 'y/b', type: 'file' }])
  op(h, 'c1', 'rename', ['y', 'z'], [{ kind: 'absent', path: 'y' }, { kind: 'exists', path: 'z', type: 'dir' }])
  h.goOnline('c0')
  return h
}

test('an offline create lands where another client moved its directory meanwhile: no loss', t => {
  const server: View = new Map([['z', dir], ['z/b', file]])
  const v = movedUnderOfflineCreate().judge(server, new Map(), [], new Set())
  t.deepEqual(v.losses, [])
})

test('an offline create found neither where it was made nor where its directory went is a loss', t => {
  const server: View = new Map([['z', dir]])
  const v = movedUnderOfflineCreate().judge(server, new Map(), [], new Set())
  t.deepEqual(v.losses, ['step 1 (c0 create y/b): expected y/b to exist as a file, the servers have nothing there'])
})

test('a move made before the client went offline does not excuse a create missing at its own path', t => {
  const h = new History()
  op(h, 'c0', 'mkdir', ['y'], [{ kind: 'exists', path: 'y', type: 'dir' }])
  op(h, 'c1', 'rename', ['y', 'z'], [{ kind: 'absent', path: 'y' }, { kind: 'exists', path: 'z', type: 'dir' }])
  h.drained('c1')
  op(h, 'c0', 'mkdir', ['y'], [{ kind: 'exists', path: 'y', type: 'dir' }])
  h.goOffline('c0')
  op(h, 'c0', 'create', ['y/b'], [{ kind: 'exists', path: 'y/b', type: 'file' }])
  h.goOnline('c0')
  const server: View = new Map([['y', dir], ['z', dir], ['z/b', file]])
  const v = h.judge(server, new Map(), [], new Set())
  t.deepEqual(v.losses, ['step 3 (c0 create y/b): expected y/b to exist as a file, the servers have nothing there'])
})

/** c0 makes b; c1 renames it to x offline; c0 goes offline, c1 replays (seen drained), c0 chmods b; both come back. */
function renamedUnderOfflineChmod (): History {
  const h = new History()
  op(h, 'c0', 'mkfifo', ['b'], [{ kind: 'exists', path: 'b', type: 'fifo' }])
  h.drained('c0')
  h.goOffline('c1')
  op(h, 'c1', 'rename', ['b', 'x'], [{ kind: 'absent', path: 'b' }, { kind: 'exists', path: 'x', type: 'fifo' }])
  h.goOffline('c0')
  h.goOnline('c1')
  op(h, 'c1', 'mkdir', ['z'], [{ kind: 'exists', path: 'z', type: 'dir' }])
  h.drained('c1')
  op(h, 'c0', 'chmod', ['b'], [{ kind: 'mode', path: 'b', mode: 0o755 }])
  h.goOnline('c0')
  return h
}

test('an offline chmod lands on its object wherever another client\'s replayed rename took it; missing there too, a loss', t => {
  const fifo = (mode: number): FinalObject => ({ type: 'fifo', mode })
  const dir: FinalObject = { type: 'dir', mode: 0o755 }
  t.deepEqual(renamedUnderOfflineChmod().judge(new Map([['x', fifo(0o755)], ['z', dir]]), new Map(), [], new Set()).losses, [])
  t.deepEqual(renamedUnderOfflineChmod().judge(new Map([['x', fifo(0o644)], ['z', dir]]), new Map(), [], new Set()).losses,
    ['step 3 (c0 chmod b): expected b to have mode 755, the servers have nothing there'])
})

test('a change kept in a conflict reported at another hard link of its object is no loss', t => {
  const h = new History()
  op(h, 'c0', 'create', ['x'], [{ kind: 'exists', path: 'x', type: 'file' }])
  op(h, 'c0', 'link', ['x', 'y/x'], [{ kind: 'exists', path: 'y/x' }])
  h.drained('c0')
  h.goOffline('c2')
  op(h, 'c2', 'chmod', ['x'], [{ kind: 'mode', path: 'x', mode: 0o644 }])
  h.goOnline('c2')
  const server: View = new Map([['x', { type: 'file', mode: 0o755, content: '' }], ['y', { type: 'dir', mode: 0o755 }], ['y/x', { type: 'file', mode: 0o755, content: '' }]])
  t.deepEqual(h.judge(server, new Map(), [{ client: 'c2', path: 'y/x', kind: 'update/update', copies: [] }], new Set()).losses, [])
  t.deepEqual(h.judge(server, new Map(), [], new Set()).losses, ['step 2 (c2 chmod x): expected x to have mode 644, the servers have file 755 there'])
})
