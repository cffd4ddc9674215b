#!/usr/bin/env bash
# Build this process into a component, in one command: ./build.sh [OUT.wasm]
# (default: {{name}}.wasm next to this script). Needs cargo and the
# wasm32-wasip2 target, which this script adds through rustup if missing.
# The first build downloads the SDK's dependencies from crates.io.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/{{name}}.wasm}"
command -v cargo >/dev/null || {
    echo "$0: cargo not found; install Rust with rustup (https://rustup.rs)" >&2
    exit 1
}
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi
cargo build --quiet --manifest-path "$here/Cargo.toml" --release --target wasm32-wasip2
target="${CARGO_TARGET_DIR:-$here/target}"
mkdir -p "$(dirname "$out")"
cp "$target/wasm32-wasip2/release/{{crate}}.wasm" "$out"
echo "built $out"
