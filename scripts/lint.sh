#!/bin/sh
# Lint: the cache manager must never block its event loop (every FUSE call waits on it).
cd "$(dirname "$0")/.."
bad=$(grep -rnE '\b[a-zA-Z]+Sync\(|execSync|spawnSync' cache-manager/src --include=*.ts)
if [ -n "$bad" ]; then
  echo "lint: blocking calls in the cache manager:" >&2
  echo "$bad" >&2
  exit 1
fi
echo "lint: ok"
