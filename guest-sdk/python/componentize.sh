#!/usr/bin/env bash
# Build a wasmproc process component from a Python app, in one command:
#
#     guest-sdk/python/componentize.sh APP_DIR OUT.wasm [MODULE]
#
# APP_DIR holds MODULE.py (default: app.py), which defines
# `WitWorld = wasmproc.export(MyProcess)`; this SDK's wasmproc.py and APP_DIR
# are on the module path. Needs componentize-py (pip install
# componentize-py==0.25.1, or polyglot/install-toolchains.sh).
# Environment: WASMPROC_WIT (default: the repository's wit/).
set -euo pipefail

sdk="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
wit="${WASMPROC_WIT:-$sdk/../../wit}"
if [[ $# -lt 2 ]]; then
    echo "usage: $0 APP_DIR OUT.wasm [MODULE]" >&2
    exit 2
fi
app_dir="$1"
out="$2"
module="${3:-app}"
command -v componentize-py >/dev/null || {
    echo "$0: componentize-py not found; run polyglot/install-toolchains.sh" >&2
    exit 1
}
mkdir -p "$(dirname "$out")"
# Keep the source folders free of bytecode caches.
export PYTHONDONTWRITEBYTECODE=1
componentize-py -d "$wit" -w process componentize "$module" \
    -p "$app_dir" -p "$sdk" -o "$out"
