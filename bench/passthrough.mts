// A minimal fuse-native passthrough of a local directory, mounted with kernel caching
// and big writes: the floor for any Node FUSE file system. Usage: passthrough SRC MNT
import Fuse from 'fuse-native'
import * as fs from 'node:fs'
import { join } from 'node:path'

const [src, mnt] = process.argv.slice(2)
const p = (path: string) => join(src, path)
const cbErr = (cb: (n: number, ...a: unknown[]) => void) => (err: NodeJS.ErrnoException | null, ...rest: unknown[]) => cb(err ? (err.errno ?? -5) : 0, ...rest)

const ops = {
  getattr: (path: string, cb: any) => fs.lstat(p(path), cbErr(cb)),
  fgetattr: (path: string, fd: number, cb: any) => fs.fstat(fd, cbErr(cb)),
  readdir: (path: string, cb: any) => fs.readdir(p(path), cbErr(cb)),
  open: (path: string, flags: number, cb: any) => fs.open(p(path), flags, cbErr(cb)),
  create: (path: string, mode: number, cb: any) => fs.open(p(path), 'w+', mode, cbErr(cb)),
  read: (path: string, fd: number, buf: Buffer, len: number, pos: number, cb: any) => fs.read(fd, buf, 0, len, pos, (err, n) => cb(err ? err.errno : n)),
  write: (path: string, fd: number, buf: Buffer, len: number, pos: number, cb: any) => fs.write(fd, buf, 0, len, pos, (err, n) => cb(err ? err.errno : n)),
  release: (path: string, fd: number, cb: any) => fs.close(fd, cbErr(cb)),
  truncate: (path: string, size: number, cb: any) => fs.truncate(p(path), size, cbErr(cb)),
  unlink: (path: string, cb: any) => fs.unlink(p(path), cbErr(cb)),
  mkdir: (path: string, mode: number, cb: any) => fs.mkdir(p(path), mode, cbErr(cb)),
  rmdir: (path: string, cb: any) => fs.rmdir(p(path), cbErr(cb)),
  utimens: (path: string, a: number, m: number, cb: any) => fs.utimes(p(path), a / 1000, m / 1000, cbErr(cb)),
}
const fuse = new Fuse(mnt, ops, { force: true, mkdir: true, kernelCache: true, bigWrites: true, maxWrite: 131072, attrTimeout: 1, entryTimeout: 1 })
fuse.mount(err => {
  if (err) { console.error(err); process.exit(1) }
  console.log(JSON.stringify({ ready: 'passthrough' }))
})
const stop = () => fuse.unmount(() => process.exit(0))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
