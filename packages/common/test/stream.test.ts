import test from 'ava'
import { InboundStream, StreamChecksum } from '../src/stream.ts'
import { AfsError } from '../src/errors.ts'

const flow = { pause () {}, resume () {} }
const sum = (...parts: Buffer[]): string => { const c = new StreamChecksum(); for (const p of parts) c.update(p); return c.digest() }

async function drain (s: InboundStream): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const c of s) parts.push(c)
  return Buffer.concat(parts)
}

const a = Buffer.from('the first chunk of a file, ')
const b = Buffer.from('then the second, ')
const c = Buffer.from('and the last')

test('a stream whose end frame carries the checksum of its bytes is read whole; how the bytes were cut does not matter', async t => {
  t.is(sum(a, b, c), sum(Buffer.concat([a, b, c])))
  t.regex(sum(a), /^[0-9a-f]{8}$/)
  const s = new InboundStream(flow)
  for (const p of [a, b, c]) s.pushChunk(p)
  s.end(sum(Buffer.concat([a, b, c])))
  t.true((await drain(s)).equals(Buffer.concat([a, b, c])))
})

test('a chunk lost, repeated or reordered fails the stream with HASH_MISMATCH', async t => {
  const whole = sum(a, b, c)
  for (const chunks of [[a, c], [a, b, b, c], [b, a, c], [a, b, c.subarray(1)]]) {
    const s = new InboundStream(flow)
    for (const p of chunks) s.pushChunk(p)
    s.end(whole)
    const err = await t.throwsAsync(drain(s))
    t.true(err instanceof AfsError && err.code === 'HASH_MISMATCH', String(err))
  }
})
