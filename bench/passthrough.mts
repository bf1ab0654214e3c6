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
  // (Each time comes as { sec, nsec }, or null to leave it as it is.)
  utimens: (path: string, a: Time | null, m: Time | null, cb: any) => {
    fs.lstat(p(path), (err, st) => {
      if (err) return cb(err.errno ?? -5)
      const at = a ? a.sec + a.nsec / 1e9 : st.atimeMs / 1000
      const mt = m ? m.sec + m.nsec / 1e9 : st.mtimeMs / 1000
      fs.utimes(p(path), at, mt, cbErr(cb))
    })
  },
  chmod: (path: string, mode: number, cb: any) => fs.chmod(p(path), mode, cbErr(cb)),
  chown: (path: string, uid: number, gid: number, cb: any) => fs.lchown(p(path), uid, gid, cbErr(cb)),
  rename: (from: string, to: string, cb: any) => fs.rename(p(from), p(to), cbErr(cb)),
  link: (from: string, to: string, cb: any) => fs.link(p(from), p(to), cbErr(cb)),
  symlink: (target: string, path: string, cb: any) => fs.symlink(target, p(path), cbErr(cb)),
  readlink: (path: string, cb: any) => fs.readlink(p(path), cbErr(cb)),
}
interface Time { sec: number, nsec: number }
const fuse = new Fuse(mnt, ops, { force: true, mkdir: true, kernelCache: true, bigWrites: true, maxWrite: 131072, attrTimeout: 1, entryTimeout: 1 })
fuse.mount(err => {
  if (err) { console.error(err); process.exit(1) }
  console.log(JSON.stringify({ ready: 'passthrough' }))
})
const stop = () => fuse.unmount(() => process.exit(0))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
