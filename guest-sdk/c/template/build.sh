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
# The SDK is found as: $WASMPROC_SDK (the guest-sdk/c folder of a wasmproc
# checkout), else ./sdk (vendored by `wasmproc new`), else the folder above
# this one (this template inside the repository). The WIT contract:
# $WASMPROC_WIT, else ./wit, else the repository's wit/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
lang=c
marker=wasmproc-cc.sh

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

"$sdk/wasmproc-cc.sh" -o "$out" "${sources[@]}" ${flags[@]+"${flags[@]}"}
echo "built $out"
