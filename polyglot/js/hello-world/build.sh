#!/usr/bin/env bash
# Build hello-world-js.wasm into polyglot/out/ (or $WASMPROC_POLYGLOT_DIR).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/../../lib.sh"
polyglot_build js hello-world-js "$here/app.js"
