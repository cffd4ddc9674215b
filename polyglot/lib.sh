# Shared by the examples' build.sh scripts (polyglot/LANG/EXAMPLE/build.sh),
# which source it: not run on its own.
#
#     polyglot_build LANG NAME SOURCE
#
# builds SOURCE with the guest SDK of LANG (c: the .c file; js: the .js
# file; python: the folder holding app.py) into NAME.wasm in polyglot/out/,
# or in $WASMPROC_POLYGLOT_DIR when it is set, and says where.
polyglot_build() {
    local lang="$1" name="$2" source="$3"
    local root out
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    out="${WASMPROC_POLYGLOT_DIR:-$root/polyglot/out}"
    mkdir -p "$out"
    case "$lang" in
        c) "$root/guest-sdk/c/wasmproc-cc.sh" -o "$out/$name.wasm" "$source" ;;
        js | python) "$root/guest-sdk/$lang/componentize.sh" "$source" "$out/$name.wasm" ;;
        *) echo "polyglot_build: unknown language '$lang'" >&2; return 2 ;;
    esac
    echo "built $out/$name.wasm"
}
