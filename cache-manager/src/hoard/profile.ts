// Hoard profiles: plain text, one command a line in the spirit of Coda's hoard files.
//   add /afs/cell/proj 600:d+     # hoard a tree, descendants including new ones
//   a   /afs/cell/notes.txt       # default priority 500
//   remove /afs/cell/proj/tmp     # drop an entry
// A bad line is reported with its number and nothing of the profile is applied.
import { parsePriority, type Expansion } from './hoard-db.ts'

export interface ProfileLine { line: number, op: 'add' | 'remove', path: string, priority: number, expansion: Expansion }

export class ProfileError extends Error {
  constructor (readonly file: string, readonly problems: string[]) {
    super(`${file}: ${problems.join('; ')}`)
  }
}

/** Parses a profile; `toPath` turns a user path into a mount-relative one (or throws). */
export function parseProfile (text: string, file: string, toPath: (p: string) => string): ProfileLine[] {
  const out: ProfileLine[] = []
  const problems: string[] = []
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/(^|\s)#.*$/, '').trim()
    if (!line) return
    const [verb, path, prio, ...rest] = line.split(/\s+/)
    try {
      if (rest.length) throw new Error(`unexpected '${rest.join(' ')}'`)
      if (!path) throw new Error(`'${verb}' needs a path`)
      if (verb === 'add' || verb === 'a') out.push({ line: i + 1, op: 'add', path: toPath(path), ...parsePriority(prio) })
      else if (verb === 'remove' || verb === 'rm' || verb === 'delete') {
        if (prio !== undefined) throw new Error('remove takes a path only')
        out.push({ line: i + 1, op: 'remove', path: toPath(path), priority: 0, expansion: 'none' })
      } else throw new Error(`unknown command '${verb}' (add, remove)`)
    } catch (err) {
      problems.push(`line ${i + 1}: ${(err as Error).message}`)
    }
  })
  if (problems.length) throw new ProfileError(file, problems)
  return out
}
