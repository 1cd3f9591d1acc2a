#!/usr/bin/env bash
# Runs the PaymentsDS JS client (npm @paymentsds/mpesa 0.1.0-alpha-9) compatibility
# flow against a running server that speaks the Vodacom Mozambique v1x gateway.
# The caller sets MPESA_HOST, MPESA_API_KEY and MPESA_PUBLIC_KEY (optionally
# MPESA_PORTS, MPESA_ORIGIN, MPESA_SHORTCODE, MPESA_TIMEOUT, MPESA_TRACE=1); see flow.js.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

: "${MPESA_HOST:?MPESA_HOST must be set (e.g. http://127.0.0.1, no port)}"
: "${MPESA_API_KEY:?MPESA_API_KEY must be set}"
: "${MPESA_PUBLIC_KEY:?MPESA_PUBLIC_KEY must be set (base64 SPKI DER, one line)}"

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

exec node flow.js
