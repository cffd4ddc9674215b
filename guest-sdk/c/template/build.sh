#!/usr/bin/env bash
# Build this C process into a component, in one command:
#
#     ./build.sh [-o OUT.wasm] [SOURCE.c ...] [COMPILER FLAGS ...]
#
# OUT.wasm defaults to FOLDER.wasm next to this script (FOLDER is this
# folder's name); the sources to every *.c file of this folder. Every other
# argument goes to clang after the SDK's own flags (-O2 -std=gnu11 -Wall
# -Wextra -Werror), so it wins: e.g. ./build.sh -O3 -DNDEBUG -std=c17
# -Wno-error. gnu11 is C11 with the POSIX/BSD names of <math.h> (M_PI) and
# <string.h> (strdup). Needs clang, lld, wasi-libc, wit-bindgen-cli,
# wasm-tools and cargo (see the SDK's wasmproc-cc.sh).
#
# The SDK and the WIT contract are found as locate-sdk.sh says (its
# environment variables WASMPROC_SDK and WASMPROC_WIT, else ./sdk and
# ./wit, else the wasmproc checkout this template sits in).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# locate-sdk.sh is beside this script (in a project, or this template in a
# checkout), else beside the SDK that WASMPROC_SDK names (a copied template).
source "$here/locate-sdk.sh" 2>/dev/null ||
    source "${WASMPROC_SDK:?is not set and no locate-sdk.sh is here: set it to the guest-sdk/c folder of a wasmproc checkout, and WASMPROC_WIT to its wit/ folder}/../locate-sdk.sh"

out="" sources=() flags=()
while (($#)); do
    case "$1" in
        -o) out="${2:?-o needs a file name}"; shift 2 ;;
        *.wasm) out="$1"; shift ;;
        *.c) sources+=("$1"); shift ;;
        *) flags+=("$1"); shift ;;
    esac
done
out="${out:-$here/$(basename "$here").wasm}"
if [[ ${#sources[@]} -eq 0 ]]; then
    shopt -s nullglob
    sources=("$here"/*.c)
    shopt -u nullglob
fi
[[ ${#sources[@]} -gt 0 ]] || { echo "$0: no .c file in $here; name one" >&2; exit 1; }

locate_sdk c wasmproc-cc.sh

"$sdk/wasmproc-cc.sh" -o "$out" "${sources[@]}" ${flags[@]+"${flags[@]}"}
echo "built $out"
