#!/usr/bin/env bash
# Runs a script inside a clean Debian 12 root: the tarball of debian-root.sh unpacked into a new
# directory, /proc and /sys bound read-only (doctor reads them; the BPF syscall needs no mount),
# the host's resolv.conf copied in for apt. Every mount is made inside a private mount namespace
# (unshare -m), so they all go away with it, whatever happens; the directory is removed after
# checking that nothing is mounted under it.
# Usage: scripts/package/chroot.sh TARBALL SCRIPT [FILE…]   FILEs are copied to /tmp in the root;
# SCRIPT runs there with sh -e (as root, cwd /tmp).
set -euo pipefail
tarball=${1:?usage: chroot.sh TARBALL SCRIPT [FILE…]}
script=${2:?usage: chroot.sh TARBALL SCRIPT [FILE…]}
shift 2
[ "$(id -u)" = 0 ] || { echo "chroot: run as root" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/var/tmp}/ctrwatch-chroot.XXXXXX")
cleanup() {
  # Mounts live in the child's namespace only; refuse to delete through one all the same.
  if grep -qF " $work/" /proc/self/mountinfo; then
    echo "chroot: something is still mounted under $work: left in place" >&2
    return
  fi
  rm -rf "$work"
}
trap cleanup EXIT
r=$work/root
mkdir -p "$r"
tar -xf "$tarball" -C "$r"
cp /etc/resolv.conf "$r/etc/resolv.conf"
for f in "$@"; do cp "$f" "$r/tmp/"; done
printf '%s\n' "$script" > "$r/tmp/run.sh"
unshare --mount --propagation private -- bash -euo pipefail -c '
  r=$1
  # The root a mount of its own: the sensor finds "/" in /proc/self/mountinfo.
  mount --bind "$r" "$r"
  mount --rbind /proc "$r/proc" && mount -o remount,bind,ro "$r/proc"
  mount --rbind /sys "$r/sys" && mount -o remount,bind,ro "$r/sys"
  cd / && exec chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb sh -ec "cd /tmp && . /tmp/run.sh"
' chroot "$r"
