#!/usr/bin/env bash
# Counts the user-space instructions the server runs per request-to-pay lifecycle:
#
#   scripts/instructions.sh [N]        N lifecycles measured (default 3000)
#
# Throughput on a shared machine moves by up to a factor of two from hour to hour
# (docs/performance.md), so two builds' lifecycles/s can be compared only in alternating
# rounds, and a change of a few per cent is lost in them. An instruction count is not: the
# server runs under Valgrind's callgrind, `mkoba bench` drives N lifecycles through it
# (after 500 to warm it up, not counted), and the count is the instructions the server's
# threads executed in user space meanwhile (the kernel's work, fsync's waits and the
# machine's speed are not in it). Two runs of one build agree within about 1 %.
#
# It prints the instructions per lifecycle in all and for the writer thread (the engine
# and the store), the checkpoint thread and the rest (the Tokio workers: HTTP, handlers,
# callbacks). CALLGRIND_OUT=file keeps callgrind's profile for `callgrind_annotate`.
# MKOBA_BIN=path/to/mkoba measures another build (say, the one before a change).
# Needs Valgrind (`apt-get install valgrind`); not part of the test command (release build,
# about a minute).
set -euo pipefail
cd "$(dirname "$0")/.."

n="${1:-3000}"
command -v valgrind > /dev/null || { echo "no valgrind (apt-get install valgrind)" >&2; exit 1; }
if [ -n "${MKOBA_BIN:-}" ]; then
    mkoba="$MKOBA_BIN"
else
    cargo build --release -q -p mkoba
    mkoba="$PWD/target/release/mkoba"
fi

work="$(mktemp -d)"
server=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2> /dev/null && wait "$server" 2> /dev/null
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" \
    "$mkoba" serve --data "$work/data" --listen "127.0.0.1:$port" > "$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 600); do
    curl -s -o /dev/null "$url/_mkoba/health" && break
    kill -0 "$server" 2> /dev/null || { cat "$work/serve.log" >&2; exit 1; }
    sleep 0.2
done

bench() { "$mkoba" bench --url "$url" --data "$work/data" -c 64 --no-ceiling "$@"; }
bench -n 500 > /dev/null 2>&1
callgrind_control -z "$server" > /dev/null 2>&1
bench -n "$n" --json > "$work/bench.json" 2> /dev/null
callgrind_control -d "$server" > /dev/null 2>&1
dump="$(ls "$work"/callgrind.out.* | head -n1)"
[ -n "${CALLGRIND_OUT:-}" ] && cp "$dump" "$CALLGRIND_OUT"

callgrind_annotate --inclusive=yes --threshold=100 "$dump" 2> /dev/null |
    python3 -c '
import json, re, sys
n, bench = int(sys.argv[1]), json.load(open(sys.argv[2]))
total = writer = checkpoint = 0
for line in sys.stdin:
    m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(.*)", line)
    if not m:
        continue
    count, name = int(m.group(1).replace(",", "")), m.group(2)
    if name.startswith("PROGRAM TOTALS"):
        total = count
    elif "mkoba_platform::engine::Engine::run [" in name:
        writer = max(writer, count)
    elif "mkoba_store_sqlite::checkpoint::run" in name:
        checkpoint = max(checkpoint, count)
done, batch = bench["lifecycles_completed"], bench["writer"]["commands_per_pass"]
if done != n or bench.get("callbacks_missing"):
    sys.exit(f"only {done} of {n} lifecycles completed")
per = lambda c: f"{c / n / 1000:.1f}k"
print(f"instructions per lifecycle: {per(total)}  (writer {per(writer)}, "
      f"checkpoint {per(checkpoint)}, workers and the rest {per(total - writer - checkpoint)}); "
      f"{n} lifecycles, {batch} commands a writer pass")
' "$n" "$work/bench.json"
