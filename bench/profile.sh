#!/usr/bin/env bash
# Profile wasmproc's sync path: serve hello-world on 127.0.0.1, drive it
# with wrk (concurrency 16) and sample every thread of the server with
# `perf record` (software cpu-clock event: hardware counters are not
# available in most VMs; DWARF call graphs, the release profile keeps line
# tables). Writes bench/results/profile-<time>/{summary.txt,perf-report.txt}.
# Usage: bench/profile.sh [SECONDS (default 10)] [CONCURRENCY (default 16)]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_SAMPLE=${1:-10}
CONC=${2:-16}
bench/setup.sh
if ! command -v perf >/dev/null; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq linux-perf >/dev/null
fi
OUT=bench/results/profile-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/wasmproc-profile-XXXXXX)
PORT=$(bench/.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
target/release/wasmproc serve --bind 127.0.0.1:$PORT --data-dir "$WORK/data" --config /dev/null \
    > "$WORK/server.log" 2>&1 &
SERVER=$!
cleanup() { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/" && break
    sleep 0.1
done
URL=http://127.0.0.1:$PORT/processes/hello-world/execution
export WRK_REPORT_LUA=$PWD/bench/wrk/report.lua
wrk -t2 -c"$CONC" -d2s -s bench/wrk/post.lua "$URL" >/dev/null   # warm-up
wrk -t2 -c"$CONC" -d$((SECONDS_TO_SAMPLE + 3))s -s bench/wrk/post.lua "$URL" > "$OUT/wrk.txt" &
WRK=$!
sleep 1
perf record -q -e cpu-clock -F 499 --call-graph dwarf,16384 -p "$SERVER" -o "$WORK/perf.data" \
    -- sleep "$SECONDS_TO_SAMPLE" 2> "$OUT/perf-record.log"
wait "$WRK"
cat /proc/$SERVER/io > "$OUT/server-io.txt"
perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --stdio -g none --percent-limit 0.5 \
    2>/dev/null > "$OUT/perf-report.txt"
perf script -i "$WORK/perf.data" -F comm,tid,ip,sym,dso 2>/dev/null \
    | bench/.venv/bin/python bench/perf_summary.py > "$OUT/summary.txt"
grep WRKJSON "$OUT/wrk.txt" >> "$OUT/summary.txt" || true
cat "$OUT/summary.txt"
echo "profile in $OUT" >&2
