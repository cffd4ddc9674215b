#!/usr/bin/env bash
# Build this C process into a component: ./build.sh [OUT.wasm]
# Needs clang, lld, wasi-libc, wit-bindgen-cli and wasm-tools (see
# polyglot/install-toolchains.sh). When you copy this folder out of the
# repository, set WASMPROC_SDK to guest-sdk/c and WASMPROC_WIT to wit/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
sdk="${WASMPROC_SDK:-$here/..}"
export WASMPROC_WIT="${WASMPROC_WIT:-$sdk/../../wit}"
"$sdk/wasmproc-cc.sh" -o "${1:-$here/my-process.wasm}" "$here/my_process.c"
