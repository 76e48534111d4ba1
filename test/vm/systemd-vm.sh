#!/usr/bin/env bash
# `make vmtest-systemd`: boots the systemd node image (test/vm/systemd-image.sh) in qemu with the
# image's own kernel and initrd, the project tree shared read-only over 9p and the host's node
# binary on a second share, runs test/vm/systemd-node.mjs inside (ctrwatch against Docker, Podman
# and containerd on the systemd cgroup driver) and exits with its status.
# KVM when it really boots a kernel here, software emulation (TCG) otherwise.
# The root disk is opened with snapshot=on: the cached image never changes, and nothing stays
# behind: qemu is stopped by pid (timeout), the run directory removed, no host mount is made.
# Usage: test/vm/systemd-vm.sh [docker|podman|containerd …]   (as root, after `make build`)
# Env: VMTEST_DIR (default .vmtest), VM_TIMEOUT_S (default 1800), VM_MEM_MB (default 3072),
#      VM_ACCEL (kvm|tcg, default: probe), VM_KEEP=1 keeps the run directory (console log).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
VMTEST_DIR=${VMTEST_DIR:-$root/.vmtest}
export VMTEST_DIR
TIMEOUT_S=${VM_TIMEOUT_S:-1800}
MEM=${VM_MEM_MB:-3072}

for a in "$@"; do
  case $a in docker|podman|containerd) ;; *) echo "vmtest-systemd: unknown runtime '$a' (docker, podman, containerd)" >&2; exit 2 ;; esac
done
[ "$(id -u)" = 0 ] || { echo "vmtest-systemd: run as root" >&2; exit 1; }
[ -f "$root/dist/.stamp" ] && [ -f "$root/build/Release/ctrwatch.node" ] || { echo "vmtest-systemd: build first (make build)" >&2; exit 1; }
NODE=$(command -v node) || { echo "vmtest-systemd: no node on PATH" >&2; exit 1; }

# Test-only host package, installed here and never by `make run`/`make setup` (the image script
# installs mmdebstrap when it has to build).
if ! command -v qemu-system-x86_64 >/dev/null; then
  echo "vmtest-systemd: installing qemu-system-x86" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 qemu-system-x86 >/dev/null
fi

t_img=$(date +%s.%N)
image=$("$here/systemd-image.sh")
t_boot=$(date +%s.%N)
printf 'vmtest-systemd: image %s (%.1f s to build or find)\n' "${image#"$root"/}" "$(awk -v a="$t_img" -v b="$t_boot" 'BEGIN{print b-a}')"

# KVM only when it really runs a guest here: the image's kernel, booted under KVM, must print its
# banner within 10 s. Nested KVM can open /dev/kvm, make a VM and run real-mode code, then stall
# for ever once the kernel enters long mode; it may also refuse IA32_ARCH_CAPABILITIES for
# `-cpu host` (qemu aborts), hence a second model without that MSR.
kvm_runs() {
  local con=$VMTEST_DIR/systemd/kvm-probe.log pidf=$VMTEST_DIR/systemd/kvm-probe.pid qp i
  rm -f "$con" "$pidf"
  # in a subshell that outlives it (|| true): its stderr takes the "Aborted" line when qemu aborts
  ( timeout 15 qemu-system-x86_64 -accel kvm -cpu "$1" -smp 1 -m 256 -M q35 -nodefaults -display none -no-reboot \
    -kernel "$image/vmlinuz" -append "console=ttyS0 earlyprintk=serial,ttyS0 panic=-1 root=/dev/nonexistent" \
    -serial "file:$con" -pidfile "$pidf" || true ) >/dev/null 2>&1 &
  qp=$!
  for i in $(seq 100); do
    grep -q 'Linux version' "$con" 2>/dev/null && break
    kill -0 "$qp" 2>/dev/null || break
    sleep 0.1
  done
  [ -s "$pidf" ] && kill "$(cat "$pidf")" 2>/dev/null || true
  wait "$qp" 2>/dev/null || true
  local ok=1
  grep -q 'Linux version' "$con" 2>/dev/null && ok=0
  rm -f "$con" "$pidf"
  return $ok
}
accel=${VM_ACCEL:-}
cpu_model=
if [ -z "$accel" ] || [ "$accel" = kvm ]; then
  if [ -c /dev/kvm ]; then
    for m in host host,-arch-capabilities; do kvm_runs "$m" && { cpu_model=$m; break; }; done
  fi
  if [ -z "$cpu_model" ]; then
    [ "$accel" = kvm ] && { echo "vmtest-systemd: VM_ACCEL=kvm but KVM does not run a guest here" >&2; exit 1; }
    echo "vmtest-systemd: KVM does not boot a kernel here: software emulation (TCG)" >&2
    accel=tcg
  else
    accel=kvm
  fi
