// `afs pts`: the cell's protection database — users, groups, who is in which (AFS's pts).
// Changes need a token of system:administrators (or a group's owner for its members, a
// user for their own password), or --localauth on a server.
import type { PtsRecord } from '@afs-ts/common'
import { cacheDirOf, cacheOption, need, UsageError, EXIT_OK, type Command } from '../args.ts'
import { serverAddress, serverCaller, serverOptions } from '../server-client.ts'
import { readPassword } from '../password.ts'
import { table } from '../table.ts'

export const ptsCommand: Command = {
  name: 'pts',
  usage: 'afs pts createuser NAME [--password-file FILE] | creategroup NAME | adduser USER GROUP | removeuser USER GROUP | membership NAME [--json] | examine NAME [--json] | setpassword NAME [--password-file FILE] | delete NAME | listentries [--json]\n  (each: [--server HOST:PORT] [--cache DIR] [--ca FILE] [--localauth DATADIR])',
  options: { 'password-file': { type: 'string' }, json: { type: 'boolean' }, server: { type: 'string' }, ...cacheOption(), ...serverOptions() },
  async run (v, pos) {
    const [sub, ...rest] = pos
    const call = serverCaller(v)
    const via = async () => await serverAddress(v, cacheDirOf(v))
    const show = (entries: PtsRecord[]) => {
      if (v.json) process.stdout.write(JSON.stringify(entries, null, 2) + '\n')
      else process.stdout.write(entries.length ? table(['NAME', 'ID', 'KIND', 'OWNER', 'MEMBERS'], entries.map(e => [e.name, String(e.id), e.kind, String(e.owner), e.members ? String(e.members.length) : ''])) : 'none\n')
    }
    switch (sub) {
      case 'createuser': {
        const [name] = need(rest, 1, 'pts createuser NAME')
        const password = v['password-file'] !== undefined || process.stdin.isTTY ? await readPassword(v['password-file'], `Password for ${name}: `) : null
        const e = await call(await via(), 'ptCreateUser', { name, password })
        process.stdout.write(`user ${e.name} has id ${e.id}${password === null ? ' (no password yet: afs pts setpassword)' : ''}\n`)
        return EXIT_OK
      }
      case 'creategroup': {
        const [name] = need(rest, 1, 'pts creategroup NAME')
        const e = await call(await via(), 'ptCreateGroup', { name })
        process.stdout.write(`group ${e.name} has id ${e.id}\n`)
        return EXIT_OK
      }
      case 'adduser': case 'removeuser': {
        const [user, group] = need(rest, 2, `pts ${sub} USER GROUP`)
        const g = await call(await via(), sub === 'adduser' ? 'ptAddUser' : 'ptRemoveUser', { user, group })
        process.stdout.write(`${user} is ${sub === 'adduser' ? 'in' : 'out of'} ${g.name} (${g.members?.length ?? 0} members)\n`)
        return EXIT_OK
      }
      case 'membership': {
        const [name] = need(rest, 1, 'pts membership NAME')
        show(await call(await via(), 'ptMembership', { name }))
        return EXIT_OK
      }
      case 'examine': {
        const [name] = need(rest, 1, 'pts examine NAME')
        const e = await call(await via(), 'ptExamine', { name })
        if (v.json) process.stdout.write(JSON.stringify(e, null, 2) + '\n')
        else process.stdout.write(table(['NAME', 'ID', 'KIND', 'OWNER', 'CREATED', 'MEMBERS'], [[e.name, String(e.id), e.kind, String(e.owner), e.createdMs ? new Date(e.createdMs).toISOString().slice(0, 19).replace('T', ' ') : '', e.members ? String(e.members.length) : '']]))
        return EXIT_OK
      }
      case 'setpassword': {
        const [name] = need(rest, 1, 'pts setpassword NAME')
        const password = await readPassword(v['password-file'], `New password for ${name}: `)
        await call(await via(), 'ptSetPassword', { name, password })
        process.stdout.write(`${name} has a new password; tokens got with the old one are void\n`)
        return EXIT_OK
      }
      case 'delete': {
        const [name] = need(rest, 1, 'pts delete NAME')
        await call(await via(), 'ptDelete', { name })
        process.stdout.write(`${name} is no longer in the protection database\n`)
        return EXIT_OK
      }
      case 'listentries': {
        need(rest, 0, 'pts listentries')
        show(await call(await via(), 'ptList', {}))
        return EXIT_OK
      }
      default: throw new UsageError(sub ? `unknown pts command '${sub}'` : 'pts needs a command: createuser, creategroup, adduser, removeuser, membership, examine, setpassword, delete, listentries')
    }
  },
}
