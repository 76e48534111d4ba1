#!/usr/bin/env bash
# Boots one kernel with virtme-ng (the host's root filesystem as the VM's, read-only) and runs
# test/vm/guest.sh OUT TEST_FILE… in it. KVM when it really works here, else qemu's TCG.
# Usage: boot.sh VMLINUZ OUT TEST_FILE…   Env: VMTEST_MEM (4G), VMTEST_CPUS (2),
# VMTEST_TIMEOUT (seconds, 2400), VMTEST_ACCEL (kvm|tcg, probed when unset), VMTEST_TIME_SCALE
# (CTRWATCH_TEST_TIME_SCALE in the VM: 4 under tcg, else 1).
# Exit status: the VM's (0 = it booted and guest.sh ran); OUT/console.log holds its output.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
kernel=${1:?usage: boot.sh VMLINUZ OUT TEST_FILE…}; out=${2:?}; shift 2
vng=$("$here/fetch-virtme.sh") || exit 1
accel=${VMTEST_ACCEL:-}
if [ -z "$accel" ]; then "$here/kvm-probe.sh" "$kernel" && accel=kvm || accel=tcg; fi
mkdir -p "$out"
echo "$accel" > "$out/accel"
# --verbose: the kernel's console into console.log (guest.sh then lets only its errors through),
# where report.mjs finds soft lockups and RCU stalls when a run is cut short.
flags=(--verbose)
# Under software emulation both vCPUs share one host thread (thread=single): with a thread each,
# a guest patching its own code (a static key flipped by a tracepoint's attach or a cgroup) while
# the other vCPU runs froze for good (test/vm/patch-stress.sh; CI's VMs timed out that way).
[ "$accel" = kvm ] || flags+=(--disable-kvm '--qemu-opts=-accel tcg,thread=single')
# virtme-ng's own python package, run from where it was extracted, with Debian's python3
export PYTHONPATH=$(dirname "$(dirname "$vng")")/lib/python3/dist-packages PATH=$(dirname "$vng"):$PATH
# software emulation runs the guest several times slower: scale the tests' timeouts with it
scale=${VMTEST_TIME_SCALE:-$([ "$accel" = kvm ] && echo 1 || echo 4)}
echo "$scale" > "$out/time-scale"
# the guest writes what was running 90 s before the VM is killed (guest.sh)
cmd=$(printf '%q ' env "CTRWATCH_TEST_TIME_SCALE=$scale" "VMTEST_SNAPSHOT_AFTER=$(( ${VMTEST_TIMEOUT:-2400} - 90 ))" "$here/guest.sh" "$out" "$@")
timeout --kill-after=30 "${VMTEST_TIMEOUT:-2400}" /usr/bin/python3 "$vng" "${flags[@]}" --run "$kernel" \
  --memory "${VMTEST_MEM:-4G}" --cpus "${VMTEST_CPUS:-2}" --rwdir "$out=$out" --exec "$cmd" </dev/null 2>&1 | tee "$out/console.log"
exit "${PIPESTATUS[0]}"