fi
case $accel in
  kvm) cpu=(-accel kvm -cpu "$cpu_model") ;;
  # both vCPUs on one host thread: with a thread each, live kernel code patching can freeze the
  # guest (test/vm/patch-stress.sh)
  tcg) cpu=(-accel tcg,thread=single -cpu max) ;;
  *) echo "vmtest-systemd: VM_ACCEL must be kvm or tcg, not '$accel'" >&2; exit 2 ;;
esac

run=$(mktemp -d "$VMTEST_DIR/systemd/run.XXXXXX")
qpid=
cleanup() {
  if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then kill "$qpid" 2>/dev/null || true; wait "$qpid" 2>/dev/null || true; fi
  [ "${VM_KEEP:-}" = 1 ] && echo "vmtest-systemd: kept $run" >&2 || rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$run/io/bin"
cp "$NODE" "$run/io/bin/node"
# The guest's entry (baked into the image) runs what cmd names, in the project tree.
cat > "$run/io/run.sh" <<EOS
cut -d' ' -f1 /proc/uptime > /mnt/io/uptime-at-start
CW_VM_OUT=/mnt/io exec node test/vm/systemd-node.mjs $*
EOS
echo "bash /mnt/io/run.sh" > "$run/io/cmd"

echo "vmtest-systemd: booting ($accel${cpu_model:+ -cpu $cpu_model}, $(cat "$image/kernel-release"), ${MEM} MiB), console in ${run#"$root"/}/console.log" >&2
timeout --kill-after=10 "$TIMEOUT_S" qemu-system-x86_64 "${cpu[@]}" -smp 2 -m "$MEM" -M q35 \
  -nodefaults -display none -no-reboot \
  -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
  -append "root=/dev/vda rw console=ttyS0 panic=-1 systemd.show_status=false" \
  -drive "file=$image/rootfs.ext4,format=raw,if=virtio,snapshot=on" \
  -virtfs "local,path=$root,mount_tag=project,security_model=none,readonly=on" \
  -virtfs "local,path=$run/io,mount_tag=io,security_model=none" \
  -device virtio-rng-pci -serial "file:$run/console.log" &
qpid=$!
qrc=0; wait "$qpid" || qrc=$?
qpid=
t_end=$(date +%s.%N)

[ -f "$run/io/out.log" ] && cat "$run/io/out.log"
if [ ! -f "$run/io/rc" ]; then
  echo "FAIL vmtest-systemd: no result from the VM (qemu status $qrc; 124 is the ${TIMEOUT_S} s timeout). Console tail:" >&2
  tail -40 "$run/console.log" >&2 || true
  exit 1
fi
rc=$(cat "$run/io/rc")
up=$(cat "$run/io/uptime-at-start" 2>/dev/null || echo '?')
printf 'vmtest-systemd: %s, guest booted to the test in %s s (guest uptime), whole VM run %.1f s, exit %s\n' \
  "$accel" "$up" "$(awk -v a="$t_boot" -v b="$t_end" 'BEGIN{print b-a}')" "$rc"
exit "$rc"
