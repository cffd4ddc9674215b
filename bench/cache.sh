#!/usr/bin/env bash
# Result cache: sync hello-world with `cache = true`, every request identical
# (hits after the first) against the same requests with
# `Cache-Control: no-cache` (each runs). wrk at concurrency 16 for 8 s per
# run, two rounds interleaved; requests/s, p99 and the server's CPU per
# request (from /proc). A fresh release server on sled with 2 workers on
# 127.0.0.1.
#
#   cargo build --release -p wasmproc && bench/cache.sh
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$dir/wasmproc.toml" <<TOML
bind = "127.0.0.1:$port"
data_dir = "$dir/data"
[execution]
max_concurrent_jobs = 2
[processes.hello-world]
cache = true
TOML
RUST_LOG=warn target/release/wasmproc serve --config "$dir/wasmproc.toml" > "$dir/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/processes/hello-world" > /dev/null && break
  sleep 0.1
done
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
for round in 1 2; do
  for mode in hit miss; do
    header=()
    [ "$mode" = miss ] && header=(-H "Cache-Control: no-cache")
    t0=$(ticks)
    out=$(WRK_REPORT_LUA=bench/wrk/report.lua wrk -t2 -c16 -d8s --timeout 30s -s bench/wrk/post.lua \
      "${header[@]}" "http://127.0.0.1:$port/processes/hello-world/execution" | grep WRKJSON)
    t1=$(ticks)
    python3 - "$mode" "$round" "$out" "$t0" "$t1" "$hz" <<'PY'
import json, sys
mode, rnd, out, t0, t1, hz = sys.argv[1:]
r = json.loads(out[8:])
rps = r["requests"] / (r["duration_us"] / 1e6)
cpu = (int(t1) - int(t0)) / int(hz) * 1000 / r["requests"]
print(json.dumps({"mode": mode, "round": int(rnd), "rps": round(rps), "p99_ms": round(r["p99_us"] / 1000, 2),
                  "cpu_ms_per_request": round(cpu, 3),
                  "errors": r["errors_status"] + r["errors_timeout"]}))
PY
  done
done
