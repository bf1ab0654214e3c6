#!/bin/sh
# After the tests: a FUSE mount of afs-ts left behind means a test did not clean up.
# Unmount it (so the machine stays usable) and fail the run.
left=$(awk '$3 == "fuse.afs" { print $2 }' /proc/mounts)
[ -z "$left" ] && exit 0
echo "leftover afs-ts mounts (a test did not clean up):" >&2
for m in $left; do echo "  $m" >&2; fusermount -uz "$m" 2>/dev/null || true; done
exit 1
