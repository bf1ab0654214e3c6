// A container read while its fetch fills it: readers get each byte once it is written and
// the last ones only once the whole transfer ended well; a failed transfer fails them.
import test from 'ava'
import { read as fsRead } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { ContainerStore } from '../src/container-file.ts'
import { Fillings, type Filling } from '../src/filling.ts'

/** A fetch's body whose chunks the test hands over one by one (or fails). */
function feed () {
  const queue: Array<Buffer | Error | null> = []
  let wake: (() => void) | null = null
  const push = (x: Buffer | Error | null) => { queue.push(x); wake?.() }
  async function * body (): AsyncIterable<Buffer> {
    for (;;) {
      while (queue.length === 0) await new Promise<void>(resolve => { wake = resolve })
      const x = queue.shift()!
      if (x === null) return
      if (x instanceof Error) throw x
      yield x
    }
  }
  return { push, body: body() }
}

const readAt = (f: Filling, pos: number, len: number) => new Promise<Buffer>((resolve, reject) => {
  const buf = Buffer.alloc(len)
  fsRead(f.fd, buf, 0, len, pos, (err, n) => err ? reject(err) : resolve(buf.subarray(0, n)))
})

/** Whether `p` settles within a few event-loop turns. */
async function settles (p: Promise<unknown>): Promise<boolean> {
  let done = false
  p.then(() => { done = true }, () => { done = true })
  for (let i = 0; i < 20; i++) await new Promise(resolve => setImmediate(resolve))
  return done
}

async function store (t: { teardown: (fn: () => Promise<void>) => void }): Promise<ContainerStore> {
  const d = await mkdtemp(join(tmpdir(), 'afs-filling-'))
  t.teardown(async () => { await rm(d, { recursive: true, force: true }) })
  const containers = new ContainerStore(d)
  await containers.ready()
  return containers
}

test('a reader reads each part once it is in, the end only once the transfer ended; the container is whole after', async t => {
  const containers = await store(t)
  const fillings = new Fillings(containers)
  const data = randomBytes(3 * 65536)
  const { push, body } = feed()
  let finish!: () => void
  const fetched = new Promise<void>(resolve => { finish = resolve })
  const taking = fillings.take('k', fetched)
  const filling = fillings.fill('k', body, data.length)
  const f = (await taking)!
  t.truthy(f, 'the opener got the filling before any byte came in')
  const first = f.until(65536)
  t.false(await settles(first), 'nothing is in yet')
  push(data.subarray(0, 65536))
  await first
  t.deepEqual(await readAt(f, 0, 65536), data.subarray(0, 65536))
  push(data.subarray(65536))
  const end = f.until(data.length)
  t.false(await settles(end), 'every byte is in, but the transfer has not ended')
  push(null)
  t.is(await filling, data.length)
  await end
  t.deepEqual(await readAt(f, 0, data.length), data)
  finish()
  t.false(f.acquire(), 'a later opener reads the container itself')
  f.release()
  t.deepEqual(await readFile(containers.path('k')), data)
})

test('a transfer that fails fails its waiting readers, and leaves no container', async t => {
  const containers = await store(t)
  const fillings = new Fillings(containers)
  const { push, body } = feed()
  let fail!: (err: Error) => void
  const fetched = new Promise<void>((_resolve, reject) => { fail = reject })
  const taking = fillings.take('k', fetched)
  const filling = fillings.fill('k', body, 1000)
  const f = (await taking)!
  push(Buffer.alloc(100, 1))
  await f.until(100)
  const rest = f.until(1000)
  push(new Error('server gone'))
  await t.throwsAsync(filling, { message: /server gone/ })
  await t.throwsAsync(rest, { message: /server gone/ })
  await t.throwsAsync(f.until(10), { message: /server gone/ }, 'and reads after it')
  fail(new Error('server gone'))
  f.release()
  await t.throwsAsync(readFile(containers.path('k')), { code: 'ENOENT' })
})

test('an opener whose fetch ends before any filling is published reads the container (null)', async t => {
  const containers = await store(t)
  const fillings = new Fillings(containers)
  const { push, body } = feed()
  push(Buffer.from('whole'))
  push(null)
  // A fetch overtaken by a callback break is not published (no size): its opener waits for the end.
  const fetched = fillings.fill('k', body, null).then(() => {})
  t.is(await fillings.take('k', fetched), null)
  t.is((await readFile(containers.path('k'))).toString(), 'whole')
})
