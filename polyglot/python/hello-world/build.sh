#!/usr/bin/env bash
# Build hello-world-py.wasm into polyglot/out/ (or $WASMPROC_POLYGLOT_DIR).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/../../lib.sh"
polyglot_build python hello-world-py "$here"
