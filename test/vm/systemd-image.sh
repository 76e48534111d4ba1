#!/usr/bin/env bash
# Builds (or finds in the cache) the systemd node image for `make vmtest-systemd`: Debian 12
# from Debian's packages with mmdebstrap, systemd as PID 1 on cgroup v2 unified, Debian's own
# kernel and initrd, and the runtimes set to the systemd cgroup driver.
# Prints the image directory (rootfs.ext4, vmlinuz, initrd.img). The cache key is a hash of this
# recipe and of the guest files it copies in: the image is rebuilt only when one of them changes.
# Usage: test/vm/systemd-image.sh      (as root; installs mmdebstrap when it has to build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
VMTEST_DIR=${VMTEST_DIR:-$root/.vmtest}
SUITE=bookworm
PACKAGES=(
  systemd-sysv udev dbus kmod e2fsprogs procps iproute2 util-linux
  linux-image-amd64 initramfs-tools zstd
  docker.io containerd runc crun podman busybox-static
  # Debian's kernel enables AppArmor: dockerd then needs apparmor_parser for its default profile
  apparmor
  # what ctrwatch loads at run time (its addon and the host's node binary, shared in)
  libbpf1 libelf1 zlib1g libstdc++6
)

key=$(cat "$0" "$here"/systemd-guest/* | sha256sum | cut -c1-16)
out=$VMTEST_DIR/systemd/image-$key
if [ -f "$out/.done" ]; then echo "$out"; exit 0; fi

[ "$(id -u)" = 0 ] || { echo "systemd-image: run as root (mmdebstrap and mkfs.ext4 -d keep ownership)" >&2; exit 1; }
# Test-only host packages, installed only when an image has to be built (never by make run/setup).
need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
if [ ${#need[@]} -gt 0 ]; then
  echo "systemd-image: installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${need[@]}" >/dev/null
fi

# The host's own Debian archive (deb822 or one-line sources), or DEBIAN_URI.
host_uri() {
  local u
  u=$(grep -hoE '^URIs:[[:space:]]*[^[:space:]]+/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | awk '{print $2}')
  [ -n "$u" ] || u=$(grep -hoE '^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?[^[:space:]]+/debian/?[[:space:]]' /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $NF}')
  echo "${u%/}"
}
URI=${DEBIAN_URI:-$(host_uri)}
[ -n "$URI" ] || { echo "systemd-image: no Debian archive in the host's apt sources; set DEBIAN_URI" >&2; exit 1; }

mkdir -p "$VMTEST_DIR/systemd"
tmp=$(mktemp -d "$VMTEST_DIR/systemd/build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
t0=$(date +%s)
# Debian's postinst would start the daemons inside the chroot: mmdebstrap forbids that with its
# own policy-rc.d. Services stay enabled, so the node boots with dockerd and containerd running.
mmdebstrap --variant=apt --mode=root \
  --aptopt='Acquire::Check-Valid-Until "false"' --aptopt='Acquire::Languages "none"' \
  --include="$(IFS=,; echo "${PACKAGES[*]}")" \
  --customize-hook='echo ctrwatch-node > "$1/etc/hostname"' \
  --customize-hook='printf "127.0.0.1 localhost ctrwatch-node\n" > "$1/etc/hosts"' \
  --customize-hook='printf "/dev/vda / ext4 rw,errors=remount-ro 0 0\n" > "$1/etc/fstab"' \
  --customize-hook='chroot "$1" passwd --delete root' \
  --customize-hook="copy-in $here/systemd-guest/daemon.json /etc/docker" \
  --customize-hook="copy-in $here/systemd-guest/containers.conf /etc/containers" \
  --customize-hook="copy-in $here/systemd-guest/config.toml /etc/containerd" \
  --customize-hook="copy-in $here/systemd-guest/vmtest-entry /usr/local/sbin" \
  --customize-hook="copy-in $here/systemd-guest/vmtest-entry.service /etc/systemd/system" \
  --customize-hook='chmod 0755 "$1/usr/local/sbin/vmtest-entry"' \
  --customize-hook='chroot "$1" systemctl enable vmtest-entry.service docker.service containerd.service' \
  --customize-hook='chroot "$1" systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer' \
  "$SUITE" "$tmp/root" "deb $URI $SUITE main" "deb $URI $SUITE-updates main" >&2
t1=$(date +%s)

staging=$tmp/out
mkdir -p "$staging"
cp "$(ls "$tmp"/root/boot/vmlinuz-* | head -1)" "$staging/vmlinuz"
cp "$(ls "$tmp"/root/boot/initrd.img-* | head -1)" "$staging/initrd.img"
basename "$(ls "$tmp"/root/boot/vmlinuz-* | head -1)" | sed 's/^vmlinuz-//' > "$staging/kernel-release"
# A sparse 8 GiB ext4 root: a real filesystem for overlayfs, image stores and container state.
mkfs.ext4 -q -F -L ctrwatch-node -d "$tmp/root" "$staging/rootfs.ext4" 8G >&2
t2=$(date +%s)
printf 'mmdebstrap_s=%s mkfs_s=%s built=%s\n' $((t1 - t0)) $((t2 - t1)) "$(date -u +%FT%TZ)" > "$staging/build-times"
rm -rf "$out" && mv "$staging" "$out" && touch "$out/.done"
# older images of this recipe are of no further use
for d in "$VMTEST_DIR"/systemd/image-*; do [ "$d" = "$out" ] || rm -rf "$d"; done
echo "systemd-image: built in $((t2 - t0)) s ($(cat "$out/build-times"))" >&2
echo "$out"
