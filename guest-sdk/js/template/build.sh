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
# The SDK is found as: $WASMPROC_SDK (the guest-sdk/js folder of a wasmproc
# checkout), else ./sdk (vendored by `wasmproc new`), else the folder above
# this one (this template inside the repository). The WIT contract:
# $WASMPROC_WIT, else ./wit, else the repository's wit/. SOURCE.js imports
# the SDK as './sdk/wasmproc.js': the build bundles a staging copy of the
# source's folder (its .js, .mjs and .json files) with the SDK's
# wasmproc.js in sdk/, so that import resolves wherever the SDK lives.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
lang=js
marker=componentize.sh

out="" source=""
while (($#)); do
    case "$1" in
        -o) out="${2:?-o needs a file name}"; shift 2 ;;
        *.wasm) out="$1"; shift ;;
        *.js | *.mjs) source="$1"; shift ;;
        *) echo "$0: unknown argument '$1'; usage: $0 [-o OUT.wasm] [SOURCE.js]" >&2; exit 2 ;;
    esac
done
out="${out:-$here/$(basename "$here").wasm}"
source="${source:-$here/app.js}"
[[ -f "$source" ]] || { echo "$0: no source file '$source'" >&2; exit 1; }

if [[ -n "${WASMPROC_SDK:-}" ]]; then sdk="$WASMPROC_SDK"
elif [[ -f "$here/sdk/$marker" ]]; then sdk="$here/sdk"
else sdk="$here/.."; fi
if [[ ! -f "$sdk/$marker" ]]; then
    echo "$0: the wasmproc $lang SDK is not at '$sdk' (no $marker there)." >&2
    echo "Set WASMPROC_SDK to the guest-sdk/$lang folder of a wasmproc checkout and WASMPROC_WIT" >&2
    echo "to its wit/ folder, or create the project with 'wasmproc new --lang $lang NAME'," >&2
    echo "which copies both into it." >&2
    exit 1
fi
if [[ -n "${WASMPROC_WIT:-}" ]]; then wit="$WASMPROC_WIT"
elif [[ -f "$here/wit/process.wit" ]]; then wit="$here/wit"
else wit="$sdk/../../wit"; fi
if [[ ! -f "$wit/process.wit" ]]; then
    echo "$0: no WIT contract at '$wit' (no process.wit there); set WASMPROC_WIT to the wit/ folder of a wasmproc checkout" >&2
    exit 1
fi
export WASMPROC_WIT="$wit"

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
