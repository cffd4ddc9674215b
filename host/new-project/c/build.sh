#!/usr/bin/env bash
# Build this process into a component, in one command: ./build.sh [OUT.wasm]
# (default: {{name}}.wasm next to this script). Needs clang, lld,
# wasi-libc, wit-bindgen-cli, wasm-tools and cargo (see sdk/wasmproc-cc.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/{{name}}.wasm}"
export WASMPROC_WIT="$here/wit"
"$here/sdk/wasmproc-cc.sh" -o "$out" "$here/process.c"
echo "built $out"
