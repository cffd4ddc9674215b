#!/usr/bin/env bash
# Build this Python process into a component: ./build.sh [OUT.wasm]
# Needs componentize-py (pip install componentize-py==0.25.1). When you copy
# this folder out of the repository, set WASMPROC_SDK to guest-sdk/python
# and WASMPROC_WIT to the wit/ folder.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
sdk="${WASMPROC_SDK:-$here/..}"
export WASMPROC_WIT="${WASMPROC_WIT:-$sdk/../../wit}"
"$sdk/componentize.sh" "$here" "${1:-$here/my-process.wasm}"
