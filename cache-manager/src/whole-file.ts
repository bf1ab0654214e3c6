// Whole files (AFS's and Coda's unit of caching): fetched whole into a container when
// opened, stored back whole when closed. Responsibilities:
//   1. fetch a file's current version once for concurrent callers, with room made first
//      (a cold read-only open of a large one reads it as it comes in)
//   2. store a written file whole (or log it while disconnected), one store at a time
//   3. keep the ancestor of a file about to change offline, for conflicts' three-way merges
import { createReadStream } from 'node:fs'
import { isUnreachable, AfsError, formatSize, makeLog, tooLarge, CHUNK_BYTES, type Fid, type StatusReply, type VnodeStatus } from '@afs-ts/common'
import type { CacheSpace } from './cache-space.ts'
import type { ContainerStore } from './container-file.ts'
import type { Counters } from './counters.ts'
import type { Emulator } from './emulator.ts'
import type { Locks } from './locks.ts'
import type { ObjectCache } from './object-cache.ts'
import type { ReadFdCache } from './read-fd-cache.ts'
import type { Ancestors } from './repair/ancestors.ts'
import type { ConflictKeeper } from './repair/conflict-keeper.ts'
import type { Cell } from './cell.ts'
import { isLocalFid, type ClientModifyLog } from './cml.ts'
import { hasData, localMtime, mergeAttrs, withAttrs, type FsObject, type LocalAttrs } from './fs-object.ts'
import { objectKey, type FsObjectTable } from './fs-object-table.ts'
import { uploadGate } from './upload-gate.ts'
import { STREAMED_READ_MIN_BYTES } from './constants.ts'
import { Fillings, type Filling } from './filling.ts'

const log = makeLog('cache-manager')
/** Fetches of a file overtaken by a break of its callback, at most (then the last one is used). */
const FETCH_ATTEMPTS = 3

/** What whole-file transfer needs of the cache manager. */
export interface WholeFilesDeps {
  readonly objects: Pick<ObjectCache, 'accept' | 'online' | 'once' | 'serialize'>
  readonly table: FsObjectTable
  readonly cml: Pick<ClientModifyLog, 'references' | 'reserve'>
  readonly containers: ContainerStore
  readonly space: CacheSpace
  readonly counters: Counters
  readonly readFds: Pick<ReadFdCache, 'drop'>
  readonly emulator: Pick<Emulator, 'store' | 'setattr'>
  readonly conflicts: Pick<ConflictKeeper, 'keepLater'>
  readonly ancestors: Pick<Ancestors, 'keep'>
  readonly fileLocks: Pick<Locks, 'writeGeneration'>
  /** Replays a cell's log now (a store that could not go to the server went to the log). */
  readonly reintegrator: { run (cell: Cell): Promise<unknown> }
}

export class WholeFiles {
  private readonly fillings: Fillings

  constructor (private readonly d: WholeFilesDeps) {
    this.fillings = new Fillings(d.containers)
  }

  /** A store replayed from the log: the container now holds the server's new version. */
  stored (cell: Cell, fid: Fid, status: VnodeStatus): void {
    const o = this.d.table.get(objectKey(cell.name, fid))
    if (!o || isLocalFid(fid)) return
    o.status = status
    if (o.loggedGen === o.writeGen) o.dirty = false
    o.baseVersion = null
    this.d.space.setCached(o, status.dataVersion, o.cachedBytes)
  }

  /**
   * Makes sure the container holds the current version of a file: fetched whole if not,
   * while its server answers (in write-back mode too) and the container holds no change
   * still to reach it; otherwise whatever it holds.
   */
  async ensureData (cell: Cell, o: FsObject, priority = this.d.space.usePriority(o.key)): Promise<void> {
    const wanted = () => !hasData(o) && (o.cachedVersion === null || this.refreshable(cell, o))
    if (!wanted()) return
    try {
      await this.d.objects.once(o.key, () => this.fetch(cell, o, priority)).catch(async (err: unknown) => {
        // A fetch shared with a lower-priority caller (a hoard walk) may have found no room that this one would.
        if (!(err instanceof AfsError && err.code === 'NO_SPACE')) throw err
        await this.d.objects.once(o.key, () => this.fetch(cell, o, priority))
      })
      // What was under way was a prefetch that did not fill it (no room, or an older version): fetched now.
      if (wanted()) await this.d.objects.once(o.key, () => this.fetch(cell, o, priority))
    } catch (err) {
      if (!isUnreachable(err) || o.cachedVersion === null) throw err
    }
  }

