#!/usr/bin/env bash
# Runs schemathesis against MTN's four OpenAPI definitions (definitions/) with valid credentials,
# against a server that is already running. The caller sets MKOBA_URL and the three product
# subscription keys (MKOBA_KEY_COLLECTION, MKOBA_KEY_DISBURSEMENT, MKOBA_KEY_REMITTANCE); the
# Rust test `conformance` in crates/cli/tests/api does that. Deliberate differences from the
# definitions are listed, with their reasons, in exclusions.toml.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

: "${MKOBA_URL:?MKOBA_URL must be set (e.g. http://127.0.0.1:8080)}"

# One install at a time: tests run side by side, and two installs into one folder
# break each other.
exec 9>.install.lock
flock 9
# A project-local virtual environment with the pinned schemathesis, (re)built when the pins change.
if [ ! -x .venv/bin/python ] || [ ! -f .venv/.pins ] || ! cmp -s requirements.txt .venv/.pins; then
  rm -rf .venv
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt >&2
  cp requirements.txt .venv/.pins
fi
exec 9>&-

exec .venv/bin/python conformance.py "$@"
