#!/usr/bin/env bash
# Drives the portal's API pages and guides in headless Chromium. The caller sets
# PORTAL_BASE_URL (a running server), PORTAL_EMAIL and PORTAL_PASSWORD (a developer who
# can sign in), and optionally ARTIFACTS (where screenshots go; default artifacts/docs at
# the repository root).
# Installs Debian's chromium and the pinned playwright-core when they are missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

: "${PORTAL_BASE_URL:?PORTAL_BASE_URL must be set (e.g. http://127.0.0.1:8080)}"
: "${PORTAL_EMAIL:?PORTAL_EMAIL must be set}"
: "${PORTAL_PASSWORD:?PORTAL_PASSWORD must be set}"

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

export ARTIFACTS="${ARTIFACTS:-$(cd ../../.. && pwd)/artifacts/docs}"
mkdir -p "$ARTIFACTS"
exec node flow.js