  /**
   * For a read-only open: where to read the file from. Null: its container, complete. A
   * Filling (taken for the caller, who releases it): the file is fetched cold right now,
   * and its bytes may be read as they come in.
   */
  async readable (cell: Cell, o: FsObject): Promise<Filling | null> {
    if (o.cachedVersion !== null) { await this.ensureData(cell, o); return null }
    const filling = await this.fillings.take(o.key, this.ensureData(cell, o))
    if (filling) this.d.counters.streamedOpens++
    return filling
  }

  private refreshable (cell: Cell, o: FsObject): boolean {
    return cell.route(o.status.fid.volume).connected && !o.dirty && !this.d.cml.references(cell.name, o.status.fid)
  }

  /** Fetches a file whole; `priority` decides which cached files may make room for it. */
  private async fetch (cell: Cell, o: FsObject, priority: number): Promise<void> {
    if (hasData(o)) return
    const size = o.status.size
    if (size > this.d.space.limitBytes) {
      log.error(`cannot cache ${o.key}: it is ${formatSize(size)} and the cache holds ${formatSize(this.d.space.limitBytes)}`)
      throw tooLarge(`file of ${size} bytes is larger than the cache (${this.d.space.limitBytes} bytes)`)
    }
    await this.d.space.makeRoom(size, o.key, priority)
    // Held until the container is counted, so concurrent fetches cannot overfill the cache.
    this.d.space.reservedBytes += size
    try {
      for (let attempt = 1; ; attempt++) {
        const { result: reply, body } = await cell.route(o.status.fid.volume).download('fetchData', { fid: o.status.fid })
        this.d.counters.fetches++
        // Take the status and callback now: a break for a newer version can arrive while the
        // data streams in, and must not be undone by taking them afterwards.
        this.d.objects.accept(cell, reply)
        const raced = reply.callback.expiresAt === 0
        // Readers waiting for a large file read it as it comes in — unless a break overtook
        // the reply and it is fetched once more.
        const streamed = reply.status.size >= STREAMED_READ_MIN_BYTES && !(raced && attempt < FETCH_ATTEMPTS)
        const bytes = await this.fillings.fill(o.key, body, streamed ? reply.status.size : null)
        this.d.counters.bytesFetched += bytes
        this.d.space.setCached(o, reply.status.dataVersion, bytes)
        if (log.debugging) log.debug(`fetched ${o.key} version ${reply.status.dataVersion} (${bytes} bytes${raced ? ', overtaken by a callback break' : ''})`)
        // A break overtook the reply: the file changed after this version was read. Once
        // more, so that an open right after another client's store sees that store.
        if (!raced || attempt >= FETCH_ATTEMPTS) break
      }
    } finally {
      this.d.space.reservedBytes -= size
    }
  }

  /**
   * Holds an attribute change of a file open for writing, with writes not yet stored, to
   * send with its store at close (no request of its own); false when it must go now
   * (the file is clean, in conflict, or its volume logs changes). Its status shows it at once.
   */
  hold (cell: Cell, o: FsObject, change: LocalAttrs, openForWriting: boolean): boolean {
    if (!openForWriting || !o.dirty || o.unlinked || o.conflict || o.status.type !== 'file' || Object.keys(change).length === 0) return false
    if (!this.d.objects.online(cell, o.status.fid.volume) || cell.writeBack) return false
    o.heldAttrs = mergeAttrs(o.heldAttrs ?? {}, change)
    // (The store's change time: what is shown now stays, once the server has it.)
    o.localCtimeMs = Date.now()
    o.status = { ...withAttrs(o.status, change), ctimeMs: o.localCtimeMs }
    if (change.mtimeMs !== undefined) { o.localMtimeMs = change.mtimeMs; o.localMtimeNs = change.mtimeNs ?? 0 }
    return true
  }

