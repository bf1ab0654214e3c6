// `afs fs`: questions and changes about paths under the mount (listquota, mkmount,
// lsmount, whereis, flush; setacl, listacl, cleanacl), answered by the cache manager as
// the caller (with the caller's tokens).
import { resolve } from 'node:path'
import { formatRights, formatSize, parseRights, withEntry, type Acl } from '@afs-ts/common'
import { act, cacheDirOf, verb, withJson, UsageError, EXIT_OK, type Define } from '../args.ts'
import { controlCall } from '../control-client.ts'
import { serverCaller, withServerOptions, type ToolOptions } from '../server-client.ts'
import { table } from '../table.ts'

/** An ACL shown by name: each entry's user or group ('#ID' for one that is no longer in the protection database). */
interface ShownAcl { positive: Array<{ name: string, id: number, rights: string }>, negative: Array<{ name: string, id: number, rights: string }> }

/** A server of `cell`, asked for the names and ids of the protection database. */
async function ptsServer (cache: string, cell: string): Promise<string> {
  const s = (await controlCall(cache, 'servers')).find(c => c.cell === cell)?.servers[0]
  if (!s) throw new Error(`no server of cell ${cell} known to the cache manager`)
  return s
}

type FsOptions = ToolOptions & { json?: boolean, negative?: boolean }

