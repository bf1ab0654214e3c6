// Moving an unreplicated volume to another server (`afs vos move`), as OpenAFS's `vos
// move`: the volume stays in use while it is copied; then a short final switch — its
// updates wait, what changed during the copy is copied again, the location entry names the
// new server under a new epoch, and the old server refuses every request for the volume
// from then on (MOVED: the clients look it up again and go on at the new server).
import { AfsError, fetchWholeDir, fidKey, invalid, makeLog, moved, type Fid, type ObjectType, type Peer, type VolumeEntry } from '@afs-ts/common'
import type { LocationDb } from '@afs-ts/volumes'
import type { VolumeStore } from './volume-store.ts'
import { stub } from './resolve.ts'

const log = makeLog('fileserver')
/** Objects copied at once (directories go first, one at a time). */
const COPYING_AT_ONCE = 8

/** A move under way: copying while in use, or in its final switch; objects copied of those to copy in this pass. */
export interface MoveProgress { phase: 'copying' | 'switching', done: number, total: number, to: string }

/** What a move needs of its server. */
export interface MoverDeps {
  readonly store: VolumeStore
  readonly vldb: Pick<LocationDb, 'get' | 'update'>
  self (): string
  peer (address: string): Peer
  /** The volume's every callback promise broken (its clients cache it from the new server from now on). */
  breakAll (volume: number): Promise<void>
}

export class VolumeMover {
  /** Volumes in their final switch: their updates wait for it. */
  private readonly switching = new Map<number, Promise<void>>()
  /** Updates under way, by volume (the switch waits for them to end). */
  private readonly updating = new Map<number, number>()
  private readonly moving = new Set<number>()
  /** Moves under way here, by volume name: what they are doing and how far they got. */
  private readonly progress = new Map<string, MoveProgress>()

  constructor (private readonly d: MoverDeps) {}

  /**
   * Runs an update of `volume` here: refused once the volume moved away; during a move's
   * final switch it waits for the switch (and is then refused: the client goes on at the
   * new server).
   */
  async update<T> (volume: number | undefined, run: () => Promise<T>): Promise<T> {
    if (volume === undefined) return await run()
    await this.switching.get(volume)
    this.check(volume)
    this.updating.set(volume, (this.updating.get(volume) ?? 0) + 1)
    try {
      return await run()
    } finally {
      this.updating.set(volume, this.updating.get(volume)! - 1)
    }
  }

  /** Refuses a request for a volume that moved away from here, or whose move's switch is not settled. */
  check (volume: number | undefined): void {
    if (volume === undefined) return
    const to = this.d.store.movedTo(volume)
    if (to !== undefined) throw moved(`volume ${volume} moved to ${to}`, { to })
    const moving = this.d.store.movingTo(volume)
    if (moving !== undefined && !this.switching.has(volume)) {
      throw new AfsError('UNAVAILABLE', `volume ${volume}: its move to ${moving} was cut off in its switch; it is served again once the location database says where it is`)
    }
  }

  /**
   * A move cut off in its switch (a crash, or the location database's answer lost): the
   * location database says whether it happened — moved away, or still here.
   */
  async settle (volume: number, was?: string): Promise<void> {
    const to = this.d.store.movingTo(volume)
    if (to === undefined) return
    const entry = await this.d.vldb.get(volume)
    // (`was`: this server's address before a restart elsewhere: the entry may still name it so.)
    const here = entry.servers.some(s => s === this.d.self() || s === was)
    if (here) await this.d.store.markMoving(volume, undefined)
    else await this.d.store.markMoved(volume, entry.servers[0])
    log.info(`volume ${entry.name} (${volume}): its cut-off move is settled: ${here ? 'still here' : `on ${entry.servers[0]}`}`)
  }

