#!/usr/bin/env bash
# Fetches Debian's kernels through the private apt (test/vm/apt.sh) and extracts each into
# $VMTEST_DIR/kernels/<series>/ (boot/vmlinuz-<ver>, lib/modules/<ver> with modules.dep).
# Usage: test/vm/fetch-kernels.sh [SERIES…]   (default: every series in KERNEL_SUITES)
# Prints "<series> <kernel release> <path to vmlinuz>" per kernel. Reruns reuse the cache.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
VMTEST_DIR=${VMTEST_DIR:-$root/.vmtest}
export VMTEST_DIR

# series -> the Debian suite whose linux-image-amd64 gives it
declare -A KERNEL_SUITES=([5.10]=bullseye [6.1]=bookworm [6.12]=trixie)
series=("$@")
[ ${#series[@]} -gt 0 ] || series=(5.10 6.1 6.12)

command -v depmod >/dev/null || { echo "fetch-kernels: depmod missing (install kmod)" >&2; exit 1; }
"$here/apt.sh" update

for s in "${series[@]}"; do
  suite=${KERNEL_SUITES[$s]:-}
  [ -n "$suite" ] || { echo "fetch-kernels: unknown kernel series '$s' (known: ${!KERNEL_SUITES[*]})" >&2; exit 2; }
  # the metapackage's version in that suite, then the ABI package it depends on
  meta=$("$here/apt.sh" madison linux-image-amd64 | awk -F' *[|] *' -v s=" $suite/main " '$3 ~ s {print $2; exit}')
  [ -n "$meta" ] || { echo "fetch-kernels: no linux-image-amd64 in $suite" >&2; exit 1; }
  pkg=$("$here/apt.sh" depends "linux-image-amd64=$meta" 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
  [ -n "$pkg" ] || { echo "fetch-kernels: linux-image-amd64=$meta names no image package" >&2; exit 1; }
  dest=$VMTEST_DIR/kernels/$s
  if [ ! -f "$dest/.pkg" ] || [ "$(cat "$dest/.pkg")" != "$pkg $meta" ]; then
    debs=$VMTEST_DIR/debs
    mkdir -p "$debs"
    deb=$(ls "$debs/${pkg}_"*.deb 2>/dev/null | head -1 || true)
    if [ -z "$deb" ]; then
      (cd "$debs" && "$here/apt.sh" download "$pkg" >&2)
      deb=$(ls "$debs/${pkg}_"*.deb | head -1)
    fi
    rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
    dpkg-deb -x "$deb" "$dest.tmp"
    # Debian ships modules without modules.dep (postinst makes it): make it here
    kver=$(ls "$dest.tmp/lib/modules" 2>/dev/null || ls "$dest.tmp/usr/lib/modules")
    [ -d "$dest.tmp/lib/modules" ] || { mkdir -p "$dest.tmp/lib"; mv "$dest.tmp/usr/lib/modules" "$dest.tmp/lib/modules"; }
    depmod -a -b "$dest.tmp" "$kver"
    echo "$pkg $meta" > "$dest.tmp/.pkg"
    rm -rf "$dest" && mv "$dest.tmp" "$dest"
  fi
  kver=$(ls "$dest/lib/modules")
  echo "$s $kver $dest/boot/vmlinuz-$kver"
done
