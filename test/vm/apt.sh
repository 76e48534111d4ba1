#!/usr/bin/env bash
# Private apt for the VM tests: its own sources, state and cache under $VMTEST_DIR/apt, so the
# host's apt configuration is never touched. Usage: test/vm/apt.sh update | download PKG… (into cwd)
# | policy PKG… The archive URI is the host's own Debian source (override with DEBIAN_URI).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
VMTEST_DIR=${VMTEST_DIR:-$root/.vmtest}
A=$VMTEST_DIR/apt
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$KEYRING" ] || { echo "vmtest apt: $KEYRING missing (install debian-archive-keyring)" >&2; exit 1; }

host_uri() {
  # first Debian archive URI the host itself uses (deb822 .sources or one-line sources.list)
  local u
  u=$(grep -hoE '^URIs:[[:space:]]*[^[:space:]]+/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | awk '{print $2}')
  [ -n "$u" ] || u=$(grep -hoE '^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?[^[:space:]]+/debian/?[[:space:]]' /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $NF}')
  echo "${u%/}"
}
URI=${DEBIAN_URI:-$(host_uri)}
[ -n "$URI" ] || { echo "vmtest apt: no Debian archive URI in the host's apt sources; set DEBIAN_URI" >&2; exit 1; }

mkdir -p "$A/etc/sources.list.d" "$A/etc/preferences.d" "$A/state/lists/partial" "$A/cache/archives/partial"
# Suites whose kernels we test, plus trixie for virtme-ng. bookworm-backports carries a newer
# kernel (bullseye-backports has left the main archive).
cat > "$A/etc/sources.list" <<SRC
deb [signed-by=$KEYRING] $URI bullseye main
deb [signed-by=$KEYRING] $URI bookworm main
deb [signed-by=$KEYRING] $URI bookworm-backports main
deb [signed-by=$KEYRING] $URI trixie main
SRC
: > "$A/state/status"
opts=(-o "Dir::Etc::SourceList=$A/etc/sources.list" -o "Dir::Etc::SourceParts=$A/etc/sources.list.d"
      -o "Dir::Etc::Preferences=$A/etc/preferences" -o "Dir::Etc::PreferencesParts=$A/etc/preferences.d"
      -o "Dir::State=$A/state" -o "Dir::State::status=$A/state/status" -o "Dir::Cache=$A/cache"
      -o "APT::Architecture=amd64" -o "Acquire::Languages=none" -o "APT::Sandbox::User=root" -q)

cmd=${1:?usage: apt.sh update|download|policy|show …}; shift
case $cmd in
  update)
    # refresh at most once a day: reruns stay quick and offline-friendly
    stamp=$A/state/updated
    if [ -z "$(find "$stamp" -mmin -1440 2>/dev/null)" ]; then
      apt-get "${opts[@]}" update >&2 && touch "$stamp"
    fi ;;
  download) apt-get "${opts[@]}" download "$@" ;;
  policy|show|madison|depends) apt-cache "${opts[@]}" "$cmd" "$@" ;;
  *) echo "vmtest apt: unknown command $cmd" >&2; exit 2 ;;
esac
