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
# locate-sdk.sh is beside this script (in a project, or this template in a
# checkout), else beside the SDK that WASMPROC_SDK names (a copied template).
source "$here/locate-sdk.sh" 2>/dev/null ||
    source "${WASMPROC_SDK:?is not set and no locate-sdk.sh is here: set it to the guest-sdk/python folder of a wasmproc checkout, and WASMPROC_WIT to its wit/ folder}/../locate-sdk.sh"

one_source_arguments "py" app.py "$@"

locate_sdk python componentize.sh

source_dir="$(cd "$(dirname "$source")" && pwd)"
module="$(basename "$source" .py)"
"$sdk/componentize.sh" "$source_dir" "$out" "$module"
echo "built $out"
