#!/usr/bin/env bash
# Build raster-stats-c.wasm into polyglot/out/ (or $WASMPROC_POLYGLOT_DIR).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
out="${WASMPROC_POLYGLOT_DIR:-$root/polyglot/out}"
mkdir -p "$out"
"$root/guest-sdk/c/wasmproc-cc.sh" -o "$out/raster-stats-c.wasm" "$here/raster_stats.c"
echo "built $out/raster-stats-c.wasm"
