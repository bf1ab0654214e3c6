// The cell's certificate authority, and the certificates it signs for the cell's servers
// (ECDSA P-256, made with @peculiar/x509 on Node's WebCrypto). A TLS directory holds:
//   ca.pem          the cell's CA certificate: what clients trust (`--ca`)
//   ca-key.pem      its key (mode 0600), on the machine that makes the cell only
//   server.pem      this server's certificate, for its host names and addresses
//   server-key.pem  its key (mode 0600)
//   token.key       the cell's key that signs and checks tokens (mode 0600; servers only, as AFS's KeyFile)
// A new cell's first server makes one under DATA/tls; `afs cell init` and `afs cell
// issue-server` make them for servers on other machines.
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'
import { X509Certificate, randomBytes, webcrypto } from 'node:crypto'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { isIP } from 'node:net'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { AfsError, invalid } from './errors.ts'
import type { Trust } from './tls.ts'

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0])

type CryptoKey = webcrypto.CryptoKey
type CryptoKeyPair = webcrypto.CryptoKeyPair

export const CA_FILE = 'ca.pem'
export const CA_KEY_FILE = 'ca-key.pem'
export const CERT_FILE = 'server.pem'
export const KEY_FILE = 'server-key.pem'
export const TOKEN_KEY_FILE = 'token.key'

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }
const DAY_MS = 86_400_000
const CA_DAYS = 3650
const SERVER_DAYS = 825

/** Makes a new cell CA in `dir` (refused where one is already). */
export async function initCellCa (dir: string, cell: string): Promise<void> {
  if (existsSync(join(dir, CA_FILE))) throw new AfsError('EXISTS', `${join(dir, CA_FILE)} exists: ${dir} holds a cell CA already`)
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const keys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']) as CryptoKeyPair
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=afs-ts cell ${cell} CA, O=${cell}`,
    notBefore: new Date(Date.now() - DAY_MS),
    notAfter: new Date(Date.now() + CA_DAYS * DAY_MS),
    signingAlgorithm: ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  })
  await writeSecret(join(dir, CA_KEY_FILE), await keyPem(keys.privateKey))
  await ensureTokenKey(dir)
  await writeAtomically(join(dir, CA_FILE), cert.toString('pem') + '\n', 0o644)
}

/** Makes the cell's token key in `dir` unless it is there. */
export async function ensureTokenKey (dir: string): Promise<void> {
  if (!existsSync(join(dir, TOKEN_KEY_FILE))) await writeSecret(join(dir, TOKEN_KEY_FILE), randomBytes(32).toString('base64') + '\n')
}

/** The cell's token key kept in TLS directory `dir`. */
export async function readTokenKey (dir: string): Promise<Uint8Array> {
  const path = join(dir, TOKEN_KEY_FILE)
  let text
  try { text = await readFile(path, 'utf8') } catch (err) { throw invalid(`${path}: the cell's token key cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`) }
  const key = Buffer.from(text.trim(), 'base64')
  if (key.length < 32) throw invalid(`${path} is no token key`)
  return key
}

