# Sourced by the build.sh of a C, JavaScript or Python process (not run on
# its own): finds the wasmproc SDK of the language and the WIT contract, so
# that every language's build looks for them in the same places and says
# the same thing when they are missing.
#
# `locate_sdk LANG MARKER` needs `here` (the build script's folder); LANG
# is c, js or python (the guest-sdk/ folder's name) and MARKER a file that
# only that SDK has. It sets `sdk` and exports WASMPROC_WIT, which the
# SDK's scripts read, and exits with a message naming the variable to set
# when either is missing.
#
# The SDK is $WASMPROC_SDK, else ./sdk (vendored by `wasmproc new`), else
# the folder above the build script (the template inside a wasmproc
# checkout). The WIT contract is $WASMPROC_WIT, else ./wit, else the
# checkout's wit/ beside guest-sdk/.
#
# In a project made by `wasmproc new` this file is a copy; in a checkout,
# each template's locate-sdk.sh is a link to guest-sdk/locate-sdk.sh.

locate_sdk() {
    local lang="$1" marker="$2"
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
}

# `one_source_arguments EXTENSIONS DEFAULT "$@"` reads the arguments of a
# build that takes one source file and an output, `[-o OUT.wasm] [SOURCE]`
# in any order; SOURCE's extension is one of EXTENSIONS (space-separated).
# Sets `out` (default FOLDER.wasm beside the build script) and `source`
# (default DEFAULT beside it).
one_source_arguments() {
    local extensions="$1" default="$2"
    shift 2
    out="" source=""
    while (($#)); do
        case "$1" in
            -o) out="${2:?-o needs a file name}"; shift 2 ;;
            *.wasm) out="$1"; shift ;;
            *) if [[ " $extensions " == *" ${1##*.} "* ]]; then source="$1"; shift
               else
                   echo "$0: unknown argument '$1'; usage: $0 [-o OUT.wasm] [SOURCE.${extensions%% *}]" >&2
                   exit 2
               fi ;;
        esac
    done
    out="${out:-$here/$(basename "$here").wasm}"
    source="${source:-$here/$default}"
    [[ -f "$source" ]] || { echo "$0: no source file '$source'" >&2; exit 1; }
}
