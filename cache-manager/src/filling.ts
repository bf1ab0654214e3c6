// A container being filled by a fetch, readable while the rest streams in: a cold read
// of a large file starts with its first bytes, not after its last. It owns one read-only
// descriptor on the container, shared by the readers and closed when the last lets go;
// the descriptor stays valid when the finished container is renamed into place.
import { close as fsClose } from 'node:fs'
import { AfsError } from '@afs-ts/common'

interface Waiter { need: number, resolve: () => void, reject: (err: Error) => void }

export class Filling {
  /** Bytes written to the container so far. */
  private bytes = 0
  private ended = false
  private error: Error | null = null
  private waiters: Waiter[] = []
  /** The filler's hold on the descriptor and each reader's. */
  private refs = 1

  /** `size`: the file's size by the fetch's reply. */
  constructor (readonly fd: number, readonly size: number) {}

  /**
   * Resolves once `need` bytes are in the container. The file's last bytes count as in only
   * once the whole transfer is verified, so no reader sees the end of a damaged one.
   */
  async until (need: number): Promise<void> {
    if (this.ready(need)) return
    if (this.error) throw this.error
    await new Promise<void>((resolve, reject) => this.waiters.push({ need, resolve, reject }))
  }

  /** A reader takes the descriptor (false once the fill is over: read the container); it gives it back with `release`. */
  acquire (): boolean {
    if (this.ended) return false
    this.refs++
    return true
  }

  release (): void {
    if (--this.refs === 0) fsClose(this.fd, () => {})
  }

  /** The filler wrote `n` more bytes. */
  wrote (n: number): void {
    this.bytes += n
    this.wake()
  }

  /** The fill is over: the container is complete and in place, or `err` says why not. */
  end (err?: unknown): void {
    this.ended = true
    if (err !== undefined) this.error = AfsError.from(err)
    this.wake()
    this.release()
  }

  private ready (need: number): boolean {
    const end = Math.min(need, this.size)
    return this.error === null && (this.ended || (this.bytes >= end && end < this.size))
  }

  private wake (): void {
    const waiting = this.waiters
    this.waiters = []
    for (const w of waiting) {
      if (this.ready(w.need)) w.resolve()
      else if (this.error) w.reject(this.error)
      else this.waiters.push(w)
    }
  }
}

/** What fills a container (the container store). */
interface Filler {
  fill (key: string, body: AsyncIterable<Buffer>, publish?: { size: number, to: (f: Filling) => void }): Promise<number>
}

/** The fetches under way whose containers may be read as they fill, by object key, and the openers waiting for one. */
export class Fillings {
  private readonly current = new Map<string, Filling>()
  private readonly waiting = new Map<string, Set<(f: Filling) => void>>()

  constructor (private readonly containers: Filler) {}

  /** Fills the container of `key`; with a `size` (the file's, by the reply), readers may read it while it fills. */
  async fill (key: string, body: AsyncIterable<Buffer>, size: number | null): Promise<number> {
    if (size === null) return await this.containers.fill(key, body)
    let mine: Filling | null = null
    const to = (f: Filling) => {
      mine = f
      this.current.set(key, f)
      for (const offer of this.waiting.get(key) ?? []) offer(f)
    }
    try {
      return await this.containers.fill(key, body, { size, to })
    } finally {
      if (mine !== null && this.current.get(key) === mine) this.current.delete(key)
    }
  }

  /**
   * The Filling of `key` to read from, taken for the caller, as soon as one is under way;
   * null when `fetched` (the fetch the caller waits for) ends first: the container is complete.
   */
  async take (key: string, fetched: Promise<void>): Promise<Filling | null> {
    const now = this.current.get(key)
    if (now?.acquire()) { fetched.catch(() => {}); return now }
    return await new Promise((resolve, reject) => {
      const waiters = this.waiting.get(key) ?? new Set()
      this.waiting.set(key, waiters)
      const done = () => { waiters.delete(offer); if (waiters.size === 0 && this.waiting.get(key) === waiters) this.waiting.delete(key) }
      const offer = (f: Filling) => { if (f.acquire()) { done(); resolve(f) } }
      waiters.add(offer)
      fetched.then(() => { done(); resolve(null) }, (err: unknown) => { done(); reject(err) })
    })
  }
}
