#!/usr/bin/env bash
# Tests the .deb and the single executable in a clean Debian 12 root (chroot.sh): the root has
# no Node.js; dpkg -i stops on the dependencies the .deb declares; apt-get -f install brings them
# from Debian's archive and configures the package; ctrwatch doctor passes with the installed
# package; purge removes it with its conffile; then the bare executable (no package, no Node)
# runs version and doctor on the libraries the package declared.
# Usage: scripts/package/test-deb.sh DEB SEA   (as root; prints what it did, exits non-zero on a failure)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
deb=${1:?usage: test-deb.sh DEB SEA}
sea=${2:?usage: test-deb.sh DEB SEA}
tarball=$("$here/debian-root.sh")
# shellcheck disable=SC2016 # runs inside the root
bash "$here/chroot.sh" "$tarball" '
echo "== the root: Debian $(cat /etc/debian_version), no node"
if command -v node || command -v nodejs; then echo "FAIL: node in a clean root"; exit 1; fi
echo "== dpkg -i"
if dpkg -i ctrwatch_*.deb > dpkg.log 2>&1; then echo "FAIL: dpkg -i passed without its dependencies"; exit 1; fi
grep -o "depends on [a-z0-9.+-]*" dpkg.log | sort -u
echo "== apt-get -f install"
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -f > apt.log 2>&1 || { cat apt.log; exit 1; }
dpkg-query -W -f="\${Package} \${Version} \${Status}\n" ctrwatch
dpkg-query -W -f="\${Status}\n" ctrwatch | grep -qx "install ok installed"
for f in /usr/bin/ctrwatch /etc/ctrwatch/policy.yaml /lib/systemd/system/ctrwatch.service; do test -f "$f"; echo "$f"; done
grep -q "^ExecStart=/usr/bin/ctrwatch run --policy=/etc/ctrwatch/policy.yaml" /lib/systemd/system/ctrwatch.service
echo "== ctrwatch version"
ctrwatch version
echo "== ctrwatch run --check"
ctrwatch run --check --policy=/etc/ctrwatch/policy.yaml --log-level=warn
echo "== ctrwatch doctor"
ctrwatch doctor
echo "== dpkg --purge"
dpkg --purge ctrwatch > /dev/null
for f in /usr/bin/ctrwatch /etc/ctrwatch/policy.yaml /lib/systemd/system/ctrwatch.service; do if test -e "$f"; then echo "FAIL: $f left"; exit 1; fi; done
echo "purged"
echo "== the bare executable (no package, no node)"
./ctrwatch version
./ctrwatch doctor
echo "== the console is refused, in one line, by the executable that does not carry it"
set +e; ./ctrwatch collect --listen 127.0.0.1:0 --out /tmp/cw-ui --ui 127.0.0.1:0; rc=$?; set -e
echo "collect --ui exit $rc"
echo "PASS"
' "$deb" "$sea"
