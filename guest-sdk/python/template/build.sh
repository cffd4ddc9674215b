#!/usr/bin/env bash
# Build this Python process into a component, in one command:
#
#     ./build.sh [-o OUT.wasm] [SOURCE.py]
#
# OUT.wasm defaults to FOLDER.wasm next to this script (FOLDER is this
# folder's name); SOURCE.py to app.py. Needs componentize-py
# (pip install componentize-py==0.25.1).
#
# The SDK and the WIT contract are found as locate-sdk.sh says (its
# environment variables WASMPROC_SDK and WASMPROC_WIT, else ./sdk and
# ./wit, else the wasmproc checkout this template sits in).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Beside this script (in a project, or this template in a checkout), else
# beside the SDK that WASMPROC_SDK names (a copy of this template).
shared="$here/locate-sdk.sh"
[[ -f "$shared" ]] || shared="${WASMPROC_SDK:-$here}/../locate-sdk.sh"
[[ -f "$shared" ]] || {
    echo "$0: no locate-sdk.sh; set WASMPROC_SDK to the guest-sdk/python folder of a wasmproc checkout" >&2
    echo "and WASMPROC_WIT to its wit/ folder, or create the project with 'wasmproc new --lang python NAME'." >&2
    exit 1
}
source "$shared"

one_source_arguments "py" app.py "$@"

locate_sdk python componentize.sh

source_dir="$(cd "$(dirname "$source")" && pwd)"
module="$(basename "$source" .py)"
"$sdk/componentize.sh" "$source_dir" "$out" "$module"
echo "built $out"
