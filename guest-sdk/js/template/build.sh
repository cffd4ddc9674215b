#!/usr/bin/env bash
# Build this JavaScript process into a component, in one command:
#
#     ./build.sh [-o OUT.wasm] [SOURCE.js]
#
# OUT.wasm defaults to FOLDER.wasm next to this script (FOLDER is this
# folder's name); SOURCE.js to app.js. Needs node and npm: the first build
# installs componentize-qjs (QuickJS), at the version pinned in the SDK's
# package-lock.json, into the SDK's node_modules, unless it is on PATH.
#
# The SDK and the WIT contract are found as locate-sdk.sh says (its
# environment variables WASMPROC_SDK and WASMPROC_WIT, else ./sdk and
# ./wit, else the wasmproc checkout this template sits in). SOURCE.js imports
# the SDK as './sdk/wasmproc.js': the build bundles a staging copy of the
# source's folder (its .js, .mjs and .json files) with the SDK's
# wasmproc.js in sdk/, so that import resolves wherever the SDK lives.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# locate-sdk.sh is beside this script (in a project, or this template in a
# checkout), else beside the SDK that WASMPROC_SDK names (a copied template).
source "$here/locate-sdk.sh" 2>/dev/null ||
    source "${WASMPROC_SDK:?is not set and no locate-sdk.sh is here: set it to the guest-sdk/js folder of a wasmproc checkout, and WASMPROC_WIT to its wit/ folder}/../locate-sdk.sh"

one_source_arguments "js mjs" app.js "$@"

locate_sdk js componentize.sh

if [[ ! -x "$sdk/node_modules/.bin/componentize-qjs" ]] && ! command -v componentize-qjs >/dev/null; then
    command -v npm >/dev/null || {
        echo "$0: npm not found; install node and npm, or put componentize-qjs on PATH" >&2
        exit 1
    }
    # Not `npm ci`: it rejects the lock because three optional platform
    # bindings that componentize-qjs lists were never published.
    (cd "$sdk" && npm install --no-save --no-audit --no-fund --loglevel=error)
fi
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
source_dir="$(cd "$(dirname "$source")" && pwd)"
(cd "$source_dir" && find . \( -path ./node_modules -o -path ./sdk -o -path ./target \) -prune -o \
    -type f \( -name '*.js' -o -name '*.mjs' -o -name '*.json' \) -print) |
    while IFS= read -r file; do
        mkdir -p "$stage/$(dirname "$file")"
        cp "$source_dir/$file" "$stage/$file"
    done
mkdir -p "$stage/sdk"
cp "$sdk/wasmproc.js" "$stage/sdk/wasmproc.js"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
WASMPROC_JS_MODULE_ROOT="$stage" "$sdk/componentize.sh" "$stage/$(basename "$source")" "$out"
echo "built $out"
