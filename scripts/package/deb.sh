#!/usr/bin/env bash
# The .deb: the single executable as /usr/bin/ctrwatch, a systemd unit, /etc/ctrwatch/policy.yaml
# (a conffile). Depends: the packages that hold the shared libraries the executable and the addon
# it carries link against (found with objdump and dpkg -S on this build machine, each at least at
# the version built against). The service is installed, not enabled or started: the node's owner
# decides when a sensor runs (systemctl enable --now ctrwatch).
# Usage: scripts/package/deb.sh SEA_EXECUTABLE OUT_DIR   → prints the .deb's path
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
sea=${1:?usage: deb.sh SEA OUT_DIR}
out=${2:?usage: deb.sh SEA OUT_DIR}
version=$(node -p 'require(process.argv[1]).version' "$root/package.json")
arch=$(dpkg --print-architecture)

# Shared libraries → Debian packages (>= the version here, without its Debian revision).
libs() { objdump -p "$1" | awk '/NEEDED/ {print $2}'; }
deps=()
for lib in $( (libs "$sea"; libs "$root/build/Release/ctrwatch.node") | sort -u); do
  path=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64|AArch64|64bit/ {print $NF; exit}')
  [ -n "$path" ] || path=$(ldconfig -p | awk -v l="$lib" '$1 == l {print $NF; exit}')
  [ -n "$path" ] || { echo "deb: $lib (needed by the executable or the addon) not found on this machine" >&2; exit 1; }
  pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1) || true
  [ -n "$pkg" ] || pkg=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1) || true
  [ -n "$pkg" ] || { echo "deb: no Debian package holds $path ($lib)" >&2; exit 1; }
  ver=$(dpkg-query -W -f='${Version}' "$pkg" | sed 's/-[^-]*$//')
  deps+=("$pkg (>= $ver)")
done
# and the programs it runs: ss (iproute2), which names the clients of a runtime's socket (T1610, pods)
deps+=("iproute2")
depends=$(printf '%s\n' "${deps[@]}" | sort -u | paste -sd, | sed 's/,/, /g')

stage=$(mktemp -d "${TMPDIR:-/tmp}/ctrwatch-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"
install -D -m 0755 "$sea" "$stage/usr/bin/ctrwatch"
install -D -m 0644 "$root/deploy/debian/policy.yaml" "$stage/etc/ctrwatch/policy.yaml"
sed -e 's#/opt/ctrwatch/bin/ctrwatch#/usr/bin/ctrwatch#g' \
    -e 's#^Documentation=.*#Documentation=file:///usr/share/doc/ctrwatch/README.md#' \
    -e 's#^\# ctrwatch as a systemd service\..*#\# ctrwatch as a systemd service, from the ctrwatch package.#' \
    -e '/^\# (`make build` there)/d' \
    "$root/deploy/systemd/ctrwatch.service" > "$stage/ctrwatch.service"
install -D -m 0644 "$stage/ctrwatch.service" "$stage/lib/systemd/system/ctrwatch.service"
rm "$stage/ctrwatch.service"
install -D -m 0644 "$root/README.md" "$stage/usr/share/doc/ctrwatch/README.md"
install -D -m 0644 "$root/policy.example.yaml" "$stage/usr/share/doc/ctrwatch/policy.example.yaml"
mkdir -p "$stage/DEBIAN"
echo /etc/ctrwatch/policy.yaml > "$stage/DEBIAN/conffiles"
cat > "$stage/DEBIAN/postinst" <<'SH'
#!/bin/sh
set -e
# The unit is installed, not enabled: start it with `systemctl enable --now ctrwatch`.
if [ "$1" = configure ] && [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
exit 0
SH
cat > "$stage/DEBIAN/postrm" <<'SH'
#!/bin/sh
set -e
if [ "$1" = purge ]; then rm -rf /var/lib/ctrwatch; fi
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
exit 0
SH
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/postrm"
cat > "$stage/DEBIAN/control" <<CTL
Package: ctrwatch
Version: $version
Architecture: $arch
Maintainer: ctrwatch maintainers <ctrwatch@localhost>
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Depends: $depends
Section: admin
Priority: optional
Homepage: file:///usr/share/doc/ctrwatch/README.md
Description: eBPF sensor that sees every container start on a Linux node
 ctrwatch reports container lifecycle records and MITRE ATT&CK detections
 (escape to host, deployment, discovery, scheduled tasks) from kernel facts,
 whatever runtime made the container. A single executable: Node.js, the
 addon and the BPF object are inside it.
CTL
mkdir -p "$out"
deb="$out/ctrwatch_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
