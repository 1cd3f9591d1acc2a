#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests (including the
# published mtn-momo npm client against the real server). Installs what the tests need.
set -euo pipefail
cd "$(dirname "$0")/.."

need_node=0
command -v node >/dev/null 2>&1 || need_node=1
command -v npm >/dev/null 2>&1 || need_node=1
if [ "$need_node" = 1 ]; then
  echo "==> installing Node.js and npm (the mtn-momo client test needs them)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi

# The portal's Java library file is compiled and run by a test (seed 004's portal-sdk).
if ! command -v javac >/dev/null 2>&1; then
  echo "==> installing a JDK (the portal's Java library test compiles with javac)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jdk-headless >/dev/null
fi

# The PostgreSQL store's contract tests start a throwaway server with initdb and pg_ctl.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  echo "==> installing PostgreSQL (the store-postgres contract tests start a throwaway server)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
# One closing line for the whole run (cargo's last line is a crate's doc-tests, often 0).
awk '/^test result:/ { p += $4; f += $6 } END { printf "\nTests: %d passed, %d failed\n", p, f }' "$log"
