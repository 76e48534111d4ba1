#!/usr/bin/env bash
# Installs what ctrwatch needs: `setup.sh run` (make run, make doctor) only what building and
# running the sensor take; `setup.sh test` (make test, make bench) adds the container runtimes
# and tools the tests drive. Idempotent: a second run checks and returns in about a second.
# It changes nothing else on the node: no policy-rc.d is left behind, and apt is never allowed
# to remove a package (it stops and says so instead).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-run}

BUILD_PKGS=(clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config make g++ python3)
# Real runtimes and tools the tests and benchmarks drive (containernetworking-plugins: the pod tests' bridge;
# chromium: the console's browser test drives it through puppeteer-core, which downloads no browser).
TEST_PKGS=(clang-format runc crun containerd containernetworking-plugins podman docker.io busybox-static util-linux iproute2 bpftrace openssl nats-server chromium)
case "$what" in
  run) PKGS=("${BUILD_PKGS[@]}") ;;
  test) PKGS=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}") ;;
  *) echo "usage: setup.sh run|test" >&2; exit 2 ;;
esac
# Node.js 18 or later: Debian's own (bookworm has 18) when the node has none.
node_ok() { command -v node >/dev/null && node -e 'process.exit(+process.versions.node.split(".")[0] >= 18 ? 0 : 1)'; }
# Debian's Node comes with its headers in libnode-dev: the addon builds from them, offline
# (scripts/nodedir.sh). NodeSource's nodejs carries its own.
if ! node_ok; then
  PKGS+=(nodejs npm libnode-dev)
elif dpkg-query -W -f='${Maintainer}' nodejs 2>/dev/null | grep -qi debian; then
  PKGS+=(libnode-dev)
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  # Debian's postinst scripts would start dockerd/containerd: forbid that while apt runs (the
  # tests start their own), and take the guard away again, so later upgrades restart services.
  rc=/usr/sbin/policy-rc.d
  if [ ! -e "$rc" ]; then
    printf '#!/bin/sh\n# ctrwatch setup: removed when its apt-get install ends\nexit 101\n' > "$rc"
    chmod +x "$rc"
    trap 'rm -f "$rc"' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # --no-remove: if installing would remove anything (say, Docker CE for docker.io), stop.
  if ! apt-get install -y -qq --no-install-recommends --no-remove "${missing[@]}" >/dev/null; then
    echo "setup: apt-get would not install ${missing[*]} without removing other packages (or failed): nothing was changed; install them yourself" >&2
    exit 1
  fi
fi

if [ ! -f node_modules/.stamp ] || [ package-lock.json -nt node_modules/.stamp ]; then
  npm ci --no-audit --no-fund --loglevel=error
  touch node_modules/.stamp
fi
