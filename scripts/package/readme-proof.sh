#!/usr/bin/env bash
# The README's two commands on a fresh Debian 12, as far as a chroot proves them: a clean root
# from mmdebstrap (debian-root.sh: Debian's packages only, no Node.js, no build tools), this
# tree (its tracked files, as they are now) copied in without node_modules or build output,
# then, inside it as root:
#   apt-get install make              the one thing the README assumes besides the clone
#   make doctor                       make run's prerequisites (setup.sh run, then the build),
#                                     then doctor: the sensor loads and attaches
#   make run ARGS=--check             make run's own path to the sensor, up to its first check
#   make test VITEST_ARGS=…           setup.sh test, build, lint, and the test files that need
#                                     no daemons (PROOF_TESTS, default test/unit test/delivery)
# and what each left installed. A chroot shares the host's kernel and cannot boot systemd, so
# it proves neither the real-kernel tests (their runtimes' daemons would run beside the host's)
# nor a service manager; `make vmtest-systemd` boots a Debian 12 VM for those.
# A node behind a TLS-inspecting proxy keeps the proxy's CA in /usr/local/share/ca-certificates;
# those of this host are copied into the root (ca-certificates' postinst adds them to the
# system store) and node is pointed at that store (NODE_EXTRA_CA_CERTS), as such a node needs.
# Writes the transcript to PROOF_LOG (default pkg/readme-proof.log).
# Usage: scripts/package/readme-proof.sh   (as root)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
log=${PROOF_LOG:-$root/pkg/readme-proof.log}
tests=${PROOF_TESTS:-test/unit test/delivery}
mkdir -p "$(dirname "$log")"
tarball=$("$here/debian-root.sh")
src=$(mktemp "${TMPDIR:-/var/tmp}/ctrwatch-src.XXXXXX.tar")
trap 'rm -rf "$src" "$src.ca"' EXIT
(cd "$root" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf "$src")
mkdir -p "$src.ca/local-ca" && cp /usr/local/share/ca-certificates/*.crt "$src.ca/local-ca/" 2>/dev/null || true
tar -C "$src.ca" -rf "$src" local-ca
commit=$(cd "$root" && git rev-parse --short HEAD)$(cd "$root" && git diff --quiet HEAD || echo "+changes")
{
  echo "# readme-proof: commit $commit, $(date -u +%FT%TZ), host kernel $(uname -r)"
  bash "$here/chroot.sh" "$tarball" '
step() { echo; echo "== $*"; t0=$(date +%s); }
took() { echo "-- $(( $(date +%s) - t0 )) s"; }
mkdir -p /tmp/local-ca /usr/local/share/ca-certificates && tar -xf /tmp/'"$(basename "$src")"' -C /tmp local-ca && cp /tmp/local-ca/*.crt /usr/local/share/ca-certificates/ 2>/dev/null || true
export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
mkdir -p /root/ctrwatch && tar -xf /tmp/'"$(basename "$src")"' -C /root/ctrwatch --exclude=local-ca && cd /root/ctrwatch
step "fresh root: Debian $(cat /etc/debian_version); node: $(command -v node || echo none); make: $(command -v make || echo none)"
dpkg-query -W -f="\${Package}\n" | sort > /tmp/pkgs.0
echo "$(wc -l < /tmp/pkgs.0) packages"
step "apt-get install make"; apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends make > /dev/null; took
step "make doctor"; make doctor; took
echo "node $(node --version) from $(dpkg -S "$(readlink -f "$(command -v node)")" 2>/dev/null | cut -d: -f1)"
dpkg-query -W -f="\${Package}\n" | sort > /tmp/pkgs.1
echo "installed by make doctor (make run'"'"'s setup): $(comm -13 /tmp/pkgs.0 /tmp/pkgs.1 | wc -l) packages, among them: $(comm -13 /tmp/pkgs.0 /tmp/pkgs.1 | grep -xE "clang|llvm|libbpf-dev|bpftool|libelf-dev|zlib1g-dev|pkg-config|make|g\+\+|python3|nodejs|npm|libnode-dev|docker.io|containerd|runc|crun|podman|nats-server" | paste -sd" ")"
test ! -e /usr/sbin/policy-rc.d && echo "no policy-rc.d left"
step "make run ARGS=--check"; make run ARGS=--check; took
step "make test VITEST_ARGS='"$tests"'"; make test VITEST_ARGS="'"$tests"'"; took
dpkg-query -W -f="\${Package}\n" | sort > /tmp/pkgs.2
echo "added by make test: $(comm -13 /tmp/pkgs.1 /tmp/pkgs.2 | grep -xE "docker.io|containerd|runc|crun|podman|nats-server|bpftrace|clang-format|busybox-static|openssl" | paste -sd" ")"
test ! -e /usr/sbin/policy-rc.d && echo "no policy-rc.d left"
echo; echo "PROOF PASS"
' "$src"
} 2>&1 | tee "$log"
grep -q "^PROOF PASS$" "$log"
