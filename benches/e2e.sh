#!/usr/bin/env bash
# End-to-end benchmarks (issue 7, items 4-6): omniscope's attempts/s against the simulator's `bench`
# scenario compared with a plain HTTP load tool on the same route, peak RSS of a 3 s vs a 30 s run,
# and the dashboard's idle CPU. Needs wrk (apt-get install wrk) or oha (cargo install oha).
# Usage: benches/e2e.sh [seconds]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN="${1:-10}"
PORT="${PORT:-18787}"
BASE="http://127.0.0.1:${PORT}"
BIN=target/release/omniscope

cargo build --release --quiet
"$BIN" simulate --scenario bench --listen "127.0.0.1:${PORT}" >/dev/null &
SIM=$!
trap 'kill $SIM 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -fs -o /dev/null -X POST -H 'X-API-Key: k' -d '{"url":"https://example.com/"}' "$BASE/v1/scrape" && break; sleep 0.1; done

export BENCH_KEY=sk_test_bench
# The runs keep their event logs (the product's default) in a scratch dir removed at the end.
OMNISCOPE_DATA_DIR=$(mktemp -d)
export OMNISCOPE_DATA_DIR
trap 'kill $SIM 2>/dev/null || true; rm -rf "$OMNISCOPE_DATA_DIR"' EXIT
probe() { # $1 = duration; prints the report path
    local report
    report=$(mktemp --suffix=.json)
    "$BIN" run --provider omniscrape --endpoint "$BASE" --api-key-env BENCH_KEY \
        --target https://example.com/ --every 0s --concurrency 64 --rate unlimited \
        --duration "$1" --report "$report" >/dev/null
    echo "$report"
}

echo "== omniscope run --every 0s --concurrency 64 --rate unlimited --duration ${SECONDS_RUN}s"
REPORT=$(probe "${SECONDS_RUN}s")
OMNI_RPS=$(python3 -c "import json,sys; r=json.load(open('$REPORT')); p=r['providers'][0]; print(round(p['attempts']/r['duration_s']))")
echo "omniscope: ${OMNI_RPS} attempts/s"

echo "== plain load tool, same route, 64 connections, ${SECONDS_RUN}s"
if command -v oha >/dev/null 2>&1; then
    TOOL_RPS=$(oha -z "${SECONDS_RUN}s" -c 64 --no-tui -m POST -H 'X-API-Key: sk_test_bench' \
        -H 'Content-Type: application/json' -d '{"url":"https://example.com/"}' "$BASE/v1/scrape" |
        awk '/Requests\/sec/ {print int($2)}')
    TOOL=oha
else
    TOOL_RPS=$(wrk -t2 -c64 -d"${SECONDS_RUN}s" -s benches/wrk-scrape.lua "$BASE/v1/scrape" |
        awk '/Requests\/sec/ {print int($2)}')
    TOOL=wrk
fi
echo "${TOOL}: ${TOOL_RPS} requests/s"
python3 -c "print('ratio omniscope/${TOOL}: %.2f' % (${OMNI_RPS}/${TOOL_RPS}))"

echo "== memory: peak RSS of a 3 s run vs a 30 s run"
rss() {
    /usr/bin/time -f '%M' "$BIN" run --provider omniscrape --endpoint "$BASE" --api-key-env BENCH_KEY \
        --target https://example.com/ --every 0s --concurrency 64 --rate unlimited --duration "$1" \
        >/dev/null 2>/tmp/omniscope-rss.$$ || true
    tail -1 /tmp/omniscope-rss.$$
}
RSS3=$(rss 3s)
RSS30=$(rss 30s)
echo "peak RSS 3 s: ${RSS3} KiB, 30 s: ${RSS30} KiB"
python3 -c "print('ratio 30s/3s: %.2f' % (${RSS30}/${RSS3}))"
