import test from 'ava'
import { parseCellsFile } from '../src/cells-file.ts'

test('a CellServDB-style cells file lists each cell\'s servers', t => {
  const text = '# my cells\n>one.example   # first cell\n127.0.0.1:7000  #fs1\n127.0.0.2:7000\n\n>two.example\n127.0.0.3:7001\n'
  t.deepEqual(parseCellsFile(text), [
    { cell: 'one.example', servers: ['127.0.0.1:7000', '127.0.0.2:7000'] },
    { cell: 'two.example', servers: ['127.0.0.3:7001'] },
  ])
})

test('bad lines are reported with their line number', t => {
  t.throws(() => parseCellsFile('>c\nnot an address\n', 'f'), { message: 'f:2: expected HOST:PORT, got \'not an address\'' })
  t.throws(() => parseCellsFile('127.0.0.1:1\n', 'f'), { message: /f:1: a server before any/ })
  t.throws(() => parseCellsFile('>empty\n', 'f'), { message: /lists no servers/ })
})
