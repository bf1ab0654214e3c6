// Version vectors of replicated volumes: member server id → updates it took (a member
// absent counts 0). Servers compare them to resolve; clients, to see members differ.

export type VersionVector = Record<string, number>
export type Order = 'equal' | 'dominates' | 'dominated' | 'incomparable'

/** How version vector `a` stands to `b`. */
export function compareVv (a: VersionVector = {}, b: VersionVector = {}): Order {
  let more = false
  let less = false
  for (const m of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = a[m] ?? 0
    const y = b[m] ?? 0
    if (x > y) more = true
    if (x < y) less = true
  }
  return more && less ? 'incomparable' : more ? 'dominates' : less ? 'dominated' : 'equal'
}

/** Whether `a` counts every update `b` counts (it dominates or equals it). */
export function countsAll (a: VersionVector = {}, b: VersionVector = {}): boolean {
  const order = compareVv(a, b)
  return order === 'equal' || order === 'dominates'
}

/** The elementwise maximum of two version vectors. */
export function maxVv (a: VersionVector, b: VersionVector): VersionVector {
  const out = { ...a }
  for (const [m, n] of Object.entries(b)) out[m] = Math.max(out[m] ?? 0, n)
  return out
}
