// `afs fs`: questions and changes about paths under the mount (listquota, mkmount,
// lsmount, whereis, flush; setacl, listacl, cleanacl), answered by the cache manager as
// the caller (with the caller's tokens).
import { resolve } from 'node:path'
import { formatRights, formatSize, parseRights, withEntry, type Acl } from '@afs-ts/common'
import { cacheDirOf, cacheOption, need, UsageError, EXIT_OK, type Command } from '../args.ts'
import { controlCall } from '../control-client.ts'
import { serverCaller, serverOptions } from '../server-client.ts'
import { table } from '../table.ts'

/** An ACL shown by name: each entry's user or group ('#ID' for one that is no longer in the protection database). */
interface ShownAcl { positive: Array<{ name: string, id: number, rights: string }>, negative: Array<{ name: string, id: number, rights: string }> }

/** A server of `cell`, asked for the names and ids of the protection database. */
async function ptsServer (cache: string, cell: string): Promise<string> {
  const s = (await controlCall(cache, 'servers')).find(c => c.cell === cell)?.servers[0]
  if (!s) throw new Error(`no server of cell ${cell} known to the cache manager`)
  return s
}

export const fsCommand: Command = {
  name: 'fs',
  usage: 'afs fs listquota PATH | mkmount PATH VOLUME | lsmount PATH | whereis PATH | flush PATH | setacl DIR WHO RIGHTS [--negative] | listacl DIR | cleanacl DIR  [--cache DIR] [--json]\n  (RIGHTS: letters of rlidwka, or read, write, all, none to remove the entry)',
  options: { ...cacheOption(), ...serverOptions(), json: { type: 'boolean' }, negative: { type: 'boolean' } },
  async run (v, pos) {
    const [sub, ...rest] = pos
    const cache = cacheDirOf(v)
    const print = (human: string, json: unknown) => process.stdout.write(v.json ? JSON.stringify(json, null, 2) + '\n' : human)
    switch (sub) {
      case 'listquota': {
        const [p] = need(rest, 1, 'fs listquota PATH')
        const q = await controlCall(cache, 'listquota', { path: resolve(p) })
        const pct = q.quota ? `${Math.round(100 * q.used / q.quota)}%` : '-'
        print(table(['VOLUME', 'QUOTA', 'USED', '%USED', 'FILES'], [[q.volume, q.quota ? formatSize(q.quota) : 'no limit', formatSize(q.used), pct, q.files]]), q)
        return EXIT_OK
      }
      case 'mkmount': {
        const [p, volume] = need(rest, 2, 'fs mkmount PATH VOLUME')
        await controlCall(cache, 'mkmount', { path: resolve(p), volume })
        print(`${p} is now a mount point for volume ${volume}\n`, { path: p, volume })
        return EXIT_OK
      }
      case 'lsmount': {
        const [p] = need(rest, 1, 'fs lsmount PATH')
        const r = await controlCall(cache, 'lsmount', { path: resolve(p) })
        print(`'${p}' is a mount point for volume '#${r.volume}'\n`, r)
        return EXIT_OK
      }
      case 'whereis': {
        const [p] = need(rest, 1, 'fs whereis PATH')
        const r = await controlCall(cache, 'whereis', { path: resolve(p) })
        print(`File ${p} is on host${r.servers.length > 1 ? 's' : ''} ${r.servers.join(' ')} (volume ${r.volume}, fid ${r.fid})\n`, r)
        return EXIT_OK
      }
      case 'flush': {
        const [p] = need(rest, 1, 'fs flush PATH')
        const r = await controlCall(cache, 'flush', { path: resolve(p) })
        print(r.evicted ? `flushed ${p}\n` : `flushed the status of ${p}; its data stays while it is open or unsaved\n`, r)
        return EXIT_OK
      }
      case 'setacl': {
        const [p, who, rightsText] = need(rest, 3, 'fs setacl DIR WHO RIGHTS')
        let rights: number
        try { rights = parseRights(rightsText) } catch (err) { throw new UsageError((err as Error).message) }
        const cur = await controlCall(cache, 'getacl', { path: resolve(p) })
        const call = serverCaller(v)
        const { id } = await call(await ptsServer(cache, cur.cell), 'ptExamine', { name: who })
        const acl = withEntry(cur.acl ?? { pos: [], neg: [] }, id, rights, v.negative === true)
        const r = await controlCall(cache, 'setacl', { path: resolve(p), acl })
        const shown = await show(call, await ptsServer(cache, cur.cell), r.acl ?? acl)
        print(`${p}: ${who} ${rights ? `${v.negative ? 'is denied' : 'has'} ${formatRights(rights)}` : `has no ${v.negative ? 'negative ' : ''}entry now`}\n`, shown)
        return EXIT_OK
      }
      case 'listacl': {
        const [p] = need(rest, 1, 'fs listacl DIR')
        const cur = await controlCall(cache, 'getacl', { path: resolve(p) })
        const shown = await show(serverCaller(v), await ptsServer(cache, cur.cell), cur.acl ?? { pos: [[-101, 127]], neg: [] })
        print([
          `Access list for ${p} is${cur.acl ? '' : ' (from before ACLs: open to everyone)'}\n`,
          'Normal rights:\n', ...shown.positive.map(e => `  ${e.name} ${e.rights}\n`),
          ...(shown.negative.length ? ['Negative rights:\n', ...shown.negative.map(e => `  ${e.name} ${e.rights}\n`)] : []),
          ...(cur.access !== null ? [`Your rights: ${formatRights(cur.access) || 'none'}\n`] : []),
        ].join(''), { path: p, ...shown, access: cur.access === null ? null : formatRights(cur.access) })
        return EXIT_OK
      }
      case 'cleanacl': {
        const [p] = need(rest, 1, 'fs cleanacl DIR')
        const cur = await controlCall(cache, 'getacl', { path: resolve(p) })
        if (!cur.acl) { print(`${p} has no ACL of its own to clean\n`, { path: p, removed: [] }); return EXIT_OK }
        const call = serverCaller(v)
        const { names } = await call(await ptsServer(cache, cur.cell), 'ptNames', { ids: [...cur.acl.pos, ...cur.acl.neg].map(([id]) => id) })
        const gone = [...cur.acl.pos, ...cur.acl.neg].map(([id]) => id).filter(id => names[String(id)] === undefined)
        if (gone.length) await controlCall(cache, 'setacl', { path: resolve(p), acl: { pos: cur.acl.pos.filter(([id]) => names[String(id)] !== undefined), neg: cur.acl.neg.filter(([id]) => names[String(id)] !== undefined) } })
        print(gone.length ? `removed ${gone.length} entr${gone.length === 1 ? 'y' : 'ies'} of ids no longer in the protection database: ${gone.join(', ')}\n` : `${p}: every entry names a user or group\n`, { path: p, removed: gone })
        return EXIT_OK
      }
      default: throw new UsageError(sub ? `unknown fs command '${sub}'` : 'fs needs a command: listquota, mkmount, lsmount, whereis, flush, setacl, listacl, cleanacl')
    }
  },
}

/** An ACL with each entry's name. */
async function show (call: ReturnType<typeof serverCaller>, server: string, acl: Acl): Promise<ShownAcl> {
  const { names } = await call(server, 'ptNames', { ids: [...acl.pos, ...acl.neg].map(([id]) => id) })
  const one = ([id, r]: [number, number]) => ({ name: names[String(id)] ?? `#${id}`, id, rights: formatRights(r) })
  return { positive: acl.pos.map(one), negative: acl.neg.map(one) }
}
