#!/usr/bin/env bash
# `make vmtest`: boots each kernel series under qemu (test/vm/boot.sh), runs ctrwatch doctor and
# the real-kernel tests in it (test/vm/guest.sh), prints a pass/fail table (test/vm/report.mjs)
# and, when VMTEST_DOC is set, writes it there with the commit it measured.
# Usage: run.sh [SERIES…]   (default 5.10 6.1 6.12)
# Env: VMTEST_TESTS  test files to run in each VM (default: kernel-features, pipeline, containers,
#                    runtimes-lab, detections, pod-token); VMTEST_DOC  markdown file to write; VMTEST_DIR  cache (.vmtest);
#      VMTEST_SUMMARY  JSON file for the passed/failed/skipped totals (see report.mjs).
# Exit 1 when a kernel did not boot, doctor failed, or a test failed or was skipped.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
export VMTEST_DIR=${VMTEST_DIR:-$root/.vmtest}
series=("$@")
[ ${#series[@]} -gt 0 ] || series=(5.10 6.1 6.12)
read -r -a tests <<<"${VMTEST_TESTS:-test/kernel/kernel-features.test.ts test/kernel/pipeline.test.ts test/kernel/containers.test.ts test/kernel/runtimes-lab.test.ts test/kernel/detections.test.ts test/kernel/pod-token.test.ts}"
for t in "${tests[@]}"; do [ -f "$t" ] || { echo "vmtest: no test file $t" >&2; exit 2; }; done

# the commit measured, taken before the VMs run (the tree may change meanwhile)
meta=$(git rev-parse --short HEAD 2>/dev/null) || meta=unknown
dirty=clean; [ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || dirty=dirty

# Fetch everything first so that a network failure stops the run before any VM boots.
kernels=$("$here/fetch-kernels.sh" "${series[@]}") || { echo "vmtest: FAILED to fetch kernels ${series[*]}" >&2; exit 1; }
"$here/fetch-virtme.sh" >/dev/null || { echo "vmtest: FAILED to fetch virtme-ng" >&2; exit 1; }

results=$VMTEST_DIR/results
dirs=()
while read -r s kver vmlinuz; do
  out=$results/$s
  rm -rf "$out" && mkdir -p "$out"
  echo "$s $kver" > "$out/series"
  echo "vmtest: booting $s ($kver)" >&2
  t0=$(date +%s)
  "$here/boot.sh" "$vmlinuz" "$out" "${tests[@]}" > /dev/null
  echo $? > "$out/vm.rc"
  echo $(( $(date +%s) - t0 )) > "$out/wall"
  dirs+=("$out")
done <<<"$kernels"

node "$here/report.mjs" --commit "$meta" --tree "$dirty" --command "${VMTEST_COMMAND:-make vmtest KERNELS=\"${series[*]}\"}" \
  ${VMTEST_DOC:+--doc "$VMTEST_DOC"} ${VMTEST_SUMMARY:+--summary "$VMTEST_SUMMARY"} "${dirs[@]}"
