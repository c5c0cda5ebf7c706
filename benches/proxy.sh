#!/usr/bin/env bash
# `omniscope proxy` against going direct (issue 18, Performance): wrk at 64 connections on loopback
# against `simulate --scenario bench`, straight to the simulator and through the proxy, in
# alternation (direct, proxied, direct, proxied…) so each ratio compares neighbouring minutes of a
# shared machine; then the proxy's RSS sampled every 10 s over one longer proxied run.
# Usage: benches/proxy.sh [seconds per run] [rounds] [seconds of the RSS run]
#        (default 10 s, 2 rounds, 60 s; PORT and PROXY_PORT to move them; LOG=1 keeps the event log)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN="${1:-10}"
ROUNDS="${2:-2}"
RSS_RUN="${3:-60}"
PORT="${PORT:-18787}"
PROXY_PORT="${PROXY_PORT:-18899}"
# BIN: a binary already built (the script then builds nothing).
BIN="${BIN:-}"
SCRATCH=$(mktemp -d)
DIRECT="http://127.0.0.1:${PORT}/v1/scrape"
PROXIED="http://127.0.0.1:${PROXY_PORT}/omniscrape/v1/scrape"

if [ -z "$BIN" ]; then
    cargo build --release --quiet
    BIN=target/release/omniscope
fi
"$BIN" simulate --scenario bench --listen "127.0.0.1:${PORT}" >/dev/null &
SIM=$!
printf '[providers.omniscrape]\nendpoint = "http://127.0.0.1:%s"\n' "$PORT" >"$SCRATCH/config.toml"
LOG_ARGS=(--no-log)
[ "${LOG:-0}" = 1 ] && LOG_ARGS=(--log "$SCRATCH/proxy.ndjson")
"$BIN" proxy --listen "127.0.0.1:${PROXY_PORT}" --config "$SCRATCH/config.toml" "${LOG_ARGS[@]}" \
    >/dev/null 2>"$SCRATCH/proxy.stderr" &
PROXY=$!
trap 'kill $SIM $PROXY 2>/dev/null || true; rm -rf "$SCRATCH"' EXIT
for url in "$DIRECT" "$PROXIED"; do
    for _ in $(seq 50); do
        curl -fs -o /dev/null -X POST -H 'X-API-Key: sk_test_bench' -d '{"url":"https://example.com/"}' "$url" && break
        sleep 0.1
    done
done
kill -0 "$SIM" "$PROXY" 2>/dev/null || { echo "the simulator or the proxy did not start (ports taken? set PORT, PROXY_PORT)" >&2; exit 1; }

# load URL SECONDS: "requests/s p50_ms p99_ms" from wrk's --latency table.
load() {
    wrk -t2 -c64 -d"$2s" --latency -s benches/wrk-scrape.lua "$1" | awk '
        /^ +50%/ {p50 = $2} /^ +99%/ {p99 = $2} /^Requests\/sec/ {rps = $2}
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        END {printf "%.0f %.3f %.3f\n", rps, ms(p50), ms(p99)}'
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "round  direct req/s p50 p99 | proxied req/s p50 p99 | ratio  added p50 (ms)  added p99 (ms)"
for round in $(seq "$ROUNDS"); do
    read -r d_rps d_p50 d_p99 < <(load "$DIRECT" "$SECONDS_RUN")
    read -r p_rps p_p50 p_p99 < <(load "$PROXIED" "$SECONDS_RUN")
    python3 -c "print(f'$round      $d_rps $d_p50 $d_p99 | $p_rps $p_p50 $p_p99 | {$p_rps / $d_rps:.2f}  {$p_p50 - $d_p50:+.3f}  {$p_p99 - $d_p99:+.3f}')"
done

echo "proxy RSS over a ${RSS_RUN} s proxied run (KiB, every 10 s):"
wrk -t2 -c64 -d"${RSS_RUN}s" -s benches/wrk-scrape.lua "$PROXIED" >/dev/null &
WRK=$!
samples=()
for at in $(seq 0 10 "$RSS_RUN"); do
    samples+=("$(awk '/VmRSS/ {print $2}' "/proc/$PROXY/status")")
    if [ "$at" -lt "$RSS_RUN" ]; then sleep 10; fi
done
wait "$WRK" || true
echo "${samples[*]}"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
