#!/usr/bin/env bash
# Build a wasmproc process component from C sources, in one command:
#
#     guest-sdk/c/wasmproc-cc.sh -o my-process.wasm my_process.c [more.c ...] [-DFOO -O3 ...]
#
# 1. generates the C bindings of wit/process.wit (`wit-bindgen c`),
# 2. compiles the sources with wasmproc.c and the bindings for wasm32-wasi
#    as a reactor (no main), with -Werror,
# 3. turns the core module into a component with the WASI preview1 reactor
#    adapter of the same wasmtime version as the host (`wasm-tools component new`).
#
# Needs clang + lld + wasi-libc (+ libclang-rt-dev-wasm32 on Debian),
# wit-bindgen-cli, wasm-tools and cargo: see polyglot/install-toolchains.sh.
# The flags given after the sources come after the SDK's own (-O2 -std=gnu11
# -Wall -Wextra -Werror), so they win (e.g. -std=c17, -Wno-error). gnu11 is
# C11 plus the POSIX/BSD names of the C library (M_PI, strdup).
# Environment: CC (default clang), WASI_SYSROOT (default /usr, where Debian's
# wasi-libc lives; e.g. /opt/wasi-sdk/share/wasi-sysroot elsewhere),
# WASMPROC_WIT (default: the repository's wit/).
set -euo pipefail

sdk="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
wit="${WASMPROC_WIT:-$sdk/../../wit}"
cc="${CC:-clang}"
sysroot="${WASI_SYSROOT:-/usr}"

out=""
args=()
while (($#)); do
    case "$1" in
        -o) out="${2:?-o needs a file}"; shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done
if [[ -z "$out" || ${#args[@]} -eq 0 ]]; then
    echo "usage: $0 -o OUT.wasm SOURCE.c... [CFLAGS...]" >&2
    exit 2
fi
for tool in "$cc" wit-bindgen wasm-tools cargo; do
    command -v "$tool" >/dev/null || {
        echo "$0: $tool not found; run polyglot/install-toolchains.sh" >&2
        exit 1
    }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The reactor adapter ships in a crate; `cargo metadata` downloads it (once)
# and says where its sources are.
adapter_manifest="$(cargo metadata --format-version 1 --locked \
        --manifest-path "$sdk/adapter/Cargo.toml" |
    grep -o '"manifest_path":"[^"]*/wasi-preview1-component-adapter-provider-[^"/]*/Cargo.toml"' |
    head -n 1 | sed 's/^"manifest_path":"//; s/"$//')"
adapter="$(dirname "$adapter_manifest")/artefacts/wasi_snapshot_preview1.reactor.wasm"
[[ -f "$adapter" ]] || { echo "$0: no reactor adapter at '$adapter'" >&2; exit 1; }

if ! wit-bindgen c "$wit" --world process --out-dir "$work/bindings" >"$work/wit-bindgen.log" 2>&1; then
    cat "$work/wit-bindgen.log" >&2
    exit 1
fi

"$cc" --target=wasm32-wasi --sysroot="$sysroot" -mexec-model=reactor \
    -O2 -std=gnu11 -Wall -Wextra -Werror \
    -I"$work/bindings" -I"$sdk" \
    "${args[@]}" "$sdk/wasmproc.c" "$work/bindings/process.c" \
    "$work/bindings/process_component_type.o" -lm \
    -o "$work/core.wasm"

mkdir -p "$(dirname "$out")"
wasm-tools component new "$work/core.wasm" \
    --adapt "wasi_snapshot_preview1=$adapter" -o "$out"
