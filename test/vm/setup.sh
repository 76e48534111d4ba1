#!/usr/bin/env bash
# Debian packages `make vmtest` needs on the host, beyond `make setup`'s: qemu, virtme-ng's
# python deps (virtme-ng itself is fetched, not installed), udev, kmod (depmod, and modprobe
# in the guest, which shares the host's root), apparmor (Debian kernels enable AppArmor, and dockerd
# then loads its profile with apparmor_parser, as on every Debian node), procps (ps: the guest's
# snapshot before a VM's timeout). Not part of `make run`.
set -euo pipefail
PKGS=(qemu-system-x86 udev kmod file cpio python3 python3-argcomplete python3-pkg-resources python3-requests
      debian-archive-keyring busybox-static apparmor procps)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "vmtest setup: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
  exit 1
fi
echo "vmtest setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
