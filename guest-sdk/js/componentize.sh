#!/usr/bin/env bash
# Build a wasmproc process component from a JavaScript module, in one command:
#
#     guest-sdk/js/componentize.sh APP.js OUT.wasm
#
# APP.js exports `describe` and `execute` (see wasmproc.js). Uses
# componentize-qjs (QuickJS) from guest-sdk/js/node_modules (`npm install` there,
# or polyglot/install-toolchains.sh) or from PATH.
# Environment: WASMPROC_WIT (default: the repository's wit/),
# WASMPROC_JS_MODULE_ROOT (default: the deepest folder holding both APP.js
# and this SDK; relative imports must stay inside it).
set -euo pipefail

sdk="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
wit="${WASMPROC_WIT:-$sdk/../../wit}"
if [[ $# -ne 2 ]]; then
    echo "usage: $0 APP.js OUT.wasm" >&2
    exit 2
fi
app="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
out="$2"

qjs="$sdk/node_modules/.bin/componentize-qjs"
if [[ ! -x "$qjs" ]]; then
    qjs="$(command -v componentize-qjs)" || {
        echo "$0: componentize-qjs not found; run 'npm install' in $sdk or polyglot/install-toolchains.sh" >&2
        exit 1
    }
fi

root="${WASMPROC_JS_MODULE_ROOT:-}"
if [[ -z "$root" ]]; then
    root="$(dirname "$app")"
    while [[ "$sdk/" != "$root/"* && "$root" != "/" ]]; do root="$(dirname "$root")"; done
fi

mkdir -p "$(dirname "$out")"
# --sync: the component-model async ABI is not used by the host's world.
"$qjs" --wit "$wit" --world process --js "$app" --module-root "$root" --sync -o "$out" >/dev/null