  /** Moves volume `name`, kept here alone, to server `to`. Returns its new location entry. */
  async move (name: string, to: string): Promise<VolumeEntry> {
    const entry = await this.d.vldb.get(name)
    const self = this.d.self()
    if (entry.servers.length > 1) throw invalid(`${name} is replicated: give it a new member with vos addsite and take one out with vos remsite`)
    if (entry.servers[0] !== self) throw invalid(`${name} is on ${entry.servers[0]}: ask that server to move it`)
    if (to === self) throw invalid(`${name} is on ${to} already`)
    if (this.moving.has(entry.id)) throw new AfsError('BUSY', `${name} is being moved already`)
    this.moving.add(entry.id)
    const started = Date.now()
    const progress: MoveProgress = { phase: 'copying', done: 0, total: 0, to }
    this.progress.set(name, progress)
    try {
      const peer = this.d.peer(to)
      const root = this.d.store.status(entry.root)
      await peer.call('volAttach', { id: entry.id, name, quota: entry.quota, slot: null, createdMs: root.ctimeMs })
      // Copy while in use, then switch: updates wait while what changed meanwhile is copied again.
      const first = await this.copy(entry.id, to, null, started, progress)
      let release!: () => void
      this.switching.set(entry.id, new Promise<void>(resolve => { release = resolve }))
      const held = Date.now()
      let out: VolumeEntry
      try {
        while ((this.updating.get(entry.id) ?? 0) > 0) await new Promise(resolve => setTimeout(resolve, 5))
        progress.phase = 'switching'
        const again = await this.copy(entry.id, to, first, started, progress)
        // Marked on disk first: a crash, or an answer lost, between here and the mark below leaves a volume not served until settled.
        await this.d.store.markMoving(entry.id, to)
        try {
          out = await this.d.vldb.update(entry.id, { servers: [to], epoch: (entry.epoch ?? 0) + 1 })
        } catch (err) {
          await this.settle(entry.id).catch(() => {})
          throw err
        }
        await this.d.store.markMoved(entry.id, to)
        log.info(`volume ${name} (${entry.id}) moved to ${to}: ${first.size} objects copied, ${again.size} again during the switch; updates waited ${Date.now() - held} ms; ${Date.now() - started} ms in all`)
      } finally {
        this.switching.delete(entry.id)
        release()
      }
      await this.d.breakAll(entry.id)
      return out
    } finally {
      this.moving.delete(entry.id)
      this.progress.delete(name)
    }
  }

  /** How far the move of volume `name` got, if one is under way here. */
  progressOf (name: string): MoveProgress | null {
    return this.progress.get(name) ?? null
  }

  /**
   * Has `to` take every object of the volume (directories first, so that the objects they
   * name come in under them), or with `before`, only those changed since that copy began at `since` (every
   * directory again: that is how removals reach it). Returns the version of each object copied.
   */
  private async copy (volume: number, to: string, before: Map<number, string> | null, since: number, progress: MoveProgress): Promise<Map<number, string>> {
    const objects = this.d.store.vectors(volume, 0, Number.MAX_SAFE_INTEGER)
    const versions = new Map<number, string>()
    const want: Array<{ fid: Fid, type: ObjectType }> = []
    for (const o of objects) {
      const fid = { volume, vnode: o.vnode, unique: o.unique }
      // Its data version and change time: any change of data, attributes or names moves one of them.
      const st = this.d.store.status(fid)
      const version = `${st.dataVersion}:${st.ctimeMs}:${st.nlink}`
      versions.set(o.vnode, version)
      // (Changed since the copy began, within the millisecond its version was read: taken again too.)
      if (o.type === 'dir' || before?.get(o.vnode) !== version || st.ctimeMs >= since) want.push({ fid, type: o.type })
    }
    const peer = this.d.peer(to)
    progress.done = 0
    progress.total = want.length
    const take = async (fid: Fid) => { await peer.call('moveTake', { fid, from: this.d.self() }); progress.done++ }
    for (const w of want.filter(x => x.type === 'dir')) await take(w.fid)
    const rest = want.filter(x => x.type !== 'dir')
    let next = 0
    await Promise.all(Array.from({ length: Math.min(COPYING_AT_ONCE, rest.length) }, async () => {
      while (next < rest.length) await take(rest[next++].fid)
    }))
    return before ? new Map(want.map(w => [w.fid.vnode, versions.get(w.fid.vnode)!])) : versions
  }

  /** Removes directory `name` of `dir`, and everything under it, from the copy here. */
  private async clear (dir: Fid, name: string, fid: Fid): Promise<void> {
    for (const [n, f, type] of this.d.store.listAll(fid)) {
      if (type === 'dir') await this.clear(fid, n, f)
      else await this.d.store.remove(fid, n, false)
    }
    await this.d.store.remove(dir, name, true)
  }

  /**
   * Here, on the server a volume moves to: takes object `fid` exactly as `from` has it —
   * a file's bytes, a directory's entries (one it no longer has goes; one whose object is
   * not here yet comes as a stub, filled when that object is taken).
   */
  async take (fid: Fid, from: string): Promise<void> {
    const peer = this.d.peer(from)
    const { status } = await peer.call('fetchStatus', { fid })
    if (status.type === 'file') {
      const { result, body } = await peer.download('fetchData', { fid })
      await this.d.store.installObject(result.status, body, fid.vnode)
      return
    }
    if (status.type !== 'dir') { await this.d.store.installObject(status, null, fid.vnode); return }
    const { entries, status: listed } = await fetchWholeDir(peer, fid)
    const theirs = new Set(entries.map(([, f]) => fidKey(f)))
    // A directory gone there may still hold, here, what was copied into it before: it goes whole.
    if (this.d.store.hasObject(fid)) {
      for (const [name, f, type] of this.d.store.listAll(fid)) if (type === 'dir' && !theirs.has(fidKey(f))) await this.clear(fid, name, f)
    }
    await this.d.store.installDir(listed, entries, f => theirs.has(fidKey(f)) ? 'moved' : 'removed', (f, t) => stub(f, t, fid.vnode))
  }
}

