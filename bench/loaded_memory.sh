#!/usr/bin/env bash
# Memory of loaded Python processes: the server's RSS (and its anonymous
# part) idle with the built-ins only, then after deploying hello-world-py
# and statistics-py over HTTP, then after a restart that loads them from
# its store (the artifact cache warm, so no compilation in the figures).
# One fresh release server on sled on 127.0.0.1 at a time; no jobs run.
#
#   cargo build --release -p wasmproc && polyglot/build-all.sh && bench/loaded_memory.sh
#   WASMPROC_BENCH_BINARY=/path/to/other/wasmproc bench/loaded_memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
binary="${WASMPROC_BENCH_BINARY:-target/release/wasmproc}"
components=(polyglot/out/hello-world-py.wasm polyglot/out/statistics-py.wasm)
for c in "${components[@]}"; do
  [ -f "$c" ] || { echo "$0: $c is missing: run polyglot/build-all.sh" >&2; exit 1; }
done
dir=$(mktemp -d)
token=bench-admin-token-0123456789
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pid=""
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT

start() {
  WASMPROC_ADMIN_TOKEN=$token RUST_LOG=warn "$binary" serve --bind "127.0.0.1:$port" \
    --data-dir "$dir/data" > "$dir/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$port/processes" > /dev/null && return
    sleep 0.1
  done
  echo "$0: the server did not start; its log:" >&2; cat "$dir/server.log" >&2; exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }
# Settled: a few seconds after the last request, as an operator's idle server.
rss() {
  sleep 3
  awk '/^VmRSS/ {r=$2} /^RssAnon/ {a=$2} END {printf "%.1f MiB (anonymous %.1f MiB)", r/1024, a/1024}' \
    "/proc/$pid/status"
}

start
echo "built-ins only:            $(rss)"
for c in "${components[@]}"; do
  # The first deploy compiles; measure with the artifact cache warm, below.
  status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/wasm' --data-binary "@$c" "http://127.0.0.1:$port/processes")
  [ "$status" = 201 ] || { echo "$0: deploying $c answered $status" >&2; exit 1; }
done
echo "after deploying both:      $(rss)"
stop
start
echo "restarted, both loaded:    $(rss)"
stop
# Again from a fresh store with the cache warm: deploys that load, not compile.
mv "$dir/data/artifacts" "$dir/artifacts" && rm -rf "$dir/data" && mkdir -p "$dir/data" \
  && mv "$dir/artifacts" "$dir/data/artifacts"
start
for c in "${components[@]}"; do
  curl -sf -o /dev/null -X POST -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/wasm' --data-binary "@$c" "http://127.0.0.1:$port/processes"
done
echo "deployed, artifacts cached: $(rss)"
stop
