#!/usr/bin/env bash
# A clean Debian 12 root (mmdebstrap --variant=minbase, Debian's packages only: the archive the
# host's own apt uses, or DEBIAN_URI) as a tarball, cached under pkg/cache by a hash of
# this recipe and refreshed after a week. Prints the tarball's path. Extra packages to include:
# DEBIAN_ROOT_INCLUDE (comma-separated; apt package names or paths of local .deb files).
# Usage: scripts/package/debian-root.sh [OUT_TAR]   (as root; installs mmdebstrap if missing)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
SUITE=bookworm
include=${DEBIAN_ROOT_INCLUDE:-}

[ "$(id -u)" = 0 ] || { echo "debian-root: run as root (mmdebstrap in root mode keeps ownership)" >&2; exit 1; }
if ! command -v mmdebstrap >/dev/null; then
  echo "debian-root: installing mmdebstrap" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --no-remove -o DPkg::Lock::Timeout=300 mmdebstrap >/dev/null
fi

host_uri() {
  local u
  u=$(grep -hoE '^URIs:[[:space:]]*[^[:space:]]+/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | awk '{print $2}')
  [ -n "$u" ] || u=$(grep -hoE '^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?[^[:space:]]+/debian/?[[:space:]]' /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $NF}')
  echo "${u%/}"
}
URI=${DEBIAN_URI:-$(host_uri)}
[ -n "$URI" ] || { echo "debian-root: no Debian archive in the host's apt sources; set DEBIAN_URI" >&2; exit 1; }

if [ -n "${1:-}" ]; then
  out=$1
else
  key=$( (cat "$0"; echo "$include $URI") | sha256sum | cut -c1-16)
  out=$root/pkg/cache/debian12-minbase-$key.tar
  if [ -n "$(find "$out" -mtime -7 2>/dev/null)" ]; then echo "$out"; exit 0; fi
fi
mkdir -p "$(dirname "$out")"
tmp=$out.tmp.$$
trap 'rm -f "$tmp"' EXIT
# Debian's postinst scripts must not start services while the root is made: mmdebstrap puts
# its own policy-rc.d in and takes it out again. --include=… .deb files: apt resolves their
# Depends from the archive (mmdebstrap's file-mirror-automount hook shows dpkg the file).
mmdebstrap --variant=minbase --mode=root --format=tar \
  --aptopt='Acquire::Languages "none"' \
  ${include:+--include="$include" --hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount} \
  --customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*_Packages' \
  "$SUITE" "$tmp" "deb $URI $SUITE main" "deb $URI $SUITE-updates main" "deb $URI-security $SUITE-security main" >&2
mv "$tmp" "$out"
echo "$out"
