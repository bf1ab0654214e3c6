// Speculative work in the background (prefetch.ts, read-ahead.ts): jobs run a few at a
// time from a bounded queue, each as the caller that queued it (its async context: the
// acting user, whose rights the server checks). A full queue drops a job; a job's failure
// is never its caller's (the open that needs the file fetches it itself) and is only logged.
import { AsyncResource } from 'node:async_hooks'
import { makeLog } from '@afs-ts/common'

const log = makeLog('cache-manager')

export class JobQueue {
  private running = 0
  private readonly queue: Array<() => Promise<void>> = []

  /** `parallel`: jobs run at once, at most; `max`: jobs waiting, at most. `what`: what they do, for the log. */
  constructor (private readonly parallel: number, private readonly max: number, private readonly what: string) {}

  /** Queues `job`, unless the queue is full. */
  push (job: () => Promise<void>): void {
    if (this.queue.length >= this.max) return
    this.queue.push(AsyncResource.bind(job))
    this.pump()
  }

  private pump (): void {
    while (this.running < this.parallel && this.queue.length > 0) {
      const job = this.queue.shift()!
      this.running++
      void job()
        .catch((err: unknown) => { if (log.debugging) log.debug(`${this.what}: ${(err as Error).message}`) })
        .finally(() => { this.running--; this.pump() })
    }
  }
}
