// Parsing of user-facing sizes ("10G", "512M") and host:port addresses.

const SIZE_UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }

/** "1.5G" → bytes; accepts an optional B or iB suffix; throws a one-line error otherwise. */
export function parseSize (text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text)
  if (!m) throw new Error(`not a size: '${text}' (try 512M, 10G)`)
  return Math.floor(Number(m[1]) * SIZE_UNITS[m[2].toLowerCase()])
}

export function formatSize (bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let n = bytes
  let i = 0
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`
}

export interface HostPort { host: string, port: number }

export function parseHostPort (text: string): HostPort {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(text)
  const port = m ? Number(m[2]) : NaN
  if (!m || port > 65535) throw new Error(`not HOST:PORT: '${text}'`)
  return { host: m[1].replace(/^\[|\]$/g, ''), port }
}
