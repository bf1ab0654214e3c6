import test from 'ava'
import { mergeTexts } from '../src/repair/merge.ts'
import { besideName } from '../src/repair/repairer.ts'

test('three-way merge: changes on different lines merge, exactly byte for byte', t => {
  t.deepEqual(mergeTexts('A\nb\nc\nd\n', 'a\nb\nc\nd\n', 'a\nb\nc\nD\n'), { clean: true, text: 'A\nb\nc\nD\n' })
  t.deepEqual(mergeTexts('a\r\nB\r\nc\r\n', 'a\r\nb\r\nc\r\n', 'a\r\nb\r\nc\r\nd'), { clean: true, text: 'a\r\nB\r\nc\r\nd' })
  t.deepEqual(mergeTexts('same\n', 'base\n', 'same\n'), { clean: true, text: 'same\n' }, 'the same change on both sides is no conflict')
})

test('three-way merge: overlapping changes are refused with where they are', t => {
  const m = mergeTexts('a\nmine\nc\n', 'a\nb\nc\n', 'a\ntheirs\nc\n')
  t.false(m.clean)
  if (!m.clean) t.deepEqual(m.overlaps, [{ line: 2, local: ['mine\n'], server: ['theirs\n'] }])
})

test('the name beside a conflicted file keeps its extension and says when and where', t => {
  const at = Date.UTC(2026, 10, 25, 23, 17, 33)
  t.regex(besideName('notes.txt', at, 1), /^notes\.conflict-20261125-231733-[A-Za-z0-9_-]+\.txt$/)
  t.regex(besideName('notes.txt', at, 3), /^notes\.conflict-20261125-231733-[A-Za-z0-9_-]+-3\.txt$/)
  t.regex(besideName('.bashrc', at, 1), /^\.bashrc\.conflict-20261125-231733-[A-Za-z0-9_-]+$/)
  t.regex(besideName('Makefile', at, 1), /^Makefile\.conflict-/)
  t.true(Buffer.byteLength(besideName('x'.repeat(250) + '.txt', at, 1)) <= 255)
})
