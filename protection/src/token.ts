// Tokens: what `afs login` gets from a server for a user of the cell, and what every
// request made for that user carries. A token is a JWT (jose, HS256) signed with the
// cell's key — `token.key` in each server's TLS directory (`cell-ca.ts`), as AFS's KeyFile — naming the
// user, their id and token generation, the cell, and when it expires (25 h by default, as
// Coda's). Passwords are kept only as Argon2id hashes (@node-rs/argon2).
import { randomBytes } from 'node:crypto'
import { SignJWT, decodeJwt, errors as joseErrors, jwtVerify } from 'jose'
import { hash, verify } from '@node-rs/argon2'
import { unauthenticated } from '@afs-ts/common'

/** @node-rs/argon2's Algorithm.Argon2id (a const enum, which this build cannot import). */
const ARGON2ID = 2
export const TOKEN_LIFETIME_MS = 25 * 3600_000
/** Who `--localauth` tokens name: whoever can read a server's key is the cell's administrator. */
export const LOCALAUTH_USER = '<localauth>'

export interface TokenClaims {
  user: string
  uid: number
  /** The user's token generation when it was issued. */
  epoch: number
  cell: string
  expiresMs: number
}

export async function signToken (key: Uint8Array, c: Omit<TokenClaims, 'expiresMs'>, lifetimeMs = TOKEN_LIFETIME_MS): Promise<{ token: string, expiresMs: number }> {
  const expiresMs = Date.now() + lifetimeMs
  const token = await new SignJWT({ uid: c.uid, ep: c.epoch })
    .setProtectedHeader({ alg: 'HS256', typ: 'afs-token' })
    .setSubject(c.user)
    .setIssuer(c.cell)
    .setIssuedAt()
    .setExpirationTime(Math.floor(expiresMs / 1000))
    .sign(key)
  return { token, expiresMs: Math.floor(expiresMs / 1000) * 1000 }
}

/** The claims of a token this cell's key signed; any other is refused with why. */
export async function verifyToken (key: Uint8Array, token: string, cell: string): Promise<TokenClaims> {
  if (typeof token !== 'string' || token.length > 4096) throw unauthenticated('a token is a short string')
  try {
    const { payload } = await jwtVerify(token, key, { issuer: cell, algorithms: ['HS256'], typ: 'afs-token' })
    if (typeof payload.sub !== 'string' || typeof payload.uid !== 'number' || typeof payload.ep !== 'number' || typeof payload.exp !== 'number') throw unauthenticated('the token lacks its claims')
    return { user: payload.sub, uid: payload.uid, epoch: payload.ep, cell, expiresMs: payload.exp * 1000 }
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) throw unauthenticated('the token has expired: log in again (afs login)')
    if (err instanceof joseErrors.JWTClaimValidationFailed && err.claim === 'iss') throw unauthenticated(`the token is for another cell, not ${cell}`)
    if (err instanceof joseErrors.JWSSignatureVerificationFailed) throw unauthenticated('the token was not signed by this cell (tampered with, or made elsewhere)')
    if (err instanceof joseErrors.JOSEError) throw unauthenticated(`the token is malformed (${err.message})`)
    throw err
  }
}

/** What a token says, unchecked (for showing its user and expiry). */
export function readToken (token: string): { user: string, cell: string, expiresMs: number } | null {
  try {
    const p = decodeJwt(token)
    if (typeof p.sub !== 'string' || typeof p.iss !== 'string' || typeof p.exp !== 'number') return null
    return { user: p.sub, cell: p.iss, expiresMs: p.exp * 1000 }
  } catch {
    return null
  }
}

export async function hashPassword (password: string): Promise<string> {
  return await hash(password, { algorithm: ARGON2ID })
}

export async function checkPassword (hashed: string, password: string): Promise<boolean> {
  try { return await verify(hashed, password) } catch { return false }
}

/** A new random password (for the cell's first admin). */
export function newPassword (): string {
  return randomBytes(18).toString('base64url')
}
