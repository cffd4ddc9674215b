#!/usr/bin/env bash
# Build raster-stats-c.wasm into polyglot/out/ (or $WASMPROC_POLYGLOT_DIR).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/../../lib.sh"
polyglot_build c raster-stats-c "$here/raster_stats.c"
