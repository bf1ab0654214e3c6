// Read-only descriptors on container files, shared by read handles and kept open for a
// while after the last close, so reopening a cached file costs no open(2)/close(2).
// A descriptor is reused only for the container version it was opened on.
import { open as fsOpen, close as fsClose } from 'node:fs'
import { promisify } from 'node:util'

const openAsync = promisify(fsOpen)
const closeAsync = promisify(fsClose)
/** Idle descriptors kept open at most. */
export const READ_FD_IDLE_MAX = 64

interface Entry { fd: number, version: number | null, refs: number }

export class ReadFdCache {
  /** Map order is the idle order: least recently released first. */
  private readonly entries = new Map<string, Entry>()

  async acquire (key: string, version: number | null, path: string): Promise<{ fd: number, shared: boolean }> {
    const e = this.entries.get(key)
    if (e && e.version === version) {
      e.refs++
      return { fd: e.fd, shared: true }
    }
    const fd = await openAsync(path, 'r')
    if (e && e.refs > 0) return { fd, shared: false } // an older version is still being read
    if (e) void closeAsync(e.fd).catch(() => {})
    this.entries.set(key, { fd, version, refs: 1 })
    return { fd, shared: true }
  }

  release (key: string, fd: number): void {
    const e = this.entries.get(key)
    if (!e || e.fd !== fd) return
    e.refs--
    if (e.refs > 0) return
    this.entries.delete(key)
    this.entries.set(key, e)
    this.trim()
  }

  /** The container of `from` is now named `to` (the same file). */
  rekey (from: string, to: string): void {
    const e = this.entries.get(from)
    if (!e) return
    this.entries.delete(from)
    this.drop(to)
    if (!this.entries.has(to)) this.entries.set(to, e)
  }

  /** Closes the idle descriptor of `key` (its container is going away). */
  drop (key: string): void {
    const e = this.entries.get(key)
    if (!e || e.refs > 0) return
    this.entries.delete(key)
    void closeAsync(e.fd).catch(() => {})
  }

  closeAll (): void {
    for (const [key, e] of this.entries) if (e.refs === 0) this.drop(key)
  }

  private trim (): void {
    let idle = 0
    for (const e of this.entries.values()) if (e.refs === 0) idle++
    for (const [key, e] of this.entries) {
      if (idle <= READ_FD_IDLE_MAX) return
      if (e.refs === 0) { this.drop(key); idle-- }
    }
  }
}
