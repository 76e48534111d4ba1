#!/bin/sh
# Prints --nodedir=/usr when /usr/include/node holds the running Node's own headers (Debian's
# libnode-dev, NodeSource's nodejs): node-gyp then builds the addon from them instead of
# downloading headers from nodejs.org, which a node without that access cannot.
h=/usr/include/node/node_version.h
[ -f "$h" ] && [ -f /usr/include/node/common.gypi ] || exit 0
v=$(awk '/^#define NODE_(MAJOR|MINOR|PATCH)_VERSION / {printf "%s.", $3}' "$h")
[ "${v%.}" = "$(node -p process.versions.node)" ] && echo --nodedir=/usr
exit 0
