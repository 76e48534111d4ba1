#!/usr/bin/env bash
# Installs what ctrwatch builds and tests with: Debian packages, then npm modules.
# Idempotent: a second run checks and returns in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_PKGS=(clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config make g++ python3 clang-format)
# Real runtimes and tools the tests and benchmarks drive.
TEST_PKGS=(runc crun containerd podman docker.io busybox-static util-linux iproute2 bpftrace openssl nats-server)
PKGS=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}")

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
  # Debian's postinst scripts would start dockerd/containerd: forbid that, tests start their own.
  [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -f node_modules/.stamp ] || [ package-lock.json -nt node_modules/.stamp ]; then
  npm ci --no-audit --no-fund --loglevel=error
  touch node_modules/.stamp
fi
