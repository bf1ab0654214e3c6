// The parts of fuse-native (2.2.6, with the project's patch) that the adapter uses.
declare module 'fuse-native' {
  type Cb = (...args: any[]) => void
  export default class Fuse {
    constructor (mnt: string, ops: Record<string, (...args: any[]) => void>, opts?: Record<string, unknown>)
    /** Set by the afs-ts patch before each handler runs. */
    caller?: { uid: number, gid: number, pid: number }
    mount (cb: (err: Error | null) => void): void
    unmount (cb: (err: Error | null) => void): void
    static unmount (mnt: string, cb: (err: Error | null) => void): void
    static [errno: string]: unknown
  }
  export type { Cb }
}
