// `afs completion`: a bash (or zsh) completion script made from the command tree itself,
// so that it knows every verb, every verb's own options, and the values of those with a
// fixed set (`source <(afs completion)`, or save it in /etc/bash_completion.d/afs).
import { Argument, type Command } from 'commander'
import { act, EXIT_OK, type Define } from '../args.ts'

export const defineCompletion: Define = cmd => {
  act<Record<string, never>>(cmd.addArgument(new Argument('[shell]', 'the shell to complete for').choices(['bash', 'zsh']).default('bash')), async ([shell]) => {
    process.stdout.write(completionScript(cmd.parent!, shell === 'zsh'))
    return EXIT_OK
  })
}

/** Each command under `root` by its path below it ('' for root itself, 'vos create'…). */
function commandsOf (root: Command): Array<[string, Command]> {
  const out: Array<[string, Command]> = []
  const walk = (c: Command, path: string) => {
    out.push([path, c])
    for (const sub of c.commands) walk(sub, path ? `${path} ${sub.name()}` : sub.name())
  }
  walk(root, '')
  return out
}

const quote = (words: string[]) => `'${words.join(' ')}'`

export function completionScript (root: Command, zsh: boolean): string {
  const commands = commandsOf(root)
  const flags = (c: Command) => [...c.options.flatMap(o => [o.long, o.short].filter((f): f is string => f !== undefined)), '--help']
  const taking = commands.flatMap(([path, c]) => c.options.filter(o => o.required || o.optional).map(o => ({ path, flag: o.long!, choices: o.argChoices ?? [] })))
  const cases = (rows: Array<[string, string]>) => rows.map(([k, v]) => `    ${k}) echo ${v} ;;`).join('\n')
  return `# afs completion${zsh ? ' zsh' : ''}: completes afs commands, their verbs, options and option values
${zsh ? 'autoload -U +X bashcompinit && bashcompinit\n' : ''}_afs_commands () {
  case "$1" in
${cases(commands.filter(([, c]) => c.commands.length > 0).map(([path, c]) => [`'${path}'`, quote(c.commands.map(s => s.name()))]))}
  esac
}
_afs_options () {
  case "$1" in
${cases(commands.map(([path, c]) => [`'${path}'`, quote(flags(c))]))}
  esac
}
# The values an option takes: its choices, or '' for a file name. Fails for an option that takes none.
_afs_values () {
  case "$1 $2" in
${cases(taking.map(t => [`'${t.path} ${t.flag}'`, quote(t.choices)]))}
    *) return 1 ;;
  esac
}
_afs () {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" path='' word i values
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    if [[ $word == -* ]]; then _afs_values "$path" "$word" >/dev/null && ((i++)); continue; fi
    case " $(_afs_commands "$path") " in *" $word "*) path="\${path:+$path }$word" ;; esac
  done
  if [[ $COMP_CWORD -gt 1 && $prev == --* ]] && values="$(_afs_values "$path" "$prev")"; then
    if [[ -n $values ]]; then COMPREPLY=($(compgen -W "$values" -- "$cur")); else COMPREPLY=($(compgen -f -- "$cur")); fi
  elif [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$(_afs_options "$path")" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$(_afs_commands "$path")" -- "$cur"))
    [[ \${#COMPREPLY[@]} -eq 0 ]] && COMPREPLY=($(compgen -f -- "$cur"))
  fi
  return 0
}
complete -o filenames -F _afs afs
`
}
