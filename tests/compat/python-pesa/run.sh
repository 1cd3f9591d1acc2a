#!/usr/bin/env bash
# Runs the python-pesa (PyPI 0.7, import name `pypesa`) compatibility flow against a
# running server. The caller sets MPESA_BASE_URL, MPESA_API_KEY and MPESA_PUBLIC_KEY
# (optionally MPESA_ORIGIN, MPESA_TIMEOUT, MPESA_TRACE=1); see flow.py.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

: "${MPESA_BASE_URL:=}"
: "${MPESA_CONNECT_TO:=}"
if [ -z "$MPESA_BASE_URL" ] && [ -z "$MPESA_CONNECT_TO" ]; then
  echo "MPESA_BASE_URL (e.g. http://127.0.0.1:8080) or MPESA_CONNECT_TO (host:port of mkoba serve --tls) must be set" >&2
  exit 2
fi
export MPESA_BASE_URL MPESA_CONNECT_TO
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
