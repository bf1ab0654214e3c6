// TLS on every link of the cell (client↔server, server↔server, CLI↔server): a server
// proves itself with a certificate the cell's CA signed for its host; whoever connects
// checks it against the CA it trusts, and a server of the cell also shows its own
// certificate as a client (that is how servers know each other). Plaintext, an unknown
// CA and a certificate for another host are refused with one clear line on both sides.
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls'
import { isIP, type Socket } from 'node:net'
import { AfsError, connectionLost, protocolError } from './errors.ts'
import { parseHostPort } from './units.ts'
import { RpcConnection } from './connection.ts'

/** What one side of a link trusts (the cell's CA) and, for a server, the certificate it shows (PEM). */
export interface Trust {
  /** The CA certificates whose signature makes a peer's certificate good (PEM; several: several cells). */
  ca: string | string[]
  cert?: string
  key?: string
}

/** How long a peer may take over its TLS handshake before it is dropped. */
export const HANDSHAKE_TIMEOUT_MS = 10_000
/** The first byte of a TLS handshake record: anything else is no TLS. */
const TLS_HANDSHAKE = 0x16

/** Opens a TLS connection to `address`, checked against `trust`; a failure is one clear line. */
export async function connectTo (address: string, timeoutMs: number, trust: Trust): Promise<TLSSocket> {
  let hp
  try { hp = parseHostPort(address) } catch (err) { throw connectionLost((err as Error).message) }
  const socket = tlsConnect({
    host: hp.host,
    port: hp.port,
    ca: trust.ca,
    cert: trust.cert,
    key: trust.key,
    servername: isIP(hp.host) ? undefined : hp.host,
  })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { socket.destroy(); reject(connectionLost(`${address}: no answer in ${timeoutMs} ms`)) }, timeoutMs)
    socket.once('secureConnect', () => { clearTimeout(timer); resolve() })
    socket.once('error', err => { clearTimeout(timer); socket.destroy(); reject(refused(address, err as NodeJS.ErrnoException)) })
  })
  return socket
}

/** A failed connection or handshake, said in one line: unreachable, no TLS, another CA, another host. */
function refused (address: string, err: NodeJS.ErrnoException & { reason?: string }): AfsError {
  const code = err.code ?? ''
  if (['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'CERT_SIGNATURE_FAILURE'].includes(code)) {
    return untrusted(`${address}: its certificate is not signed by the cell CA trusted here (${code}); give this side the cell's ca.pem (--ca)`)
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return untrusted(`${address}: its certificate is for another host (${err.reason ?? err.message})`)
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') return untrusted(`${address}: its certificate is out of date (${code})`)
  if (code === 'ECONNRESET' || code === 'EPIPE' || /wrong version number|packet length too long|disconnected before secure TLS/i.test(err.message)) {
    return untrusted(`${address} does not speak TLS: not an afs-ts server of this version, or not one at all`)
  }
  if (code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS')) return untrusted(`${address}: TLS handshake failed (${err.message})`)
  return connectionLost(`${address}: ${err.message}`)
}

/** A peer this side will not talk to: unreachable as far as the cell goes, with why. */
function untrusted (message: string): AfsError {
  return new AfsError('CONNECTION', message, { untrusted: true })
}

/**
 * What a server does with each connection it accepts: the TLS handshake (bounded in
 * time), then `onSecure` with the TLS socket and whether the peer showed a certificate
 * the cell's CA signed (a server of the cell). A peer that speaks plaintext is answered,
 * once, with an error saying so (a frame it can read), and closed; `onRefused` says why
 * a connection was refused, in one line.
 */
export function tlsAcceptor (trust: Required<Trust>, onSecure: (tls: TLSSocket, peerVerified: boolean) => void, onRefused: (why: string) => void, handshakeMs = HANDSHAKE_TIMEOUT_MS): (socket: Socket) => void {
  const tls = createTlsServer({
    ca: trust.ca, cert: trust.cert, key: trust.key, requestCert: true, rejectUnauthorized: false, handshakeTimeout: handshakeMs,
  }, socket => { onSecure(socket, socket.authorized) })
  tls.on('tlsClientError', (err, socket) => {
    onRefused(`${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}: TLS handshake failed (${err.message})`)
    socket.destroy() // (with a listener here, node leaves the connection open)
  })
  return socket => {
    const from = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`
    socket.on('error', () => {})
    // (A peer that sends nothing at all is dropped as one whose handshake never ends.)
    const idle = setTimeout(() => { onRefused(`${from}: no TLS handshake in ${handshakeMs} ms`); socket.destroy() }, handshakeMs)
    socket.once('close', () => clearTimeout(idle))
    socket.once('data', (first: Buffer) => {
      clearTimeout(idle)
      socket.pause()
      socket.unshift(first)
      if (first[0] === TLS_HANDSHAKE) { tls.emit('connection', socket); return }
      onRefused(`${from}: a plaintext connection, refused (this server speaks TLS only)`)
      const plain = new RpcConnection(socket, async () => { throw protocolError('this server speaks TLS only: connect with TLS, trusting the cell\'s CA') })
      socket.resume()
      setTimeout(() => plain.destroy(), 1_000).unref()
    })
  }
}
