// Every `afs` command: its name and one line on what it does, and its code, loaded only
// when it runs (so that `afs --help` and the light commands start at once).
import type { Command } from './args.ts'

export interface CatalogEntry { name: string, summary: string, load: () => Promise<Command> }

export const CATALOG: CatalogEntry[] = [
  { name: 'up', summary: 'bring up a one-machine cell mounted at /afs', load: async () => (await import('./commands/up.ts')).upCommand },
  { name: 'server', summary: 'run a volume server (the cell\'s first keeps the location database; others join with --vldb)', load: async () => (await import('./commands/server.ts')).serverCommand },
  { name: 'client', summary: 'run a cache manager: mount the cell of a server', load: async () => (await import('./commands/client.ts')).clientCommand },
  { name: 'status', summary: 'show servers, volumes, cache use and counters of a cache manager', load: async () => (await import('./commands/status.ts')).statusCommand },
  { name: 'disconnect', summary: 'act as if the servers were unreachable (--write-back: read from them, log changes, trickle them out)', load: async () => (await import('./commands/connectivity.ts')).disconnectCommand },
  { name: 'reconnect', summary: 'end a forced disconnection; the log is replayed as soon as the servers answer', load: async () => (await import('./commands/connectivity.ts')).reconnectCommand },
  { name: 'sync', summary: 'push local changes to the servers now; with --wait, return once all are there', load: async () => (await import('./commands/connectivity.ts')).syncCommand },
  { name: 'hoard', summary: 'keep files in the cache for disconnected work: add, remove, list, walk, verify, clear, load, suggest', load: async () => (await import('./commands/hoard.ts')).hoardCommand },
  { name: 'repair', summary: 'conflicts found by reintegration: list, show, resolve, discard-local, interactive, history, undo, resolver', load: async () => (await import('./commands/repair.ts')).repairCommand },
  { name: 'vos', summary: 'volume administration: create, list, examine, resolve, move, addsite, remsite, setquota, listaddrs', load: async () => (await import('./commands/vos.ts')).vosCommand },
  { name: 'pts', summary: 'users and groups of the cell: createuser, creategroup, adduser, removeuser, membership, examine, setpassword, delete, listentries', load: async () => (await import('./commands/pts.ts')).ptsCommand },
  { name: 'login', summary: 'get a token for a user of the cell: this local user\'s processes act as that user', load: async () => (await import('./commands/login.ts')).loginCommand },
  { name: 'tokens', summary: 'list this local user\'s tokens and when they expire', load: async () => (await import('./commands/login.ts')).tokensCommand },
  { name: 'logout', summary: 'drop this local user\'s tokens', load: async () => (await import('./commands/login.ts')).logoutCommand },
  { name: 'cell', summary: 'the cell\'s certificate authority: init, issue-server (for servers on other machines)', load: async () => (await import('./commands/cell.ts')).cellCommand },
  { name: 'fs', summary: 'path commands: listquota, mkmount, lsmount, whereis, flush', load: async () => (await import('./commands/fs.ts')).fsCommand },
]
