#!/usr/bin/env bash
# Runs the mtn-momo (npm, sparkplug) compatibility flow against a running server.
# The caller sets MOMO_BASE_URL and MOMO_COLLECTION_KEY (optionally
# MOMO_CALLBACK_HOST, MOMO_CALLBACK=0, MOMO_TRACE=1); see flow.js.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

: "${MOMO_BASE_URL:=}"
: "${MOMO_CONNECT_TO:=}"
if [ -z "$MOMO_BASE_URL" ] && [ -z "$MOMO_CONNECT_TO" ]; then
  echo "MOMO_BASE_URL (e.g. http://127.0.0.1:8080) or MOMO_CONNECT_TO (host:port of mkoba serve --tls) must be set" >&2
  exit 2
fi
export MOMO_BASE_URL MOMO_CONNECT_TO
: "${MOMO_COLLECTION_KEY:?MOMO_COLLECTION_KEY must be set}"

# One install at a time: tests run side by side, and two installs into one folder
# break each other.
exec 9>.install.lock
flock 9
# (Re)install the pinned client when node_modules is missing or older than the lock.
# npm ci rewrites node_modules/.package-lock.json, which is what we compare against.
if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] \
   || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >&2
fi
exec 9>&-

if [ -n "$MOMO_CONNECT_TO" ]; then
  exec node --require ./connect-to.js flow.js
fi
exec node flow.js
