#!/usr/bin/env bash
# Build geojson-summary-js.wasm into polyglot/out/ (or $WASMPROC_POLYGLOT_DIR).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/../../lib.sh"
polyglot_build js geojson-summary-js "$here/app.js"
