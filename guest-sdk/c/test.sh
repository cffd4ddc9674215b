#!/usr/bin/env bash
# Unit tests of the C SDK (wasmproc.c), compiled natively with
# AddressSanitizer and UBSan against freshly generated bindings.
# Needs clang (or CC) and wit-bindgen-cli.
set -euo pipefail
sdk="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
wit="${WASMPROC_WIT:-$sdk/../../wit}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
wit-bindgen c "$wit" --world process --out-dir "$work" >"$work/wit-bindgen.log" 2>&1 ||
    { cat "$work/wit-bindgen.log" >&2; exit 1; }
"${CC:-clang}" -std=c11 -g -O1 -Wall -Wextra -Werror -fsanitize=address,undefined \
    -fno-sanitize-recover=undefined -I"$work" -I"$sdk" \
    "$sdk/test_wasmproc.c" "$sdk/wasmproc.c" -lm -o "$work/test_wasmproc"
"$work/test_wasmproc"
