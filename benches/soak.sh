#!/usr/bin/env bash
# Compressed-time soak (issue 19, item 6): a long load run, shortened. omniscope runs
# `run --every 0s --concurrency 64 --rate unlimited` against the simulator's `bench` scenario (the
# highest rate this machine gives) for SOAK_S seconds (default 3600), with the event log on (the
# default: the compressed, rotating session log under the data dir) or off (SOAK_LOG=off). Every
# INTERVAL_S seconds (default SOAK_S/6) it prints the run's RSS, its attempts so far (from
# /metrics), the log's bytes on disk per attempt, and how long `replay --headless` takes over the
# log written so far (a folder of parts, read as one session). The replay shares the 2 cores with
# the run while it lasts: the attempts/s between two lines dip then, as the figures say.
# Usage: benches/soak.sh   (SOAK_S=60 for a minute; INTERVAL_S; PORT, METRICS_PORT to move them)
# Memory target (README "Performance"): RSS at 10 min ≤ 1.1× RSS at 1 min: SOAK_S=600 INTERVAL_S=60.
set -euo pipefail
cd "$(dirname "$0")/.."
SOAK_S="${SOAK_S:-3600}"
INTERVAL_S="${INTERVAL_S:-$(( SOAK_S / 6 > 0 ? SOAK_S / 6 : 1 ))}"
PORT="${PORT:-18788}"
METRICS_PORT="${METRICS_PORT:-18789}"
BASE="http://127.0.0.1:${PORT}"
BIN=target/release/omniscope
SCRATCH=$(mktemp -d)

cargo build --release --quiet
# shellcheck source=benches/support/bench_simulator.sh
source benches/support/bench_simulator.sh
SIM= RUN=
trap 'kill ${SIM:-} ${RUN:-} 2>/dev/null || true; rm -rf "$SCRATCH"' EXIT
start_bench_simulator

export BENCH_KEY=sk_test_bench OMNISCOPE_DATA_DIR="$SCRATCH"
LOG_FLAG=()
[ "${SOAK_LOG:-on}" = off ] && LOG_FLAG=(--no-log)
"$BIN" run --provider omniscrape --endpoint "$BASE" --api-key-env BENCH_KEY \
    --target https://example.com/ --every 0s --concurrency 64 --rate unlimited \
    --duration "${SOAK_S}s" --metrics-addr "127.0.0.1:${METRICS_PORT}" \
    --report "$SCRATCH/report.json" "${LOG_FLAG[@]}" >/dev/null 2>&1 &
RUN=$!

attempts() {
    curl -fs "http://127.0.0.1:${METRICS_PORT}/metrics" 2>/dev/null |
        awk '/^omniscope_attempts_total\{/ {sum += $NF} END {printf "%d", sum}'
}

echo "== soak: ${SOAK_S}s, log ${SOAK_LOG:-on}, every ${INTERVAL_S}s; load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%8s %10s %12s %10s %12s %10s %s\n' elapsed rss_kib attempts att/s log_bytes B/attempt replay_s
started=$(date +%s)
last_attempts=0
last_at=$started
while kill -0 "$RUN" 2>/dev/null; do
    sleep "$INTERVAL_S"
    kill -0 "$RUN" 2>/dev/null || break
    now=$(date +%s)
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$RUN/status" 2>/dev/null || echo 0)
    count=$(attempts)
    rate=$(( (count - last_attempts) / (now - last_at > 0 ? now - last_at : 1) ))
    last_attempts=$count last_at=$now
    bytes=0 per=- replay=-
    if [ -d "$SCRATCH/logs" ]; then
        bytes=$(du -sb "$SCRATCH/logs" | cut -f1)
        [ "$count" -gt 0 ] && per=$(python3 -c "print(round($bytes / $count, 1))")
        /usr/bin/time -f '%e' -o "$SCRATCH/replay_time" "$BIN" replay --headless "$SCRATCH/logs" \
            >/dev/null 2>&1 || true
        replay=$(tail -1 "$SCRATCH/replay_time")
    fi
    printf '%8s %10s %12s %10s %12s %10s %s\n' "$((now - started))" "$rss" "$count" "$rate" "$bytes" "$per" "$replay"
done
wait "$RUN" || true
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
