# Sourced by the benchmark scripts: `start_bench_simulator` starts `omniscope simulate --scenario
# bench` on $PORT (binary $BIN, URL $BASE), leaves its pid in $SIM, and waits until it answers.
# Another server already on the port would answer the check and skew every figure: that is an error.
start_bench_simulator() {
    "$BIN" simulate --scenario bench --listen "127.0.0.1:${PORT}" >/dev/null &
    SIM=$!
    for _ in $(seq 50); do
        curl -fs -o /dev/null -X POST -H 'X-API-Key: k' -d '{"url":"https://example.com/"}' \
            "$BASE/v1/scrape" && break
        sleep 0.1
    done
    kill -0 "$SIM" 2>/dev/null || { echo "the simulator did not start (port ${PORT} taken? set PORT)" >&2; exit 1; }
}
