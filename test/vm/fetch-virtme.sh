#!/usr/bin/env bash
# Fetches virtme-ng (Debian trixie's package, pure python) through the private apt and
# extracts it into $VMTEST_DIR/virtme; prints the path of its `vng`. It is a test tool only:
# never installed on the host. Its python deps come from test/vm/setup.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
VMTEST_DIR=${VMTEST_DIR:-$root/.vmtest}
export VMTEST_DIR
dest=$VMTEST_DIR/virtme
if [ ! -x "$dest/usr/bin/vng" ]; then
  "$here/apt.sh" update
  debs=$VMTEST_DIR/virtme-debs
  mkdir -p "$debs"
  ls "$debs"/virtme-ng_*.deb >/dev/null 2>&1 || (cd "$debs" && "$here/apt.sh" download virtme-ng/trixie >&2)
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
  dpkg-deb -x "$(ls "$debs"/virtme-ng_*.deb | head -1)" "$dest.tmp"
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
fi
echo "$dest/usr/bin/vng"
