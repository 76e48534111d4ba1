#!/usr/bin/env bash
# Runs INSIDE a test VM (as root, the host's root filesystem shared read-only): makes the node
# look like a real one (cgroup v2 unified, real scratch filesystems for the runtimes), then runs
# `ctrwatch doctor` and the real-kernel test files, writing everything into OUT (a directory
# shared read-write with the host): kernel, doctor.{txt,rc}, vitest.json, vitest.log, setup.log.
# When doctor fails, the tests are not run.
# Usage: guest.sh OUT TEST_FILE…
set -uo pipefail
out=${1:?usage: guest.sh OUT TEST_FILE…}; shift
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
exec 3>&1 >"$out/setup.log" 2>&1
uname -r > "$out/kernel"
# The kernel's errors on its console (boot.sh shows it): soft lockups are emergencies, but RCU
# stalls and hung tasks are errors, below virtme's loglevel=1. On a lockup, every CPU's stack.
echo 4 > /proc/sys/kernel/printk
echo 1 > /proc/sys/kernel/softlockup_all_cpu_backtrace
say() { echo "vmtest[$(cat "$out/kernel")]: $*" >&3; }

# cgroup v2 unified at /sys/fs/cgroup and no v1 hierarchy: what systemd nodes have.
if [ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" != cgroup2fs ]; then
  mount -t cgroup2 cgroup2 /sys/fs/cgroup
fi
if grep -qE ' - cgroup ' /proc/self/mountinfo; then echo "a cgroup v1 hierarchy is mounted"; fi
# enable every controller for children, as systemd does at the root
ctrls=$(sed 's/\([a-z_]*\)/+\1/g' /sys/fs/cgroup/cgroup.controllers)
echo "$ctrls" > /sys/fs/cgroup/cgroup.subtree_control || echo "subtree_control: could not enable $ctrls"
# The slices systemd keeps for the node's life. Besides being where a real node's processes are,
# they keep controllers' kernel switches on: without them, the first container cgroup turned
# cpuset's static key on and its removal off again, and each switch patches live kernel code.
# Under qemu's software emulation that patching livelocked both vCPUs on 5.10 (soft lockups at
# get_page_from_freelist's int3, with 50 containers starting): a VM artefact a systemd node never sees.
for s in init.scope system.slice user.slice; do mkdir -p "/sys/fs/cgroup/$s"; done

# The root is 9p (read-only; bolt's mmap and unix sockets fail on it) and virtme's overlays
# cannot be stacked under overlayfs again: give runtimes and tests real tmpfs scratch space.
for d in /tmp /run/containerd /run/runc /run/crun /var/lib/containerd /var/lib/docker /var/lib/containers /run/containers; do
  mkdir -p "$d" 2>/dev/null; mount -t tmpfs -o mode=1777,size=75% tmpfs "$d"
done
# Modules the runtimes need; the kernel package's modules are linked at /lib/modules by virtme.
for m in overlay br_netfilter veth bridge nf_tables xt_conntrack tun loop; do modprobe -q "$m" || echo "modprobe $m failed"; done
grep -q overlay /proc/filesystems || echo "no overlay filesystem"
mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true

say "doctor"
./bin/ctrwatch doctor > "$out/doctor.txt" 2>&1
echo $? > "$out/doctor.rc"
cat "$out/doctor.txt" >&3
if [ "$(cat "$out/doctor.rc")" != 0 ]; then
  # libbpf's log names the verifier's reason. No test can pass when the programs do not load:
  # the tests are not run (the report counts that as a failure), which saves their timeouts.
  CTRWATCH_LOG=debug ./bin/ctrwatch doctor > "$out/doctor-debug.txt" 2>&1
  say "doctor failed: tests not run"
  exit 0
fi

[ $# -gt 0 ] || exit 0
say "vitest $*"
# Shortly before boot.sh's timeout kills the VM: what is still running, and where each task
# waits in the kernel (report.mjs prints it when vitest wrote no report).
( sleep "${VMTEST_SNAPSHOT_AFTER:-2310}"
  { ps -eo pid,ppid,stat,wchan:32,etime,args; for s in /proc/[0-9]*/stack; do
      st=$(cat "$s" 2>/dev/null) && [ -n "$st" ] && printf '%s %s\n%s\n' "$s" "$(tr '\0' ' ' < "${s%stack}cmdline" 2>/dev/null | cut -c1-120)" "$st"
    done; } > "$out/ps-at-timeout.txt" 2>&1 ) &
watchdog=$!
# CI=true: vitest's CI mode (no watch, no interactive output); the host side counts skips as failures.
start=$(date +%s.%N)
# verbose: one line per test as it ends, so that a run cut short shows the last one that did
# The test processes run before the containers and sensors they start (nice -10; what they start
# is reset to 0 at fork): under emulation a burst of container starts held the test worker's event
# loop 48 s, 27 s at nice -10, and vitest fails a run whose worker calls go unanswered for 60 s
# (docs/kernels.md). The worker raises itself
# (test/support/runner-priority.ts); vitest is run directly, as npx would put a child between.
CI=true NO_COLOR=1 FORCE_COLOR=0 CTRWATCH_TEST_RUNNER_NICE=-10 nice -n -10 chrt --reset-on-fork --other 0 \
  node node_modules/vitest/vitest.mjs run "$@" --reporter=verbose --reporter=json \
  --outputFile.json="$out/vitest.json" > "$out/vitest.log" 2>&1
echo $? > "$out/vitest.rc"
kill "$watchdog" 2>/dev/null
echo "$start $(date +%s.%N)" > "$out/vitest.time"
tail -n 25 "$out/vitest.log" >&3
