#!/usr/bin/env bash
# Benchmarks Mkoba on a throwaway PostgreSQL with one and with two gateway nodes:
#
#   scripts/bench-nodes.sh [NODES...]        e.g. scripts/bench-nodes.sh sqlite 1 2
#
# NODES are node counts (default: 1 2); `sqlite` runs one node on SQLite instead, for
# comparison. MKOBA_BIN=path/to/mkoba benchmarks another build (say, an older release).
#
# For each count it creates a fresh database, runs `mkoba migrate`, starts that many
# `mkoba serve` processes (release build) on free loopback ports, and runs `mkoba bench`
# over all of them (requests in turn, as a round-robin load balancer would). PostgreSQL runs
# with its defaults, so `synchronous_commit = on` and `fsync = on`: a 202 is on disk.
# Options go to `mkoba bench` through BENCH_ARGS (default "-n 20000 -c 64").
# After each PostgreSQL bench it prints the CPU time PostgreSQL's processes used during it,
# also per lifecycle, beside the `mkoba` server's own that the bench prints.
# For experiments: PG_OPTS adds server settings ("-c shared_buffers=512MB"), PG_SQL runs
# after `mkoba migrate` on each fresh database (say, dropping an index to see what it
# costs), PG_AFTER runs on it when its bench ends (say, reading pg_stat_statements or
# pg_stat_user_tables), METRICS_OUT=file saves the first node's /metrics when its bench ends.
# Needs the PostgreSQL server binaries (Debian's `postgresql` package); as root, the server
# runs as the `postgres` user. Not part of the test command (release build, minutes).
set -euo pipefail
cd "$(dirname "$0")/.."

counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1 2)
read -r -a bench_args <<< "${BENCH_ARGS:--n 20000 -c 64}"

bindir="${MKOBA_PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}"
[ -x "$bindir/initdb" ] || { echo "no PostgreSQL server binaries (apt-get install postgresql)" >&2; exit 1; }

if [ -n "${MKOBA_BIN:-}" ]; then
    mkoba="$MKOBA_BIN"
else
    cargo build --release -q -p mkoba
    mkoba="$PWD/target/release/mkoba"
fi
# Builds from before several nodes have no --node-id.
"$mkoba" serve --help | grep -q -- --node-id && named=1 || named=0

work="$(mktemp -d /tmp/mkoba-bench-nodes.XXXXXX)"
as_pg=()
if [ "$(id -u)" = 0 ]; then
    chown postgres: "$work" 2>/dev/null || chown nobody: "$work"
    as_pg=(runuser -u "$(stat -c %U "$work")" --)
fi
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    "${as_pg[@]}" "$bindir/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

# CPU time (clock ticks) used so far by the PostgreSQL server's processes alive now.
pg_cpu_ticks() {
    local pm total=0 pid
    pm="$(head -n1 "$work/pg/postmaster.pid")"
    for pid in "$pm" $(pgrep -P "$pm"); do
        total=$(( total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0) ))
    done
    echo "$total"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

port="$(free_port)"
"${as_pg[@]}" "$bindir/initdb" -D "$work/pg" -U mkoba --auth=trust -E UTF8 --locale=C >/dev/null
"${as_pg[@]}" "$bindir/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $work -c max_connections=200 ${PG_OPTS:-}" start >/dev/null
echo "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" \
     "(synchronous_commit=$("$bindir/psql" -h 127.0.0.1 -p "$port" -U mkoba -d postgres -Atc 'SHOW synchronous_commit'))"

for n in "${counts[@]}"; do
    store=()
    db=""
    if [ "$n" = sqlite ]; then
        label="1 node, SQLite"
        n=1
    else
        label="$n node(s), PostgreSQL"
        db="bench_${n}_nodes_$RANDOM"
        "$bindir/psql" -h 127.0.0.1 -p "$port" -U mkoba -d postgres -qc "CREATE DATABASE $db" >/dev/null
        url="postgresql://mkoba@127.0.0.1:$port/$db"
        "$mkoba" migrate --database-url "$url" >/dev/null
        [ -z "${PG_SQL:-}" ] || "$bindir/psql" -h 127.0.0.1 -p "$port" -U mkoba -d "$db" -qc "$PG_SQL"
        store=(--database-url "$url")
    fi
    urls=()
    key=""
    for i in $(seq 1 "$n"); do
        listen="127.0.0.1:$(free_port)"
        named_flags=()
        [ "$named" = 1 ] && [ ${#store[@]} -gt 0 ] && named_flags=(--node-id "bench-$i")
        MKOBA_LOG=warn "$mkoba" serve "${store[@]}" --listen "$listen" \
            --data "$work/data-$n-$i-$RANDOM" "${named_flags[@]}" > "$work/node-$n-$i.log" 2>&1 &
        pids+=("$!")
        for _ in $(seq 1 200); do
            grep -q "collection" "$work/node-$n-$i.log" 2>/dev/null && break
            sleep 0.1
        done
        key="$(awk '$1 == "collection" { print $3; exit }' "$work/node-$n-$i.log")"
        [ -n "$key" ] || { cat "$work/node-$n-$i.log" >&2; exit 1; }
        urls+=("http://$listen")
    done
    echo
    echo "== $label =="
    [ -z "$db" ] || pg_before="$(pg_cpu_ticks)"
    out="$work/bench-$n.out"
    "$mkoba" bench --url "$(IFS=,; echo "${urls[*]}")" --subscription-key "$key" "${bench_args[@]}" | tee "$out"
    if [ -n "$db" ]; then
        # The PostgreSQL server's own CPU over the bench (all its processes), per
        # lifecycle: steadier than lifecycles/s on a shared machine.
        ticks=$(( $(pg_cpu_ticks) - pg_before ))
        done_n="$(awk '/lifecycles\/s \(e2e\)/ { gsub(/[(]/, "", $4); print $4; exit }' "$out")"
        awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v n="${done_n:-0}" 'BEGIN {
            printf "  PostgreSQL CPU        %.2f s", t / hz
            if (n > 0) printf "  (%.0f µs per lifecycle)", t / hz / n * 1e6
            print ""
        }'
    fi
    [ -z "${METRICS_OUT:-}" ] || curl -s "${urls[0]}/metrics" > "$METRICS_OUT"
    [ -z "${PG_AFTER:-}" ] || [ -z "${db:-}" ] ||
        "$bindir/psql" -h 127.0.0.1 -p "$port" -U mkoba -d "$db" -c "$PG_AFTER"
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
done
