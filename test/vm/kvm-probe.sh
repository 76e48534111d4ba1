#!/usr/bin/env bash
# Exit 0 when KVM can really boot KERNEL (vmlinuz) the way virtme-ng starts it (-cpu host).
# /dev/kvm can exist on a VM without working nested virtualisation: qemu then aborts
# ("failed to set MSR") or the guest never prints a line. So boot it and wait for the banner.
set -uo pipefail
kernel=${1:?usage: kvm-probe.sh VMLINUZ}
[ -w /dev/kvm ] || exit 1
out=$(timeout 20 qemu-system-x86_64 -machine accel=kvm -cpu host -m 256 -display none -nographic \
  -no-reboot -kernel "$kernel" -append 'console=ttyS0 panic=-1' 2>&1 </dev/null)
grep -q 'Linux version' <<<"$out"