export const defineFs: Define = cmd => {
  const fsVerb = (name: string, summary: string) => withJson(verb(cmd, name, summary))
  const print = (v: FsOptions, human: string, json: unknown) => process.stdout.write(v.json ? JSON.stringify(json, null, 2) + '\n' : human)
  act<FsOptions>(fsVerb('listquota', 'the quota and use of the volume holding PATH').argument('<path>'), async ([p], v) => {
    const cache = cacheDirOf(v)
    const q = await controlCall(cache, 'listquota', { path: resolve(p) })
    const pct = q.quota ? `${Math.round(100 * q.used / q.quota)}%` : '-'
    print(v, table(['VOLUME', 'QUOTA', 'USED', '%USED', 'FILES'], [[q.volume, q.quota ? formatSize(q.quota) : 'no limit', formatSize(q.used), pct, q.files]]), q)
    return EXIT_OK
  })
  act<FsOptions>(fsVerb('mkmount', 'make PATH a mount point for VOLUME').argument('<path>').argument('<volume>'), async ([p, volume], v) => {
    const cache = cacheDirOf(v)
    await controlCall(cache, 'mkmount', { path: resolve(p), volume })
    print(v, `${p} is now a mount point for volume ${volume}\n`, { path: p, volume })
    return EXIT_OK
  })
  act<FsOptions>(fsVerb('lsmount', 'the volume PATH is a mount point for').argument('<path>'), async ([p], v) => {
    const cache = cacheDirOf(v)
    const r = await controlCall(cache, 'lsmount', { path: resolve(p) })
    print(v, `'${p}' is a mount point for volume '#${r.volume}'\n`, r)
    return EXIT_OK
  })
  act<FsOptions>(fsVerb('whereis', 'the servers holding PATH').argument('<path>'), async ([p], v) => {
    const cache = cacheDirOf(v)
    const r = await controlCall(cache, 'whereis', { path: resolve(p) })
    print(v, `File ${p} is on host${r.servers.length > 1 ? 's' : ''} ${r.servers.join(' ')} (volume ${r.volume}, fid ${r.fid})\n`, r)
    return EXIT_OK
  })
  act<FsOptions>(fsVerb('flush', 'drop PATH from the cache (its status; its data too unless open or unsaved)').argument('<path>'), async ([p], v) => {
    const cache = cacheDirOf(v)
    const r = await controlCall(cache, 'flush', { path: resolve(p) })
    print(v, r.evicted ? `flushed ${p}\n` : `flushed the status of ${p}; its data stays while it is open or unsaved\n`, r)
    return EXIT_OK
  })
  act<FsOptions>(withServerOptions(fsVerb('setacl', 'give WHO RIGHTS on DIR: letters of rlidwka, or read, write, all; none removes the entry').argument('<dir>').argument('<who>').argument('<rights>')).option('--negative', 'a negative entry: WHO is denied RIGHTS'), async ([p, who, rightsText], v) => {
    const cache = cacheDirOf(v)
    let rights: number
    try { rights = parseRights(rightsText) } catch (err) { throw new UsageError((err as Error).message) }
    const cur = await controlCall(cache, 'getacl', { path: resolve(p) })
    const call = serverCaller(v)
    const { id } = await call(await ptsServer(cache, cur.cell), 'ptExamine', { name: who })
    const acl = withEntry(cur.acl ?? { pos: [], neg: [] }, id, rights, v.negative === true)
    const r = await controlCall(cache, 'setacl', { path: resolve(p), acl })
    const shown = await show(call, await ptsServer(cache, cur.cell), r.acl ?? acl)
    print(v, `${p}: ${who} ${rights ? `${v.negative ? 'is denied' : 'has'} ${formatRights(rights)}` : `has no ${v.negative ? 'negative ' : ''}entry now`}\n`, shown)
    return EXIT_OK
  })
  act<FsOptions>(withServerOptions(fsVerb('listacl', 'the access list of DIR, by name, and your rights').argument('<dir>')), async ([p], v) => {
    const cache = cacheDirOf(v)
    const cur = await controlCall(cache, 'getacl', { path: resolve(p) })
    const shown = await show(serverCaller(v), await ptsServer(cache, cur.cell), cur.acl ?? { pos: [[-101, 127]], neg: [] })
    print(v, [
      `Access list for ${p} is${cur.acl ? '' : ' (from before ACLs: open to everyone)'}\n`,
      'Normal rights:\n', ...shown.positive.map(e => `  ${e.name} ${e.rights}\n`),
      ...(shown.negative.length ? ['Negative rights:\n', ...shown.negative.map(e => `  ${e.name} ${e.rights}\n`)] : []),
      ...(cur.access !== null ? [`Your rights: ${formatRights(cur.access) || 'none'}\n`] : []),
    ].join(''), { path: p, ...shown, access: cur.access === null ? null : formatRights(cur.access) })
    return EXIT_OK
  })
  act<FsOptions>(withServerOptions(fsVerb('cleanacl', 'remove the entries of DIR\'s access list whose user or group is gone').argument('<dir>')), async ([p], v) => {
    const cache = cacheDirOf(v)
    const cur = await controlCall(cache, 'getacl', { path: resolve(p) })
    if (!cur.acl) { print(v, `${p} has no ACL of its own to clean\n`, { path: p, removed: [] }); return EXIT_OK }
    const call = serverCaller(v)
    const { names } = await call(await ptsServer(cache, cur.cell), 'ptNames', { ids: [...cur.acl.pos, ...cur.acl.neg].map(([id]) => id) })
    const gone = [...cur.acl.pos, ...cur.acl.neg].map(([id]) => id).filter(id => names[String(id)] === undefined)
    if (gone.length) await controlCall(cache, 'setacl', { path: resolve(p), acl: { pos: cur.acl.pos.filter(([id]) => names[String(id)] !== undefined), neg: cur.acl.neg.filter(([id]) => names[String(id)] !== undefined) } })
    print(v, gone.length ? `removed ${gone.length} entr${gone.length === 1 ? 'y' : 'ies'} of ids no longer in the protection database: ${gone.join(', ')}\n` : `${p}: every entry names a user or group\n`, { path: p, removed: gone })
    return EXIT_OK
  })
}

/** An ACL with each entry's name. */
async function show (call: ReturnType<typeof serverCaller>, server: string, acl: Acl): Promise<ShownAcl> {
  const { names } = await call(server, 'ptNames', { ids: [...acl.pos, ...acl.neg].map(([id]) => id) })
  const one = ([id, r]: [number, number]) => ({ name: names[String(id)] ?? `#${id}`, id, rights: formatRights(r) })
  return { positive: acl.pos.map(one), negative: acl.neg.map(one) }
}
