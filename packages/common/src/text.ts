// Whether bytes are text, for diffs and merges.

/** Text: valid UTF-8 without NUL bytes. */
export function isText (buf: Buffer): boolean {
  if (buf.includes(0)) return false
  try { new TextDecoder('utf-8', { fatal: true }).decode(buf); return true } catch { return false }
}
