#!/usr/bin/env bash
# Drives the Collection Widget in headless Chromium: flow.js serves a merchant's pages on
# another origin (127.0.0.1, a free port) that embed the script from Mkoba. The caller sets
# MKOBA_BASE_URL (a running server), API_USER and REFUSED_API_USER (see NOTES.md), and
# optionally ARTIFACTS (where screenshots go; default artifacts/widget at the repository
# root). Installs Debian's chromium and the pinned playwright-core when they are missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

: "${MKOBA_BASE_URL:?MKOBA_BASE_URL must be set (e.g. http://127.0.0.1:8080)}"
: "${API_USER:?API_USER must be set (an API user that takes widget payments from any page or from the merchant origin)}"
: "${REFUSED_API_USER:?REFUSED_API_USER must be set (an API user whose allowed origins exclude the merchant origin)}"

if [ ! -x /usr/bin/chromium ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "==> installing chromium (Debian package)" >&2
  $SUDO apt-get update -qq >&2
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
fi

# (Re)install the pinned driver when node_modules is missing or older than the lock.
if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] \
   || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >&2
fi

export ARTIFACTS="${ARTIFACTS:-$(cd ../../.. && pwd)/artifacts/widget}"
mkdir -p "$ARTIFACTS"
exec node flow.js
