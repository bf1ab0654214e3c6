// Foreground daemons: wait for SIGINT or SIGTERM, then let the caller tear down.

export function untilSignal (): Promise<string> {
  return new Promise(resolve => {
    const on = (sig: string) => () => { process.off('SIGINT', onInt); process.off('SIGTERM', onTerm); resolve(sig) }
    const onInt = on('SIGINT')
    const onTerm = on('SIGTERM')
    process.on('SIGINT', onInt)
    process.on('SIGTERM', onTerm)
  })
}
