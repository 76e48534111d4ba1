#!/usr/bin/env bash
# Does a kernel under qemu's software emulation survive live code patching? Boots KERNEL_SERIES
# (fetched as make vmtest does) with both vCPUs either on one host thread (single, what boot.sh
# uses) or on a thread each (multi, qemu's default), and in the guest flips two static keys
# (a tracepoint's, by enabling and disabling its trace event; cpuset's, by making and removing a
# cpuset cgroup) over and over while two shell loops fork and exec on the other vCPU. Prints the
# rounds done every 10 s; a guest that stops printing froze.
# Usage: patch-stress.sh single|multi [SERIES (6.1)] [SECONDS (240)]   (as root)
set -uo pipefail
if [ "${1:-}" = --guest ]; then
  out=$2 secs=$3
  mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
  echo +cpuset > /sys/fs/cgroup/cgroup.subtree_control
  mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing
  ev=/sys/kernel/tracing/events/sched/sched_process_fork/enable
  for _ in 1 2; do ( while :; do /bin/true; done ) & done
  end=$(( $(date +%s) + secs )) i=0 last=0
  while [ "$(date +%s)" -lt "$end" ]; do
    echo 1 > "$ev"; mkdir /sys/fs/cgroup/patch-stress; rmdir /sys/fs/cgroup/patch-stress; echo 0 > "$ev"
    i=$((i + 1))
    if [ $(( $(date +%s) - last )) -ge 10 ]; then last=$(date +%s); echo "rounds $i" >> "$out/progress"; fi
  done
  echo "finished: $i rounds in $secs s" >> "$out/progress"
  kill $(jobs -p) 2>/dev/null
  exit 0
fi
mode=${1:?usage: patch-stress.sh single|multi [SERIES] [SECONDS]} series=${2:-6.1} secs=${3:-240}
case $mode in single|multi) ;; *) echo "patch-stress: mode must be single or multi, not $mode" >&2; exit 2 ;; esac
here=$(cd "$(dirname "$0")" && pwd)
export VMTEST_DIR=${VMTEST_DIR:-$(cd "$here/../.." && pwd)/.vmtest}
kernel=$("$here/fetch-kernels.sh" "$series") || exit 1
read -r _ _ vmlinuz <<<"$kernel"
vng=$("$here/fetch-virtme.sh") || exit 1
export PYTHONPATH=$(dirname "$(dirname "$vng")")/lib/python3/dist-packages PATH=$(dirname "$vng"):$PATH
out=$(mktemp -d /tmp/patch-stress-XXXXXX)
trap 'rm -rf "$out"' EXIT
timeout --kill-after=10 $(( secs + 240 )) /usr/bin/python3 "$vng" --disable-kvm "--qemu-opts=-accel tcg,thread=$mode" \
  --run "$vmlinuz" --memory 4G --cpus 2 --rwdir "$out=$out" --exec "$here/patch-stress.sh --guest $out $secs" \
  </dev/null >/dev/null 2>&1 &
vm=$!
while kill -0 "$vm" 2>/dev/null; do sleep 10; echo "$(date +%T) $(tail -n 1 "$out/progress" 2>/dev/null || echo booting)"; done
wait "$vm"; rc=$?
echo "patch-stress: $series, thread=$mode: $(tail -n 1 "$out/progress" 2>/dev/null || echo 'no round done'); VM exit $rc$([ $rc = 124 ] && echo ' (killed at its timeout: the guest froze)')"
[ $rc = 0 ]
