// Compiles the `afs` command to JavaScript (tools/dist/), so that it starts without
// compiling TypeScript at run time: the project's own packages bundled, npm packages left
// as they are, each subcommand in a chunk of its own loaded when it runs. Run by setup;
// tools/bin/afs.js runs the sources through tsx instead whenever they are newer.
import { build } from 'esbuild'
import { rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const out = join(root, 'tools', 'dist')
await rm(out, { recursive: true, force: true })
await build({
  entryPoints: [join(root, 'tools', 'src', 'cli.ts')],
  outdir: out,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
  plugins: [{
    name: 'npm-packages-external',
    setup (b) {
      // Bare imports are npm packages (loaded from node_modules as they are), except the project's own.
      b.onResolve({ filter: /^[^./]/ }, args => args.path.startsWith('@afs-ts/') || args.path.startsWith('node:') ? undefined : { path: args.path, external: true })
    },
  }],
})
