#!/usr/bin/env bash
# End-to-end benchmarks (issue 7, items 4-5): omniscope's attempts/s against the simulator's `bench`
# scenario compared with plain HTTP load tools on the same route, and peak RSS of a 3 s vs a 30 s
# run. Every tool found is measured: oha (`cargo install oha`) and wrk (`apt-get install wrk`).
# Besides requests/s, each client's own CPU time per request is printed (perf stat task-clock, or
# /usr/bin/time): on a shared 2-core machine it is the steadier figure, and it says where the
# difference lies, since client and simulator share the cores.
# Usage: benches/e2e.sh [seconds]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN="${1:-10}"
PORT="${PORT:-18787}"
BASE="http://127.0.0.1:${PORT}"
BIN=target/release/omniscope
SCRATCH=$(mktemp -d)

cargo build --release --quiet
cargo build --release --quiet --example reqwest_floor
"$BIN" simulate --scenario bench --listen "127.0.0.1:${PORT}" >/dev/null &
SIM=$!
trap 'kill $SIM 2>/dev/null || true; rm -rf "$SCRATCH"' EXIT
for _ in $(seq 50); do
    curl -fs -o /dev/null -X POST -H 'X-API-Key: k' -d '{"url":"https://example.com/"}' "$BASE/v1/scrape" && break
    sleep 0.1
done
# Another server on the port would answer the check above and skew every figure.
kill -0 "$SIM" 2>/dev/null || { echo "the simulator did not start (port ${PORT} taken? set PORT)" >&2; exit 1; }

export BENCH_KEY=sk_test_bench
# The runs keep their event logs (the product's default) in the scratch dir.
export OMNISCOPE_DATA_DIR="$SCRATCH"

# cpu_ms COMMAND...: run it, print its stdout, and leave its CPU time (ms) in $SCRATCH/cpu_ms.
cpu_ms() {
    if perf stat -e task-clock -x, -o "$SCRATCH/perf" true 2>/dev/null; then
        perf stat -e task-clock -x, -o "$SCRATCH/perf" "$@"
        awk -F, '/task-clock/ {print int($1)}' "$SCRATCH/perf" >"$SCRATCH/cpu_ms"
    else
        /usr/bin/time -f '%U %S' -o "$SCRATCH/time" "$@"
        awk '{print int(($1 + $2) * 1000)}' "$SCRATCH/time" >"$SCRATCH/cpu_ms"
    fi
}

# omniscope MODE: one load run (MODE "log" = the default event log, "nolog" = --no-log).
omniscope() {
    local extra=() report="$SCRATCH/report-$1.json"
    [ "$1" = nolog ] && extra=(--no-log)
    cpu_ms "$BIN" run --provider omniscrape --endpoint "$BASE" --api-key-env BENCH_KEY \
        --target https://example.com/ --every 0s --concurrency 64 --rate unlimited \
        --duration "${SECONDS_RUN}s" --report "$report" "${extra[@]}" >/dev/null 2>&1
    python3 - "$report" "$(cat "$SCRATCH/cpu_ms")" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
attempts = report["providers"][0]["attempts"]
print(round(attempts / report["duration_s"]), round(int(sys.argv[2]) * 1000 / attempts, 1))
EOF
}

echo "== omniscope run --every 0s --concurrency 64 --rate unlimited --duration ${SECONDS_RUN}s"
read -r OMNI_RPS OMNI_CPU < <(omniscope log)
echo "omniscope (event log on, the default): ${OMNI_RPS} attempts/s, ${OMNI_CPU} µs CPU per attempt"
read -r NOLOG_RPS NOLOG_CPU < <(omniscope nolog)
echo "omniscope --no-log: ${NOLOG_RPS} attempts/s, ${NOLOG_CPU} µs CPU per attempt"

# per_request RPS: the last client's CPU µs per request.
per_request() { python3 -c "print(round($(cat "$SCRATCH/cpu_ms") * 1000 / ($1 * ${SECONDS_RUN}), 1))"; }
ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }

# The reqwest floor: the same client settings sending the same request in a loop and counting
# status codes, nothing else (benches/reqwest_floor.rs). What omniscope spends above it is its own.
echo "== reqwest floor: 64 tasks, one thread, send + read + count, ${SECONDS_RUN}s"
cpu_ms target/release/examples/reqwest_floor "$BASE" "$SECONDS_RUN" >"$SCRATCH/floor.txt"
read -r FLOOR_REQUESTS _ FLOOR_ELAPSED <"$SCRATCH/floor.txt"
FLOOR_RPS=$(python3 -c "print(round($FLOOR_REQUESTS / $FLOOR_ELAPSED))")
echo "reqwest floor: ${FLOOR_RPS} requests/s, $(per_request "$FLOOR_RPS") µs CPU per request"
echo "ratio omniscope/floor: $(ratio "$OMNI_RPS" "$FLOOR_RPS") (--no-log: $(ratio "$NOLOG_RPS" "$FLOOR_RPS"))"

if command -v oha >/dev/null 2>&1; then
    echo "== oha, same route, 64 connections, ${SECONDS_RUN}s"
    cpu_ms oha -z "${SECONDS_RUN}s" -c 64 --no-tui -m POST -H 'X-API-Key: sk_test_bench' \
        -H 'Content-Type: application/json' -d '{"url":"https://example.com/"}' \
        "$BASE/v1/scrape" >"$SCRATCH/oha.txt"
    OHA_RPS=$(awk '/Requests\/sec/ {print int($2)}' "$SCRATCH/oha.txt")
    echo "oha: ${OHA_RPS} requests/s, $(per_request "$OHA_RPS") µs CPU per request"
    echo "ratio omniscope/oha: $(ratio "$OMNI_RPS" "$OHA_RPS") (--no-log: $(ratio "$NOLOG_RPS" "$OHA_RPS"))"
    echo "ratio reqwest floor/oha: $(ratio "$FLOOR_RPS" "$OHA_RPS")"
fi
if command -v wrk >/dev/null 2>&1; then
    echo "== wrk, same route, 2 threads, 64 connections, ${SECONDS_RUN}s"
    cpu_ms wrk -t2 -c64 -d"${SECONDS_RUN}s" -s benches/wrk-scrape.lua "$BASE/v1/scrape" >"$SCRATCH/wrk.txt"
    WRK_RPS=$(awk '/Requests\/sec/ {print int($2)}' "$SCRATCH/wrk.txt")
    echo "wrk: ${WRK_RPS} requests/s, $(per_request "$WRK_RPS") µs CPU per request"
    echo "ratio omniscope/wrk: $(ratio "$OMNI_RPS" "$WRK_RPS") (--no-log: $(ratio "$NOLOG_RPS" "$WRK_RPS"))"
fi

echo "== memory: peak RSS of a 3 s run vs a 30 s run"
rss() {
    /usr/bin/time -f '%M' -o "$SCRATCH/rss" "$BIN" run --provider omniscrape --endpoint "$BASE" \
        --api-key-env BENCH_KEY --target https://example.com/ --every 0s --concurrency 64 \
        --rate unlimited --duration "$1" >/dev/null 2>&1 || true
    tail -1 "$SCRATCH/rss"
}
RSS3=$(rss 3s)
RSS30=$(rss 30s)
echo "peak RSS 3 s: ${RSS3} KiB, 30 s: ${RSS30} KiB"
echo "ratio 30s/3s: $(ratio "$RSS30" "$RSS3")"