/** A certificate the CA in `caDir` signs for a server known by `hosts` (names and addresses). */
export async function issueServer (caDir: string, hosts: string[]): Promise<{ cert: string, key: string }> {
  if (!existsSync(join(caDir, CA_KEY_FILE))) throw invalid(`${caDir} holds no cell CA key (${CA_KEY_FILE}): issue server certificates where the cell was made (afs cell init)`)
  const caCert = new x509.X509Certificate(await readFile(join(caDir, CA_FILE), 'utf8'))
  const caKey = await webcrypto.subtle.importKey('pkcs8', pemBody(await readFile(join(caDir, CA_KEY_FILE), 'utf8')), ALGORITHM, false, ['sign'])
  const keys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']) as CryptoKeyPair
  const names = [...new Set(hosts)]
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${names[0]}`,
    issuer: caCert.subject,
    notBefore: new Date(Date.now() - DAY_MS),
    notAfter: new Date(Date.now() + SERVER_DAYS * DAY_MS),
    signingAlgorithm: ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
      // A server shows it to clients, and to the other servers when it connects to them.
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(names.map(h => ({ type: isIP(h) ? 'ip' as const : 'dns' as const, value: h }))),
      await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
    ],
  })
  return { cert: cert.toString('pem') + '\n' + caCert.toString('pem') + '\n', key: await keyPem(keys.privateKey) }
}

/** Writes a server's TLS directory `outDir` (its certificate for `hosts`, its key, the CA) from the CA in `caDir`. */
export async function writeServerTls (caDir: string, hosts: string[], outDir: string): Promise<void> {
  const { cert, key } = await issueServer(caDir, hosts)
  await mkdir(outDir, { recursive: true, mode: 0o700 })
  await writeSecret(join(outDir, KEY_FILE), key)
  await writeAtomically(join(outDir, CERT_FILE), cert, 0o644)
  if (outDir !== caDir) {
    await writeAtomically(join(outDir, CA_FILE), await readFile(join(caDir, CA_FILE), 'utf8'), 0o644)
    await writeSecret(join(outDir, TOKEN_KEY_FILE), await readFile(join(caDir, TOKEN_KEY_FILE), 'utf8'))
  }
}

/** Keeps a server's TLS (the CA certificate, its own certificate and key, the cell's token key) in directory `dir`. */
export async function saveServerTls (dir: string, trust: Required<Trust>, tokenKey: Uint8Array): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await writeSecret(join(dir, TOKEN_KEY_FILE), Buffer.from(tokenKey).toString('base64') + '\n')
  await writeSecret(join(dir, KEY_FILE), trust.key)
  await writeAtomically(join(dir, CERT_FILE), trust.cert, 0o644)
  await writeAtomically(join(dir, CA_FILE), [trust.ca].flat().join(''), 0o644)
}

/** The names a server at `host` is known by: that host, and this machine's names when it is local or a wildcard. */
export function serverNames (host: string): string[] {
  const local = ['127.0.0.1', '::1', 'localhost', '0.0.0.0', '::', ''].includes(host)
  return [...new Set([...(local ? [] : [host]), hostname(), 'localhost', '127.0.0.1', '::1'])]
}

/**
 * The TLS a server at `host` uses, from directory `dir`: its certificate there when it
 * covers `host`; else, where the CA key is there too, a new one for it (kept there when
 * `keep`). `newCell`: make the CA first when there is none (a new cell's first server).
 */
export async function serverTrust (dir: string, host: string, opts: { newCell?: string, keep?: boolean } = {}): Promise<Required<Trust>> {
  if (!existsSync(join(dir, CA_FILE))) {
    if (!opts.newCell) throw invalid(`${dir} holds no cell CA (${CA_FILE}): a server joining a cell needs the cell's TLS directory (--tls DIR: from afs cell issue-server, or the first server's DATA/tls)`)
    await initCellCa(dir, opts.newCell)
  }
  const ca = await readFile(join(dir, CA_FILE), 'utf8')
  const certPath = join(dir, CERT_FILE)
  if (existsSync(certPath)) {
    const cert = await readFile(certPath, 'utf8')
    if (covers(cert, host)) return { ca, cert, key: await readFile(join(dir, KEY_FILE), 'utf8') }
    if (!existsSync(join(dir, CA_KEY_FILE))) throw invalid(`${certPath} is not for ${host}: issue one for it (afs cell issue-server CADIR ${host})`)
  } else if (!existsSync(join(dir, CA_KEY_FILE))) {
    throw invalid(`${dir} holds neither a server certificate (${CERT_FILE}) nor the CA key to issue one`)
  }
  const names = serverNames(host)
  if (opts.keep) {
    await writeServerTls(dir, names, dir)
    return { ca, cert: await readFile(certPath, 'utf8'), key: await readFile(join(dir, KEY_FILE), 'utf8') }
  }
  return { ca, ...await issueServer(dir, names) }
}

/** Whether a certificate (PEM) names `host` (a wildcard or local host: this machine's loopback address). */
function covers (pem: string, host: string): boolean {
  const cert = new X509Certificate(pem)
  const h = ['0.0.0.0', '::', ''].includes(host) ? '127.0.0.1' : host
  return isIP(h) ? cert.checkIP(h) !== undefined : cert.checkHost(h) !== undefined
}

function serial (): string {
  const b = randomBytes(16)
  b[0] &= 0x7f
  return b.toString('hex')
}

async function keyPem (key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key))
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END PRIVATE KEY-----\n`
}

function pemBody (pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64')
}

async function writeSecret (path: string, text: string): Promise<void> {
  await writeAtomically(path, text, 0o600)
}

async function writeAtomically (path: string, text: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, text, { mode })
  await rename(tmp, path)
}
