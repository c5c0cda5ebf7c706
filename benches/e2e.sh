#!/usr/bin/env bash
# End-to-end benchmarks (issue 7, items 4-5): omniscope's attempts/s against the simulator's `bench`
# scenario compared with plain HTTP load tools on the same route, and peak RSS of a 3 s vs a 30 s
# run. Clients measured: omniscope with its event log (the default) and with `--no-log`; the
# reqwest floor (benches/reqwest_floor.rs: the same client settings sending the same request and
# counting status codes, nothing else); oha (`cargo install oha`) and wrk (`apt-get install wrk`)
# when installed.
# The clients run one after another, in ROUNDS rounds, and every ratio is taken within a round,
# then the median over rounds is printed: on a shared machine the background load moves from one
# minute to the next, and a ratio of two different minutes says little. Besides requests/s, each
# client's own CPU time per request is printed (perf stat task-clock, or /usr/bin/time): client and
# simulator share the 2 cores, so what a client spends per request decides how fast both can go.
# Usage: benches/e2e.sh [seconds per client] [rounds]   (default 10 s, 1 round; PORT to move it)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN="${1:-10}"
ROUNDS="${2:-1}"
PORT="${PORT:-18787}"
BASE="http://127.0.0.1:${PORT}"
BIN=target/release/omniscope
SCRATCH=$(mktemp -d)

cargo build --release --quiet
cargo build --release --quiet --example reqwest_floor
# shellcheck source=benches/support/bench_simulator.sh
source benches/support/bench_simulator.sh
SIM=
trap 'kill ${SIM:-} 2>/dev/null || true; rm -rf "$SCRATCH"' EXIT
start_bench_simulator

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

# per_request COUNT: µs of the last client's CPU per request.
per_request() { python3 -c "print(round($(cat "$SCRATCH/cpu_ms") * 1000 / $1, 1))"; }

# Each client prints "requests/s µs-CPU-per-request".
omniscope_log() { omniscope_run; }
omniscope_nolog() { omniscope_run --no-log; }
omniscope_run() {
    local report="$SCRATCH/report.json"
    cpu_ms "$BIN" run --provider omniscrape --endpoint "$BASE" --api-key-env BENCH_KEY \
        --target https://example.com/ --every 0s --concurrency 64 --rate unlimited \
        --duration "${SECONDS_RUN}s" --report "$report" "$@" >/dev/null 2>&1
    rm -rf "$SCRATCH/logs"
    read -r attempts rate < <(python3 -c "
import json
report = json.load(open('$report'))
attempts = report['providers'][0]['attempts']
print(attempts, round(attempts / report['duration_s']))")
    echo "$rate $(per_request "$attempts")"
}
reqwest_floor() {
    cpu_ms target/release/examples/reqwest_floor "$BASE" "$SECONDS_RUN" >"$SCRATCH/floor.txt"
    # Successes only, as omniscope's and the load tools' rates are of answered requests.
    read -r requests successes elapsed <"$SCRATCH/floor.txt"
    [ "$successes" = "$requests" ] || echo "reqwest floor: $((requests - successes)) of $requests failed" >&2
    echo "$(python3 -c "print(round($successes / $elapsed))") $(per_request "$successes")"
}
oha_load() {
    cpu_ms oha -z "${SECONDS_RUN}s" -c 64 --no-tui -m POST -H 'X-API-Key: sk_test_bench' \
        -H 'Content-Type: application/json' -d '{"url":"https://example.com/"}' \
        "$BASE/v1/scrape" >"$SCRATCH/oha.txt"
    local rate
    rate=$(awk '/Requests\/sec/ {print int($2)}' "$SCRATCH/oha.txt")
    echo "$rate $(per_request $((rate * SECONDS_RUN)))"
}
wrk_load() {
    cpu_ms wrk -t2 -c64 -d"${SECONDS_RUN}s" -s benches/wrk-scrape.lua "$BASE/v1/scrape" >"$SCRATCH/wrk.txt"
    local rate
    rate=$(awk '/Requests\/sec/ {print int($2)}' "$SCRATCH/wrk.txt")
    echo "$rate $(per_request $((rate * SECONDS_RUN)))"
}

CLIENTS=(omniscope_log omniscope_nolog reqwest_floor)
command -v oha >/dev/null 2>&1 && CLIENTS+=(oha_load)
command -v wrk >/dev/null 2>&1 && CLIENTS+=(wrk_load)

echo "== ${ROUNDS} round(s), ${SECONDS_RUN}s per client, 64 connections, same route; requests/s (µs CPU per request)"
echo "omniscope: run --every 0s --concurrency 64 --rate unlimited (event log on, the default; and --no-log)"
for round in $(seq "$ROUNDS"); do
    line="round ${round}:"
    for client in "${CLIENTS[@]}"; do
        read -r rate cpu < <("$client")
        echo "$client $rate $cpu" >>"$SCRATCH/results"
        line+=" ${client} ${rate} (${cpu})"
    done
    echo "$line"
done
python3 - "$SCRATCH/results" "$ROUNDS" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
rounds = int(sys.argv[2])
by = {}
for client, rate, cpu in rows:
    by.setdefault(client, []).append((float(rate), float(cpu)))
def ratios(a, b):
    return [x[0] / y[0] for x, y in zip(by[a], by[b])]
print("median over %d round(s): requests/s, µs CPU per request" % rounds)
for client, runs in by.items():
    print("  %-16s %8.0f  %6.1f" % (client, statistics.median(r for r, _ in runs),
                                   statistics.median(c for _, c in runs)))
for base in ("oha_load", "wrk_load", "reqwest_floor"):
    if base not in by:
        continue
    for client in ("omniscope_log", "omniscope_nolog", "reqwest_floor"):
        if client == base or (base == "wrk_load" and client == "reqwest_floor"):
            continue
        r = ratios(client, base)
        print("ratio %s/%s: median %.2f (rounds: %s)" % (client, base, statistics.median(r),
                                                     " ".join("%.2f" % x for x in r)))
EOF

echo "== memory: peak RSS of a 3 s run vs a 30 s run"
rss() {
    /usr/bin/time -f '%M' -o "$SCRATCH/rss" "$BIN" run --provider omniscrape --endpoint "$BASE" \
        --api-key-env BENCH_KEY --target https://example.com/ --every 0s --concurrency 64 \
        --rate unlimited --duration "$1" >/dev/null 2>&1 || true
    rm -rf "$SCRATCH/logs"
    tail -1 "$SCRATCH/rss"
}
RSS3=$(rss 3s)
RSS30=$(rss 30s)
echo "peak RSS 3 s: ${RSS3} KiB, 30 s: ${RSS30} KiB"
echo "ratio 30s/3s: $(python3 -c "print('%.2f' % ($RSS30 / $RSS3))")"
