// A cells file in the format of AFS's CellServDB: a `>cell #comment` line, then one
// server address a line (`HOST:PORT #comment`), and optionally `ca FILE`: the cell CA's
// certificate its servers' ones must be signed by. Blank lines and `#` comments are ignored.

export interface CellEntry { cell: string, servers: string[], ca?: string }

export function parseCellsFile (text: string, name = 'cells file'): CellEntry[] {
  const cells: CellEntry[] = []
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim()
    if (!line) return
    if (line.startsWith('>')) {
      const cell = line.slice(1).trim()
      if (!/^[A-Za-z0-9][A-Za-z0-9.-]*$/.test(cell)) throw new Error(`${name}:${i + 1}: '${cell}' is not a cell name`)
      cells.push({ cell, servers: [] })
      return
    }
    const ca = /^ca\s+(\S.*)$/.exec(line)
    if (ca) {
      if (cells.length === 0) throw new Error(`${name}:${i + 1}: a ca line before any '>cell' line`)
      cells[cells.length - 1].ca = ca[1]
      return
    }
    if (!/^[^\s:]+:\d{1,5}$/.test(line)) throw new Error(`${name}:${i + 1}: expected HOST:PORT, got '${line}'`)
    if (cells.length === 0) throw new Error(`${name}:${i + 1}: a server before any '>cell' line`)
    cells[cells.length - 1].servers.push(line)
  })
  const empty = cells.find(c => c.servers.length === 0)
  if (empty) throw new Error(`${name}: cell ${empty.cell} lists no servers`)
  return cells
}
