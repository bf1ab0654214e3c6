import test from 'ava'
import { FrameDecoder, encodeFrame, MAX_FRAME_BYTES } from '../src/frame.ts'
import { AfsError } from '../src/errors.ts'

test('frames split at every byte boundary decode to the same values', t => {
  const values = [[0, 1, 'hello', { a: 1 }], [1, 2, Buffer.from('bytes')], [4, 3, 'x'.repeat(70_000)]]
  const wire = Buffer.concat(values.map(encodeFrame))
  for (const step of [1, 3, 7, 4096, wire.length]) {
    const d = new FrameDecoder()
    const out: unknown[] = []
    for (let i = 0; i < wire.length; i += step) out.push(...d.push(wire.subarray(i, i + step)))
    t.is(out.length, 3)
    t.deepEqual((out[1] as unknown[])[2], Buffer.from('bytes'))
    t.is((out[2] as unknown[])[2], 'x'.repeat(70_000))
  }
})

test('an oversized frame header is a PROTOCOL error before any body arrives', t => {
  const d = new FrameDecoder()
  const head = Buffer.alloc(4)
  head.writeUInt32BE(MAX_FRAME_BYTES + 1)
  const err = t.throws(() => d.push(head)) as AfsError
  t.is(err.code, 'PROTOCOL')
  t.regex(err.message, /exceeds the limit/)
})

test('garbage bodies and empty frames are PROTOCOL errors, not crashes', t => {
  const garbage = Buffer.from([0, 0, 0, 3, 0xc1, 0xc1, 0xc1])
  t.is((t.throws(() => new FrameDecoder().push(garbage)) as AfsError).code, 'PROTOCOL')
  t.is((t.throws(() => new FrameDecoder().push(Buffer.alloc(4))) as AfsError).code, 'PROTOCOL')
})

test('msgpack records and extensions are not accepted from a peer', t => {
  // 0xd4 = fixext 1 (type 0x72 'r' is msgpackr's record extension)
  const body = Buffer.from([0xd4, 0x72, 0x00])
  const frame = Buffer.concat([Buffer.from([0, 0, 0, body.length]), body])
  const d = new FrameDecoder()
  let out: unknown[] = []
  try { out = d.push(frame) } catch (err) { t.is((err as AfsError).code, 'PROTOCOL'); return }
  t.false(typeof out[0] === 'object' && out[0] !== null && !Buffer.isBuffer(out[0]) && Object.keys(out[0]).length > 0)
})
