#!/usr/bin/env bash
# Build this process into a component, in one command: ./build.sh [OUT.wasm]
# (default: {{name}}.wasm next to this script). Needs componentize-py
# (pip install componentize-py==0.25.1).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/{{name}}.wasm}"
export WASMPROC_WIT="$here/wit"
"$here/sdk/componentize.sh" "$here" "$out" app
echo "built $out"
