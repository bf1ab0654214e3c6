#!/usr/bin/env node
// The `afs` command: loads the TypeScript sources through tsx.
import { register } from 'tsx/esm/api'

register()
await import('../src/cli.ts')
