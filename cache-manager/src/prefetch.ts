// Small files' bytes that came with a cold listing (fetchDir `data`), written to their
// containers in the background a few at a time, so that a cold walk (find, grep -r, cp -r,
// tar c) opens them without a request each. Speculative: it never evicts anything for
// room, drops what the queue cannot hold, and yields to an open that fetches a file first.
import { makeLog } from '@afs-ts/common'
import type { CacheSpace } from './cache-space.ts'
import type { ContainerStore } from './container-file.ts'
import type { Counters } from './counters.ts'
import type { FsObject } from './fs-object.ts'
import type { ObjectCache } from './object-cache.ts'
import { JobQueue } from './job-queue.ts'

const log = makeLog('cache-manager')
/** Containers filled at once, at most. */
export const PREFETCH_PARALLEL = 8
/** Files waiting to be filled, at most; more are not prefetched (they are fetched when opened). */
export const PREFETCH_QUEUE_MAX = 4096

export interface PrefetchDeps {
  readonly objects: Pick<ObjectCache, 'once'>
  readonly space: Pick<CacheSpace, 'makeRoom' | 'setCached' | 'reservedBytes'>
  readonly containers: Pick<ContainerStore, 'fill' | 'remove'>
  readonly counters: Pick<Counters, 'prefetchedFiles'>
}

export class Prefetcher {
  private readonly jobs = new JobQueue(PREFETCH_PARALLEL, PREFETCH_QUEUE_MAX, 'prefetch')

  constructor (private readonly d: PrefetchDeps) {}

  /** `bytes` are file `o`'s at `version`: its container is filled from them, unless it is cached, changed or written meanwhile. */
  add (o: FsObject, version: number, bytes: Uint8Array): void {
    const wanted = () => o.cachedVersion === null && o.status.dataVersion === version && !o.dirty
    if (!wanted()) return
    // (Under the object's fetch key: an open meanwhile waits for this, or this joins its fetch.)
    this.jobs.push(async () => { if (wanted()) await this.d.objects.once(o.key, async () => { if (wanted()) await this.fill(o, version, bytes) }) })
  }

  private async fill (o: FsObject, version: number, bytes: Uint8Array): Promise<void> {
    try {
      await this.d.space.makeRoom(bytes.length, o.key, 0)
      this.d.space.reservedBytes += bytes.length
      try {
        const n = await this.d.containers.fill(o.key, oneChunk(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)))
        if (o.dirty) return // (cannot be: a write waits for this; its container is the writer's)
        if (o.status.dataVersion === version) {
          this.d.space.setCached(o, version, n)
          this.d.counters.prefetchedFiles++
        } else await this.d.containers.remove(o.key) // a newer version meanwhile: no one counts on this one
      } finally {
        this.d.space.reservedBytes -= bytes.length
      }
    } catch (err) {
      // Never an open's failure: it fetches the file itself.
      if (log.debugging) log.debug(`${o.key}: not prefetched (${(err as Error).message})`)
    }
  }
}

async function * oneChunk (chunk: Buffer): AsyncIterable<Buffer> { yield chunk }
