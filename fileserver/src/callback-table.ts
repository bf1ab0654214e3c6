// The server's callback promises (OpenAFS callback.c, Coda's callback table): which
// client holds a promise on which object, until when.
//
// Operations:
//   grant(fid, client)        → expiry; promises a client to tell it before `fid` changes
//   breakFor(fids, except)    → the promises of every other client on `fids`, removed
//   dropClient(client)        → forgets an unreachable client's promises
// Invariants:
//   - at most `maxEntries` promises exist; when full, the least recently active client's
//     promises are broken first (returned by grant so the server can notify them)
//   - a promise's lifetime shrinks as more clients hold one on the same object
//     (hours for a few holders, minutes for many), as OpenAFS does
//   - promises live in memory only: after a server restart, clients revalidate.

export const CALLBACK_TABLE_MAX = 1_000_000
const HOUR_MS = 3_600_000
const MINUTE_MS = 60_000

/** Lifetime of a new promise given how many clients already hold one on the object. */
export function callbackLifetimeMs (holders: number): number {
  if (holders < 4) return 2 * HOUR_MS
  if (holders < 16) return HOUR_MS
  if (holders < 64) return 30 * MINUTE_MS
  if (holders < 256) return 10 * MINUTE_MS
  return 5 * MINUTE_MS
}

/** client id → fid keys whose promises were broken. */
export type Breaks = Map<string, string[]>

export class CallbackTable {
  /** fid key → client id → expiry (ms epoch). */
  private readonly byFid = new Map<string, Map<string, number>>()
  /** client id → fid keys it holds; Map order is least recently active first. */
  private readonly byClient = new Map<string, Set<string>>()
  private count = 0

  private readonly maxEntries: number

  constructor (maxEntries = CALLBACK_TABLE_MAX) {
    this.maxEntries = Math.max(1, maxEntries)
  }

  get size (): number { return this.count }

  /** Grants `client` a promise on `fid`; returns its expiry and any promises evicted to make room. */
  grant (fid: string, client: string, now = Date.now()): { expiresAt: number, evicted: Breaks } {
    const evicted: Breaks = new Map()
    this.touch(client)
    let holders = this.byFid.get(fid)
    if (!holders?.has(client)) {
      while (this.count >= this.maxEntries) this.evictOldest(client, evicted)
      holders = this.byFid.get(fid)
      if (!holders) { holders = new Map(); this.byFid.set(fid, holders) }
      this.count++
      this.byClient.get(client)!.add(fid)
    }
    const expiresAt = now + callbackLifetimeMs(holders.size)
    holders.set(client, expiresAt)
    return { expiresAt, evicted }
  }

  /** Removes and returns the live promises of clients other than `except` on `fids`. */
  breakFor (fids: Iterable<string>, except: string | null, now = Date.now()): Breaks {
    const out: Breaks = new Map()
    for (const fid of fids) {
      const holders = this.byFid.get(fid)
      if (!holders) continue
      for (const [client, expiresAt] of [...holders]) {
        if (client === except) continue
        this.forget(fid, client, holders)
        if (expiresAt > now) push(out, client, fid)
      }
    }
    return out
  }

  /** Removes and returns every live promise on objects of `volume` (it moved away). */
  breakVolume (volume: number, now = Date.now()): Breaks {
    const prefix = `${volume}.`
    return this.breakFor([...this.byFid.keys()].filter(k => k.startsWith(prefix)), null, now)
  }

  dropClient (client: string): void {
    const fids = this.byClient.get(client)
    if (!fids) return
    for (const fid of [...fids]) this.forget(fid, client, this.byFid.get(fid)!)
    this.byClient.delete(client)
  }

  holds (fid: string, client: string, now = Date.now()): boolean {
    return (this.byFid.get(fid)?.get(client) ?? 0) > now
  }

  private touch (client: string): void {
    const fids = this.byClient.get(client) ?? new Set<string>()
    this.byClient.delete(client)
    this.byClient.set(client, fids)
  }

  /** Breaks one promise of the least recently active client, sparing `except` while others hold any. */
  private evictOldest (except: string, out: Breaks): void {
    let fallback: string | null = null
    for (const [client, fids] of this.byClient) {
      if (fids.size === 0) continue
      if (client === except) { fallback = client; continue }
      return this.evictOne(client, fids, out)
    }
    if (fallback) this.evictOne(fallback, this.byClient.get(fallback)!, out)
  }

  private evictOne (client: string, fids: Set<string>, out: Breaks): void {
    const victim = fids.values().next().value as string
    this.forget(victim, client, this.byFid.get(victim)!)
    push(out, client, victim)
  }

  private forget (fid: string, client: string, holders: Map<string, number>): void {
    if (!holders.delete(client)) return
    this.count--
    if (holders.size === 0) this.byFid.delete(fid)
    this.byClient.get(client)?.delete(fid)
  }
}

function push (m: Breaks, client: string, fid: string): void {
  const list = m.get(client)
  if (list) list.push(fid)
  else m.set(client, [fid])
}
