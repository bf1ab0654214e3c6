// One consistent version per store: while a file's container is being uploaded, writes
// to it wait; an upload starts only once the writes already under way have landed. So
// what a server takes (and another client may fetch) is never a mix of two versions.
import type { FsObject } from './fs-object.ts'

export class UploadGate {
  private writers = 0
  private drained: Array<() => void> = []
  private uploading: Promise<void> | null = null

  /** Runs a write (or truncate) of the container, after any upload under way. */
  async write<T> (fn: () => Promise<T>): Promise<T> {
    while (this.uploading) await this.uploading
    this.writers++
    try {
      return await fn()
    } finally {
      if (--this.writers === 0) for (const wake of this.drained.splice(0)) wake()
    }
  }

  /** Runs an upload of the container with no write landing in it meanwhile. */
  async upload<T> (fn: () => Promise<T>): Promise<T> {
    while (this.uploading) await this.uploading
    let done!: () => void
    this.uploading = new Promise(resolve => { done = resolve })
    try {
      if (this.writers > 0) await new Promise<void>(resolve => this.drained.push(resolve))
      return await fn()
    } finally {
      this.uploading = null
      done()
    }
  }
}

const gates = new WeakMap<FsObject, UploadGate>()

/** The gate of a cached file (a fresh one when the object is not cached). */
export function uploadGate (o: FsObject | undefined): UploadGate {
  if (!o) return new UploadGate()
  let g = gates.get(o)
  if (!g) { g = new UploadGate(); gates.set(o, g) }
  return g
}
