#!/bin/sh
# Applies patches/fuse-native-2.2.6.patch to node_modules/fuse-native and rebuilds the
# binding with node-gyp against Debian's libfuse-dev. The patch: utimens hands the
# mtime (2.2.6 passes the atime twice) and nanoseconds, stat times carry nanoseconds and
# times before 1970, getxattr and listxattr answer ERANGE for a short buffer, a get of
# security.capability or security.selinux (asked on every write and by ls -l; never
# kept) is answered in C, handlers see the caller's uid/gid/pid, and big_writes /
# max_write / negative_timeout / atomic_o_trunc mount options. A binding patched by an older version of the patch is
# put back to the published files first (kept beside them as *.pristine).
set -e
cd "$(dirname "$0")/.."
dir=node_modules/fuse-native
marker='afs-ts patch (6)'
if grep -qF "$marker" "$dir/index.js" 2>/dev/null && [ -f "$dir/build/Release/fuse.node" ]; then
  exit 0
fi
if ! grep -qF "$marker" "$dir/index.js"; then
  if grep -q 'afs-ts patch' "$dir/index.js"; then
    if [ -f "$dir/index.js.pristine" ]; then
      cp "$dir/index.js.pristine" "$dir/index.js"; cp "$dir/fuse-native.c.pristine" "$dir/fuse-native.c"
    else
      echo "afs-ts setup: reinstalling fuse-native (patched by an older version)"
      rm -rf "$dir"
      npm install --no-save --no-audit --no-fund fuse-native@2.2.6 >/dev/null
    fi
  fi
  cp "$dir/index.js" "$dir/index.js.pristine"; cp "$dir/fuse-native.c" "$dir/fuse-native.c.pristine"
  echo "afs-ts setup: patching fuse-native"
  patch -d "$dir" -p1 --forward < patches/fuse-native-2.2.6.patch
fi
echo "afs-ts setup: rebuilding fuse-native with node-gyp"
# Build against the running Node's own headers when it ships them (no download).
nodedir=$(node -p 'require("path").resolve(process.execPath, "../..")')
nodedir_flag=""
[ -f "$nodedir/include/node/node_api.h" ] && nodedir_flag="--nodedir=$nodedir"
( cd "$dir" && ../.bin/node-gyp rebuild $nodedir_flag >/tmp/afs-fuse-native-build.log 2>&1 ) || {
  cat /tmp/afs-fuse-native-build.log >&2
  echo "afs-ts setup: building fuse-native failed (log above)" >&2
  exit 1
}
