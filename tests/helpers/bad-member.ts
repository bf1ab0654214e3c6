// A server that is no good as a volume's member, for tests, run as its own process:
//   node --import tsx tests/helpers/bad-member.ts garbage|old HOST:PORT
// garbage: answers every connection with bytes that are no protocol frame;
// old: speaks the protocol, but an older version of it, and refuses every request.
import { createServer } from 'node:net'
import { PROTOCOL_VERSION, RpcConnection, protocolError } from '@afs-ts/common'

const [mode, address] = process.argv.slice(2)
const [host, port] = address.split(':')
const server = createServer(socket => {
  socket.on('error', () => {})
  if (mode === 'garbage') {
    socket.on('data', () => socket.write(Buffer.from('\u0000\u0000\u0000\u0010this is no frame at all, really')))
    return
  }
  const conn = new RpcConnection(socket)
  conn.handler = async op => {
    if (op === 'hello') return { cell: 'test', protocol: PROTOCOL_VERSION - 1, serverId: 'old-member', rootVolume: 'root.cell' }
    throw protocolError(`${op}: not in protocol ${PROTOCOL_VERSION - 1}`)
  }
})
server.listen(Number(port), host, () => process.stdout.write('ready\n'))
process.on('SIGTERM', () => process.exit(0))
