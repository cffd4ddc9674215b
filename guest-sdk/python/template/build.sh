#!/usr/bin/env bash
# Build this Python process into a component, in one command:
#
#     ./build.sh [-o OUT.wasm] [SOURCE.py]
#
# OUT.wasm defaults to FOLDER.wasm next to this script (FOLDER is this
# folder's name); SOURCE.py to app.py. Needs componentize-py
# (pip install componentize-py==0.25.1).
#
# The SDK is found as: $WASMPROC_SDK (the guest-sdk/python folder of a
# wasmproc checkout), else ./sdk (vendored by `wasmproc new`), else the
# folder above this one (this template inside the repository). The WIT
# contract: $WASMPROC_WIT, else ./wit, else the repository's wit/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
lang=python
marker=componentize.sh

out="" source=""
while (($#)); do
    case "$1" in
        -o) out="${2:?-o needs a file name}"; shift 2 ;;
        *.wasm) out="$1"; shift ;;
        *.py) source="$1"; shift ;;
        *) echo "$0: unknown argument '$1'; usage: $0 [-o OUT.wasm] [SOURCE.py]" >&2; exit 2 ;;
    esac
done
out="${out:-$here/$(basename "$here").wasm}"
source="${source:-$here/app.py}"
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

source_dir="$(cd "$(dirname "$source")" && pwd)"
module="$(basename "$source" .py)"
"$sdk/componentize.sh" "$source_dir" "$out" "$module"
echo "built $out"
