#!/usr/bin/env bash
# Runs the PaymentsDS Python client (PyPI paymentsds-mpesa 0.1a10, import name
# `paymentsds.mpesa`) compatibility flow against a running server that speaks the
# Vodacom Mozambique v1x gateway. The caller sets MPESA_HOST, MPESA_API_KEY and
# MPESA_PUBLIC_KEY (optionally MPESA_PORTS, MPESA_ORIGIN, MPESA_SHORTCODE,
# MPESA_TIMEOUT, MPESA_TRACE=1); see flow.py.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

: "${MPESA_HOST:?MPESA_HOST must be set (e.g. http://127.0.0.1, no port)}"
: "${MPESA_API_KEY:?MPESA_API_KEY must be set}"
: "${MPESA_PUBLIC_KEY:?MPESA_PUBLIC_KEY must be set (base64 SPKI DER, one line)}"

# One install at a time: tests run side by side, and two installs into one folder
# break each other.
exec 9>.install.lock
flock 9
# (Re)build the project-local venv when it is missing or requirements.txt is newer
# than the stamp written after the last successful install. A rebuild starts from an
# empty venv (--clear) so packages dropped from requirements.txt do not linger.
stamp=.venv/.requirements.stamp
if [ ! -x .venv/bin/python ] || [ ! -f "$stamp" ] || [ requirements.txt -nt "$stamp" ]; then
  python3 -m venv --clear .venv >&2
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt >&2
  touch "$stamp"
fi
exec 9>&-

exec .venv/bin/python flow.py
