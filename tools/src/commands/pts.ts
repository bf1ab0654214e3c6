// `afs pts`: the cell's protection database — users, groups, who is in which (AFS's pts).
// Changes need a token of system:administrators (or a group's owner for its members, a
// user for their own password), or --localauth on a server.
import type { Command } from 'commander'
import type { PtsRecord } from '@afs-ts/common'
import { act, verb, withJson, EXIT_OK, type Define } from '../args.ts'
import { serverAddress, serverCaller, withServerAsked, withServerOptions, type ToolOptions } from '../server-client.ts'
import { readPassword, withPasswordFile } from '../password.ts'
import { table } from '../table.ts'

type PtsOptions = ToolOptions & { json?: boolean, passwordFile?: string }

export const definePts: Define = cmd => {
  /** A verb of pts, with what every one takes: the server to ask, whom to trust and speak as. */
  const ptsVerb = (name: string, summary: string): Command => withServerAsked(withServerOptions(verb(cmd, name, summary)))
  const show = (v: PtsOptions, entries: PtsRecord[]) => {
    if (v.json) process.stdout.write(JSON.stringify(entries, null, 2) + '\n')
    else process.stdout.write(entries.length ? table(['NAME', 'ID', 'KIND', 'OWNER', 'MEMBERS'], entries.map(e => [e.name, String(e.id), e.kind, String(e.owner), e.members ? String(e.members.length) : ''])) : 'none\n')
  }

  act<PtsOptions>(withPasswordFile(ptsVerb('createuser', 'make a user (with a password when one is given)').argument('<name>')), async ([name], v) => {
    const password = v.passwordFile !== undefined || process.stdin.isTTY ? await readPassword(v.passwordFile, `Password for ${name}: `) : null
    const e = await serverCaller(v)(await serverAddress(v), 'ptCreateUser', { name, password })
    process.stdout.write(`user ${e.name} has id ${e.id}${password === null ? ' (no password yet: afs pts setpassword)' : ''}\n`)
    return EXIT_OK
  })
  act<PtsOptions>(ptsVerb('creategroup', 'make a group, owned by the caller').argument('<name>'), async ([name], v) => {
    const e = await serverCaller(v)(await serverAddress(v), 'ptCreateGroup', { name })
    process.stdout.write(`group ${e.name} has id ${e.id}\n`)
    return EXIT_OK
  })
  for (const [name, op, summary] of [['adduser', 'ptAddUser', 'put a user in a group'], ['removeuser', 'ptRemoveUser', 'take a user out of a group']] as const) {
    act<PtsOptions>(ptsVerb(name, summary).argument('<user>').argument('<group>'), async ([user, group], v) => {
      const g = await serverCaller(v)(await serverAddress(v), op, { user, group })
      process.stdout.write(`${user} is ${name === 'adduser' ? 'in' : 'out of'} ${g.name} (${g.members?.length ?? 0} members)\n`)
      return EXIT_OK
    })
  }
  act<PtsOptions>(withJson(ptsVerb('membership', 'the groups a user is in, or the members of a group').argument('<name>')), async ([name], v) => {
    show(v, await serverCaller(v)(await serverAddress(v), 'ptMembership', { name }))
    return EXIT_OK
  })
  act<PtsOptions>(withJson(ptsVerb('examine', 'a user or group: id, owner, when made, members').argument('<name>')), async ([name], v) => {
    const e = await serverCaller(v)(await serverAddress(v), 'ptExamine', { name })
    if (v.json) process.stdout.write(JSON.stringify(e, null, 2) + '\n')
    else process.stdout.write(table(['NAME', 'ID', 'KIND', 'OWNER', 'CREATED', 'MEMBERS'], [[e.name, String(e.id), e.kind, String(e.owner), e.createdMs ? new Date(e.createdMs).toISOString().slice(0, 19).replace('T', ' ') : '', e.members ? String(e.members.length) : '']]))
    return EXIT_OK
  })
  act<PtsOptions>(withPasswordFile(ptsVerb('setpassword', 'give a user a new password (their old tokens become void)').argument('<name>')), async ([name], v) => {
    const password = await readPassword(v.passwordFile, `New password for ${name}: `)
    await serverCaller(v)(await serverAddress(v), 'ptSetPassword', { name, password })
    process.stdout.write(`${name} has a new password; tokens got with the old one are void\n`)
    return EXIT_OK
  })
  act<PtsOptions>(ptsVerb('delete', 'remove a user or group').argument('<name>'), async ([name], v) => {
    await serverCaller(v)(await serverAddress(v), 'ptDelete', { name })
    process.stdout.write(`${name} is no longer in the protection database\n`)
    return EXIT_OK
  })
  act<PtsOptions>(withJson(ptsVerb('listentries', 'every user and group')), async (_args, v) => {
    show(v, await serverCaller(v)(await serverAddress(v), 'ptList', {}))
    return EXIT_OK
  })
}
