// Three-way text merge (diff3) of a conflict's two versions against their common
// ancestor. Clean when the two sides changed different lines; otherwise it reports
// the overlapping changes and merges nothing.
import { diff3Merge } from 'node-diff3'

export type MergeOutcome =
  | { clean: true, text: string }
  | { clean: false, overlaps: Array<{ line: number, local: string[], server: string[] }> }

/** Lines with their line endings, so the merge gives back exactly the bytes it was given. */
function lines (text: string): string[] {
  return text.split(/(?<=\n)/)
}

export function mergeTexts (local: string, base: string, server: string): MergeOutcome {
  const regions = diff3Merge(lines(local), lines(base), lines(server), { excludeFalseConflicts: true })
  const out: string[] = []
  const overlaps: Array<{ line: number, local: string[], server: string[] }> = []
  for (const r of regions) {
    if (r.ok) out.push(...r.ok)
    else if (r.conflict) overlaps.push({ line: r.conflict.oIndex + 1, local: r.conflict.a, server: r.conflict.b })
  }
  return overlaps.length === 0 ? { clean: true, text: out.join('') } : { clean: false, overlaps }
}
