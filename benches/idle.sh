#!/usr/bin/env bash
# Idle benchmark (issue 7, item 6): CPU of the dashboard probing once a second, over 60 s.
# `omniscope watch --provider omniscrape --target https://example.com/ --every 1s` against `omniscope simulate --scenario healthy`,
# drawn in a 200x60 tmux pane; CPU = utime + stime of the omniscope process from /proc/PID/stat.
# Needs tmux. Usage: benches/idle.sh [seconds]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN="${1:-60}"
PORT="${PORT:-18789}"
BIN="$PWD/target/release/omniscope"
SESSION="omniscope-idle-$$"
SCRATCH=$(mktemp -d)

cargo build --release --quiet
"$BIN" simulate --scenario healthy --listen "127.0.0.1:${PORT}" >/dev/null &
SIM=$!
trap 'tmux kill-session -t "$SESSION" 2>/dev/null || true; kill $SIM 2>/dev/null || true; rm -rf "$SCRATCH"' EXIT
sleep 1

tmux new-session -d -s "$SESSION" -x 200 -y 60 \
    "env OMNISCRAPE_API_KEY=sk_test_idle OMNISCOPE_DATA_DIR=$SCRATCH OMNISCOPE_CONFIG_DIR=$SCRATCH \
     $BIN watch --provider omniscrape --endpoint http://127.0.0.1:${PORT} --target https://example.com/ --every 1s"
PID=""
for _ in $(seq 50); do
    PID=$(pgrep -f "^$BIN watch .*127.0.0.1:${PORT}" | head -1 || true)
    [ -n "$PID" ] && break
    sleep 0.1
done
[ -n "$PID" ] || { echo "the dashboard did not start" >&2; exit 1; }
sleep 3 # past start-up: the first probes, the first frames

echo "measuring omniscope pid $PID: $(tr "\0" " " </proc/$PID/cmdline | cut -c1-60)"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
BEFORE=$(ticks "$PID")
sleep "$SECONDS_RUN"
AFTER=$(ticks "$PID")
python3 -c "
used = ($AFTER - $BEFORE) / $HZ
print('dashboard CPU over ${SECONDS_RUN} s: %.2f s = %.2f %% of a core' % (used, used * 100 / $SECONDS_RUN))"
tmux capture-pane -p -t "$SESSION" | head -3