  /**
   * Stores a dirty container whole; later writes keep it dirty. Serialized per object.
   * While the server is unreachable the store goes to the log instead (under `sent`: the
   * number of a request the server stopped answering, which this store stands for).
   */
  async store (cell: Cell, o: FsObject, sent?: number): Promise<void> {
    await this.d.objects.serialize(o.key, async () => {
      if (!o.dirty || o.unlinked) return
      if (o.conflict) await this.d.conflicts.keepLater(o)
      // (Attributes set while it was written go with it; any set from now on wait for the next store.)
      const held = o.heldAttrs
      o.heldAttrs = null
      if (!this.d.objects.online(cell, o.status.fid.volume)) {
        if (o.loggedGen !== o.writeGen || o.writeGen === 0) await this.d.emulator.store(cell, o, sent)
        if (held) await this.d.emulator.setattr(cell, o, held)
        return
      }
      let gen = 0
      let size = 0
      let reply: StatusReply
      const seq = await this.d.cml.reserve()
      const { mtimeMs: _, mtimeNs: __, ...attrs } = held ?? {}
      try {
        reply = await uploadGate(o).upload(async () => {
          gen = o.writeGen
          size = await this.d.containers.size(o.key)
          return await cell.route(o.status.fid.volume).upload('store',
            { fid: o.status.fid, size, ...localMtime(o), ...(o.localCtimeMs ? { ctimeMs: o.localCtimeMs } : {}), ...fenced(this.d.fileLocks.writeGeneration(o.status.fid)), seq, ...attrs },
            () => size === 0 ? noBytes() : createReadStream(this.d.containers.path(o.key), { start: 0, end: size - 1, highWaterMark: CHUNK_BYTES }))
        })
      } catch (err) {
        // A held change is never lost with the store: logged after it, or held again.
        if (isUnreachable(err)) {
          await this.d.emulator.store(cell, o, seq)
          if (held) await this.d.emulator.setattr(cell, o, held)
          return
        }
        if (AfsError.from(err).code === 'NO_LOCK') {
          await this.lockLost(cell, o)
          if (held) await this.d.emulator.setattr(cell, o, held)
        } else if (held) o.heldAttrs = mergeAttrs(held, o.heldAttrs ?? {}) // (for the next try)
        if (isRejection(err)) {
          await this.discardLocal(o)
          // The bytes were refused for good; the attributes are a change of their own.
          if (o.heldAttrs) await this.sendHeld(cell, o).catch((e: unknown) => { log.warn(`${o.key}: attributes set while it was written: ${(e as Error).message}`) })
        }
        throw err
      }
      this.d.counters.stores++
      this.d.counters.bytesStored += size
      this.d.objects.accept(cell, reply)
      if (log.debugging) log.debug(`stored ${o.key} as version ${reply.status.dataVersion} (${size} bytes)`)
      if (o.writeGen === gen) o.dirty = false
      this.d.space.setCached(o, reply.status.dataVersion, size)
      // Held while this store was on its way, and nothing left to store: they go now.
      if (o.heldAttrs && !o.dirty) await this.sendHeld(cell, o)
    })
    await this.d.space.trim()
  }

  /** Sends held attributes as a change of their own (the log takes them while the server is unreachable). */
  private async sendHeld (cell: Cell, o: FsObject): Promise<void> {
    const held = o.heldAttrs!
    o.heldAttrs = null
    try {
      this.d.objects.accept(cell, await cell.route(o.status.fid.volume).call('setattr', { fid: o.status.fid, ...held }))
    } catch (err) {
      if (!isUnreachable(err)) throw err
      await this.d.emulator.setattr(cell, o, held)
    }
  }

  /**
   * The write lock these bytes were written under ran out and may be another's now: they
   * are logged against the version they were written over, so that reintegration keeps
   * them beside any change the new holder made (a conflict), and the caller is told.
   */
  private async lockLost (cell: Cell, o: FsObject): Promise<void> {
    log.error(`${o.key}: stored after its write lock was lost; kept in the log (a conflict if the file changed meanwhile)`)
    await this.d.emulator.store(cell, o)
    void this.d.reintegrator.run(cell)
  }

  /**
   * Before a cached file first changes while its volume is offline: keeps the server
   * version it holds as the common ancestor for a conflict's three-way merge.
   */
  async keepAncestor (cell: Cell, o: FsObject): Promise<void> {
    if (o.status.type !== 'file' || isLocalFid(o.status.fid) || o.dirty || o.baseVersion !== null) return
    if (o.cachedVersion !== o.status.dataVersion || this.d.objects.online(cell, o.status.fid.volume)) return
    await this.d.ancestors.keep(o.key, o.cachedVersion, this.d.containers.path(o.key), o.cachedBytes)
  }

  /** The server refused a store for good (quota, space, gone): the copy reverts to the server's. */
  private async discardLocal (o: FsObject): Promise<void> {
    log.warn(`store of ${o.key} refused; local changes dropped, the server's version stays`)
    o.dirty = false
    o.cbExpiresAt = 0
    this.d.readFds.drop(o.key)
    await this.d.containers.remove(o.key)
    this.d.space.setCached(o, null, 0)
  }
}

async function * noBytes (): AsyncIterable<Buffer> { /* an empty file */ }

/** Errors after which retrying the same store cannot succeed. */
function fenced (generation: number | undefined): { lock?: number } {
  return generation === undefined ? {} : { lock: generation }
}

function isRejection (err: unknown): boolean {
  return err instanceof AfsError && ['QUOTA', 'NO_SPACE', 'NOT_FOUND', 'PERMISSION', 'IS_DIR', 'INVALID'].includes(err.code)
}
