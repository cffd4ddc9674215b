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
source "$here/locate-sdk.sh"

one_source_arguments "py" app.py "$@"

locate_sdk python componentize.sh

source_dir="$(cd "$(dirname "$source")" && pwd)"
module="$(basename "$source" .py)"
"$sdk/componentize.sh" "$source_dir" "$out" "$module"
echo "built $out"
