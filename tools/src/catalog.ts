// Every `afs` command: its name and one line on what it does, and its code, loaded only
// when it runs (so that `afs --help` and the light commands start at once).
import type { Define } from './args.ts'

export interface CatalogEntry { name: string, summary: string, load: () => Promise<Define> }

export const CATALOG: CatalogEntry[] = [
  { name: 'up', summary: 'bring up a one-machine cell mounted at /afs', load: async () => (await import('./commands/up.ts')).defineUp },
  { name: 'server', summary: 'run a volume server (the cell\'s first keeps the location database; others join with --vldb)', load: async () => (await import('./commands/server.ts')).defineServer },
  { name: 'client', summary: 'run a cache manager: mount the cell of a server', load: async () => (await import('./commands/client.ts')).defineClient },
  { name: 'status', summary: 'show servers, volumes, cache use and counters of a cache manager', load: async () => (await import('./commands/status.ts')).defineStatus },
  { name: 'disconnect', summary: 'act as if the servers were unreachable (--write-back: read from them, log changes, trickle them out)', load: async () => (await import('./commands/connectivity.ts')).defineDisconnect },
  { name: 'reconnect', summary: 'end a forced disconnection; the log is replayed as soon as the servers answer', load: async () => (await import('./commands/connectivity.ts')).defineReconnect },
  { name: 'sync', summary: 'push local changes to the servers now; with --wait, return once all are there', load: async () => (await import('./commands/connectivity.ts')).defineSync },
  { name: 'hoard', summary: 'keep files in the cache for disconnected work: add, remove, list, walk, verify, clear, load, suggest', load: async () => (await import('./commands/hoard.ts')).defineHoard },
  { name: 'repair', summary: 'conflicts found by reintegration: list, show, resolve, discard-local, interactive, history, undo, resolver', load: async () => (await import('./commands/repair.ts')).defineRepair },
  { name: 'vos', summary: 'volume administration: create, list, examine, resolve, move, addsite, remsite, setquota, listaddrs', load: async () => (await import('./commands/vos.ts')).defineVos },
  { name: 'pts', summary: 'users and groups of the cell: createuser, creategroup, adduser, removeuser, membership, examine, setpassword, delete, listentries', load: async () => (await import('./commands/pts.ts')).definePts },
  { name: 'login', summary: 'get a token for a user of the cell: this local user\'s processes act as that user', load: async () => (await import('./commands/login.ts')).defineLogin },
  { name: 'tokens', summary: 'list this local user\'s tokens and when they expire', load: async () => (await import('./commands/login.ts')).defineTokens },
  { name: 'logout', summary: 'drop this local user\'s tokens', load: async () => (await import('./commands/login.ts')).defineLogout },
  { name: 'cell', summary: 'the cell\'s certificate authority: init, issue-server (for servers on other machines)', load: async () => (await import('./commands/cell.ts')).defineCell },
  { name: 'fs', summary: 'path commands: listquota, mkmount, lsmount, whereis, flush, setacl, listacl, cleanacl', load: async () => (await import('./commands/fs.ts')).defineFs },
  { name: 'completion', summary: 'print a completion script for bash (or zsh): source <(afs completion)', load: async () => (await import('./commands/completion.ts')).defineCompletion },
]
