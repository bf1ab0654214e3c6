// Forced connectivity (Coda's `cfs disconnect` / write-disconnected mode) and `afs sync`:
// the user's say over when the cache manager talks to its servers.
import { makeLog } from '@afs-ts/common'
import type { Cell } from './cell.ts'
import type { ClientModifyLog } from './cml.ts'
import type { Reintegrator } from './reintegrator.ts'
import { WRITE_BACK_AGE_MS } from './constants.ts'

const log = makeLog('cache-manager')

export interface SyncReport { pending: { records: number, bytes: number }, why: string[] }

/** What forced connectivity needs of the cache manager. */
export interface ConnectivityDeps {
  readonly cells: Map<string, Cell>
  readonly cml: Pick<ClientModifyLog, 'size' | 'hasRecordsFor' | 'pending'>
  readonly reintegrator: Pick<Reintegrator, 'run' | 'last'>
}

export class Connectivity {
  private trickle: NodeJS.Timeout | null = null

  constructor (private readonly d: ConnectivityDeps) {}

  /**
   * `afs disconnect`: every server counts as unreachable; with `writeBack`, servers are
   * still read but mutations go to the log and trickle out once `ageMs` old.
   */
  disconnect (writeBack: boolean, ageMs = WRITE_BACK_AGE_MS): void {
    if (!writeBack) {
      for (const c of this.d.cells.values()) c.force(true)
      return
    }
    for (const c of this.d.cells.values()) c.writeBack = true
    if (this.trickle) clearInterval(this.trickle)
    this.trickle = setInterval(() => {
      for (const c of this.d.cells.values()) void this.d.reintegrator.run(c, { olderThanMs: ageMs })
    }, Math.max(200, Math.min(ageMs, 1000)))
    this.trickle.unref()
    log.info(`write-back mode: changes go to the log and reach the servers after ${ageMs} ms`)
  }

  /** `afs reconnect`: back to normal; the log is replayed as soon as the servers answer. */
  reconnect (): void {
    if (this.trickle) clearInterval(this.trickle)
    this.trickle = null
    for (const c of this.d.cells.values()) {
      c.writeBack = false
      c.force(false)
      void this.d.reintegrator.run(c)
    }
  }

  /** `afs sync`: replays every log now (in write-back mode too); with `waitMs`, until it is empty or the time is up. */
  async sync (waitMs: number): Promise<SyncReport> {
    const end = Date.now() + waitMs
    do {
      for (const c of this.d.cells.values()) await this.d.reintegrator.run(c, c.writeBack ? { olderThanMs: 0 } : undefined)
      if (this.d.cml.size === 0 || Date.now() >= end) break
      await new Promise(resolve => setTimeout(resolve, 200))
    } while (Date.now() < end)
    const why: string[] = []
    for (const c of this.d.cells.values()) {
      if (!this.d.cml.hasRecordsFor(c.name)) continue
      const link = c.anyLink()
      if (c.writeBack) why.push(`${c.name}: write-back mode (afs reconnect flushes it)`)
      else if (!link.connected) why.push(`${c.name}: server ${link.address} unreachable (${link.downCause})`)
      else why.push(`${c.name}: ${this.d.reintegrator.last.get(c.name)?.error ?? 'reintegration in progress'}`)
    }
    return { pending: this.d.cml.pending(), why }
  }

  close (): void {
    if (this.trickle) clearInterval(this.trickle)
    this.trickle = null
  }
}
