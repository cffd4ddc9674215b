#!/usr/bin/env bash
# Build hello-world-py.wasm into polyglot/out/ (or $WASMPROC_POLYGLOT_DIR).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
out="${WASMPROC_POLYGLOT_DIR:-$root/polyglot/out}"
mkdir -p "$out"
"$root/guest-sdk/python/componentize.sh" "$here" "$out/hello-world-py.wasm"
echo "built $out/hello-world-py.wasm"
