// A server that is no good as a volume's member, for tests, run as its own process:
//   node --import tsx tests/helpers/bad-member.ts garbage|old HOST:PORT [TLSDIR]
// garbage: answers every connection with bytes that are no protocol frame (nor TLS);
// old: speaks the protocol over TLS with the cell's certificate (from TLSDIR, a cell TLS
// directory), but an older version of it, and refuses every request.
import { createServer, type Socket } from 'node:net'
import { PROTOCOL_VERSION, RpcConnection, protocolError, tlsAcceptor } from '@afs-ts/common'
import { serverTrust } from '@afs-ts/common/cell-ca'

const [mode, address, tlsDir] = process.argv.slice(2)
const [host, port] = address.split(':')
const old = (socket: Socket) => {
  const conn = new RpcConnection(socket)
  conn.handler = async op => {
    if (op === 'hello') return { cell: 'test', protocol: PROTOCOL_VERSION - 1, serverId: 'old-member', rootVolume: 'root.cell' }
    throw protocolError(`${op}: not in protocol ${PROTOCOL_VERSION - 1}`)
  }
}
const server = mode === 'garbage'
  ? createServer(socket => {
    socket.on('error', () => {})
    socket.on('data', () => socket.write(Buffer.from('\u0000\u0000\u0000\u0010this is no frame at all, really')))
  })
  : createServer(tlsAcceptor(await serverTrust(tlsDir, host), old, () => {}))
server.listen(Number(port), host, () => process.stdout.write('ready\n'))
process.on('SIGTERM', () => process.exit(0))
