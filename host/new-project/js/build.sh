#!/usr/bin/env bash
# Build this process into a component, in one command: ./build.sh [OUT.wasm]
# (default: {{name}}.wasm next to this script). Needs node and npm: the
# first build installs componentize-qjs (QuickJS), at the version pinned in
# sdk/package-lock.json, into sdk/node_modules, unless it is on PATH.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/{{name}}.wasm}"
if [[ ! -x "$here/sdk/node_modules/.bin/componentize-qjs" ]] && ! command -v componentize-qjs >/dev/null; then
    command -v npm >/dev/null || {
        echo "$0: npm not found; install node and npm, or put componentize-qjs on PATH" >&2
        exit 1
    }
    # Not `npm ci`: it rejects the lock because three optional platform
    # bindings that componentize-qjs lists were never published.
    (cd "$here/sdk" && npm install --no-save --no-audit --no-fund --loglevel=error)
fi
export WASMPROC_WIT="$here/wit"
"$here/sdk/componentize.sh" "$here/app.js" "$out"
echo "built $out"
