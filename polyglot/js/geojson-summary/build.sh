#!/usr/bin/env bash
# Build geojson-summary-js.wasm into polyglot/out/ (or $WASMPROC_POLYGLOT_DIR).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
out="${WASMPROC_POLYGLOT_DIR:-$root/polyglot/out}"
mkdir -p "$out"
"$root/guest-sdk/js/componentize.sh" "$here/app.js" "$out/geojson-summary-js.wasm"
echo "built $out/geojson-summary-js.wasm"
