#!/bin/sh
# Installs what afs-ts needs on a fresh Debian machine: libfuse2, libfuse-dev, a
# fusermount, attr's setfattr, rsync and etcd (apt-get, when missing), the npm packages, and
# the project's patch to fuse-native (rebuilt with node-gyp). Safe to run again: it
# skips what is done.
set -e
cd "$(dirname "$0")/.."

need=""
[ -e /usr/lib/x86_64-linux-gnu/libfuse.so.2 ] || [ -e /lib/x86_64-linux-gnu/libfuse.so.2 ] || ldconfig -p 2>/dev/null | grep -q 'libfuse.so.2 ' || need="$need libfuse2"
[ -e /usr/include/fuse/fuse.h ] || need="$need libfuse-dev"
command -v fusermount >/dev/null 2>&1 || need="$need fuse"
# setfattr/getfattr and rsync: the extended-attribute tests use them
command -v setfattr >/dev/null 2>&1 || need="$need attr"
command -v rsync >/dev/null 2>&1 || need="$need rsync"
# etcd: the location database of cells beyond one machine (and its tests)
command -v etcd >/dev/null 2>&1 || need="$need etcd-server"
if [ -n "$need" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "afs-ts setup: missing Debian packages:$need — run as root, or: sudo apt-get install -y$need" >&2
    exit 1
  fi
  echo "afs-ts setup: installing$need"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends $need >/dev/null 2>&1 || {
    apt-get update >/dev/null && apt-get install -y --no-install-recommends $need >/dev/null
  }
fi

stamp=node_modules/.afs-installed
if [ ! -f "$stamp" ] || [ package.json -nt "$stamp" ] || { [ -f package-lock.json ] && [ package-lock.json -nt "$stamp" ]; }; then
  echo "afs-ts setup: npm install"
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
  touch "$stamp"
fi

sh scripts/patch-fuse-native.sh

# the afs command compiled to JavaScript (it starts without compiling TypeScript)
node scripts/build.mjs
