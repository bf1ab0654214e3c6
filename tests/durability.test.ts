// Crashes and restarts with real signals: a server killed mid-store, a restarted cache manager.
import test from 'ava'
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync, createWriteStream } from 'node:fs'
import { join } from 'node:path'
import { once } from 'node:events'
import { Stack, addClient, cell, startServer, startClient, status, isMounted } from './helpers/cell.ts'

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

test.serial('a server killed with SIGKILL in the middle of a store restarts with the whole old or the whole new file', async t => {
  const stack = new Stack()
  try {
    const server = await startServer()
    stack.defer(server.dataDir)
    stack.push(() => server.stop())
    const client = await startClient([server.address])
    stack.defer(client.cache)
    stack.push(() => client.stop())
    const file = join(client.cellPath, 'big.bin')
    const oldData = Buffer.alloc(8 * 1024 * 1024, 1)
    writeFileSync(file, oldData)
    // Write a 256 MiB new version and kill the server while it streams in.
    const out = createWriteStream(file)
    out.on('error', () => {}) // the close may fail: the server dies under it
    const chunk = Buffer.alloc(1024 * 1024, 2)
    for (let i = 0; i < 256; i++) if (!out.write(chunk)) await once(out, 'drain')
    // 'close' (not end's callback, which fires on finish) is when close(2) returned.
    const closed = new Promise<void>(res => out.once('close', () => res()))
    out.end()
    await new Promise(r => setTimeout(r, 150))
    server.proc.kill('SIGKILL')
    await closed
    await server.stop()
    await client.stop()
    // Restart the same data on a fresh port and look with a fresh client.
    const again = await startServer(server.dataDir)
    stack.push(() => again.stop())
    const c2 = await addClient(stack, [again.address])
    const data = readFileSync(join(c2.cellPath, 'big.bin'))
    const whole = [sha(oldData), sha(Buffer.alloc(256 * 1024 * 1024, 2))]
    t.true(whole.includes(sha(data)), `file is ${data.length} bytes and neither whole version`)
  } finally { await stack.unwind() }
})

test.serial('a restarted cache manager serves its cache without refetching', async t => {
  const stack = new Stack()
  try {
    const { server, clients: [a] } = await cell(stack, 1)
    const files = Array.from({ length: 10 }, (_, i) => join(a.cellPath, `keep${i}.txt`))
    files.forEach((f, i) => writeFileSync(f, `contents ${i}\n`.repeat(1000)))
    files.forEach(f => readFileSync(f))
    await a.stop()
    t.false(await isMounted(a.mount))
    const b = await startClient([server.address], { cache: a.cache, mount: a.mount })
    stack.push(() => b.stop())
    files.forEach((f, i) => t.is(readFileSync(f, 'utf8'), `contents ${i}\n`.repeat(1000)))
    const s = await status(b)
    t.is(s.counters.fetches, 0, 'no file was fetched again')
  } finally { await stack.unwind() }
})

test.serial('a 1 GiB file round-trips while the cache manager\'s memory stays bounded', async t => {
  const stack = new Stack()
  try {
    const { clients: [a, b] } = await cell(stack, 2)
    const file = join(a.cellPath, 'huge.bin')
    const out = createWriteStream(file)
    const hash = createHash('sha256')
    for (let i = 0; i < 1024; i++) {
      const chunk = Buffer.alloc(1024 * 1024, i & 0xff)
      hash.update(chunk)
      if (!out.write(chunk)) await once(out, 'drain')
    }
    const failed = new Promise<Error>(res => out.once('error', res))
    out.end()
    t.is(await Promise.race([once(out, 'close').then(() => null), failed]), null, 'close(2) succeeded')
    const { createReadStream } = await import('node:fs')
    const h2 = createHash('sha256')
    for await (const c of createReadStream(join(b.cellPath, 'huge.bin'), { highWaterMark: 1 << 20 })) h2.update(c)
    t.is(h2.digest('hex'), hash.digest('hex'))
    for (const c of [a, b]) {
      const peakKb = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${c.proc.pid}/status`, 'utf8'))![1])
      t.true(peakKb < 400 * 1024, `cache manager peak RSS ${peakKb} KiB`)
    }
  } finally { await stack.unwind() }
})
