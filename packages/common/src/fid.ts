// File ids: volume.vnode.uniquifier, as in AFS. A fid names one object for its life;
// the uniquifier tells a reused vnode slot from its previous occupant.

export interface Fid { volume: number, vnode: number, unique: number }

export const ROOT_VNODE = 1
export const ROOT_UNIQUE = 1

export function fidKey (f: Fid): string {
  return `${f.volume}.${f.vnode}.${f.unique}`
}

export function parseFid (s: string): Fid {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(s)
  if (!m) throw new Error(`not a fid: ${s}`)
  return { volume: Number(m[1]), vnode: Number(m[2]), unique: Number(m[3]) }
}

export function rootFid (volume: number): Fid {
  return { volume, vnode: ROOT_VNODE, unique: ROOT_UNIQUE }
}

export function sameFid (a: Fid, b: Fid): boolean {
  return a.volume === b.volume && a.vnode === b.vnode && a.unique === b.unique
}
