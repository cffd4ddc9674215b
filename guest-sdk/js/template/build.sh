#!/usr/bin/env bash
# Build this JavaScript process into a component: ./build.sh [OUT.wasm]
# Needs componentize-qjs (`npm install` in guest-sdk/js, or npm install
# componentize-qjs@0.4.5). When you copy this folder out of the repository,
# set WASMPROC_SDK to guest-sdk/js and WASMPROC_WIT to the wit/ folder.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
sdk="${WASMPROC_SDK:-$here/..}"
export WASMPROC_WIT="${WASMPROC_WIT:-$sdk/../../wit}"
"$sdk/componentize.sh" "$here/app.js" "${1:-$here/my-process.wasm}"
