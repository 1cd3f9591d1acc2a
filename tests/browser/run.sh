#!/usr/bin/env bash
# Runs one browser flow in headless Chromium: `run.sh docs|journey|portal|widget`. Each
# flow's settings are environment variables its flow.js names (a missing one fails the run
# at once); ARTIFACTS (optional) is where its screenshots go, by default artifacts/<flow>
# at the repository root.
# Installs Debian's chromium and the pinned playwright-core (one node_modules for every
# flow) when they are missing, one caller at a time: the Rust tests run the flows side by
# side, and two installs at once break each other (apt's lock, npm's half-written tree).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

flow="${1:-}"
if [ -z "$flow" ] || [ ! -f "$flow/flow.js" ]; then
  echo "usage: run.sh FLOW, where FLOW is one of: $(ls -d */ | grep -v node_modules | tr -d / | tr '\n' ' ')" >&2
  exit 2
fi

exec 9>.install.lock
flock 9
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
exec 9>&-

exec node "$flow/flow.js"
