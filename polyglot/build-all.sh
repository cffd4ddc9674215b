#!/usr/bin/env bash
# Build every non-Rust example process into polyglot/out/ (or
# $WASMPROC_POLYGLOT_DIR), check that the SDK templates build, and run the
# Python, JavaScript and C SDKs' unit tests. Stops at the first failure (non-zero exit).
# The toolchains come from polyglot/install-toolchains.sh.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
export WASMPROC_POLYGLOT_DIR="${WASMPROC_POLYGLOT_DIR:-$here/out}"
mkdir -p "$WASMPROC_POLYGLOT_DIR/templates"
start=$SECONDS

echo "==> Python SDK unit tests"
PYTHONDONTWRITEBYTECODE=1 python3 -m unittest discover -s "$root/guest-sdk/python" 2>&1 | tail -n 3
echo "==> JavaScript SDK unit tests (node --test, the WIT host stubbed)"
(cd "$root/guest-sdk/js" && node --import ./test/register.mjs --test test/wasmproc.test.mjs 2>&1 | tail -n 8)
echo "==> C SDK unit tests (native, ASan + UBSan)"
bash "$root/guest-sdk/c/test.sh"

for script in "$here"/python/*/build.sh "$here"/js/*/build.sh "$here"/c/*/build.sh; do
    echo "==> ${script#"$root"/}"
    bash "$script"
done

for lang in python js c; do
    echo "==> guest-sdk/$lang/template"
    bash "$root/guest-sdk/$lang/template/build.sh" "$WASMPROC_POLYGLOT_DIR/templates/my-process-$lang.wasm" >/dev/null
done

echo "built $(ls "$WASMPROC_POLYGLOT_DIR"/*.wasm | wc -l) components in $WASMPROC_POLYGLOT_DIR in $((SECONDS - start)) s"
