#!/usr/bin/env bash
# Build this Rust process into a component, in one command:
#
#     ./build.sh [-o OUT.wasm] [CARGO FLAGS ...]
#
# OUT.wasm defaults to FOLDER.wasm next to this script (FOLDER is this
# folder's name). Every other argument goes to `cargo build` (e.g.
# --features x). Needs cargo and the wasm32-wasip2 target, which this
# script adds through rustup if missing; the first build downloads the
# SDK's dependencies from crates.io.
#
# Cargo.toml takes the SDK from ./sdk, with the WIT contract in ./wit
# (`wasmproc new` writes both). When they are missing (this template
# copied out of a wasmproc checkout), the first build copies them from
# $WASMPROC_SDK (the guest-sdk folder of the checkout; default: the
# checkout this template sits in) and $WASMPROC_WIT (default: the
# checkout's wit/).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

out="" cargo_flags=()
while (($#)); do
    case "$1" in
        -o) out="${2:?-o needs a file name}"; shift 2 ;;
        *.wasm) out="$1"; shift ;;
        *) cargo_flags+=("$1"); shift ;;
    esac
done
out="${out:-$here/$(basename "$here").wasm}"

command -v cargo >/dev/null || {
    echo "$0: cargo not found; install Rust with rustup (https://rustup.rs)" >&2
    exit 1
}

if [[ ! -f "$here/sdk/Cargo.toml" ]]; then
    sdk="${WASMPROC_SDK:-$here/../..}"
    if [[ ! -f "$sdk/src/lib.rs" || ! -f "$sdk/rust/sdk-Cargo.toml" ]]; then
        echo "$0: no SDK in $here/sdk, and the wasmproc Rust SDK is not at '$sdk'." >&2
        echo "Set WASMPROC_SDK to the guest-sdk folder of a wasmproc checkout and WASMPROC_WIT" >&2
        echo "to its wit/ folder, or create the project with 'wasmproc new --lang rust NAME'," >&2
        echo "which copies both into it." >&2
        exit 1
    fi
    wit="${WASMPROC_WIT:-$sdk/../wit}"
    if [[ ! -f "$wit/process.wit" ]]; then
        echo "$0: no WIT contract at '$wit' (no process.wit there); set WASMPROC_WIT to the wit/ folder of a wasmproc checkout" >&2
        exit 1
    fi
    mkdir -p "$here/sdk/src" "$here/wit"
    cp "$sdk"/src/*.rs "$here/sdk/src/"
    cp "$sdk/rust/sdk-Cargo.toml" "$here/sdk/Cargo.toml"
    cp "$wit/process.wit" "$here/wit/process.wit"
    echo "copied the SDK from $sdk into $here/sdk and the WIT contract into $here/wit"
fi

if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi
crate="$(sed -n 's/^name *= *"\([^"]*\)".*/\1/p' "$here/Cargo.toml" | head -n 1)"
[[ -n "$crate" ]] || { echo "$0: no package name in $here/Cargo.toml" >&2; exit 1; }
cargo build --quiet --manifest-path "$here/Cargo.toml" --release --target wasm32-wasip2 \
    ${cargo_flags[@]+"${cargo_flags[@]}"}
target="${CARGO_TARGET_DIR:-$here/target}"
mkdir -p "$(dirname "$out")"
cp "$target/wasm32-wasip2/release/${crate//-/_}.wasm" "$out"
echo "built $out"
