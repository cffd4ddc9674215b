#!/usr/bin/env bash
# Install what the benchmarks need, once: wrk (Debian), a Python venv with
# the pinned peer server and async client (bench/requirements.lock), the
# release wasmproc binary, the ceiling and floor binaries and the hostile
# and hello-world guests.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null; then
    echo "setup: installing wrk" >&2
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq wrk >/dev/null
fi

if ! bench/.venv/bin/python -c 'import aiohttp, pygeoapi, gunicorn' 2>/dev/null; then
    echo "setup: creating bench/.venv (pygeoapi, gunicorn, aiohttp)" >&2
    python3 -m venv bench/.venv
    bench/.venv/bin/pip install -q --disable-pip-version-check -r bench/requirements.lock
fi

echo "setup: building wasmproc, the ceiling and the floor (release)" >&2
cargo build --release -q -p wasmproc -p wasmproc-bench-ceiling
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi
echo "setup: building the hostile and hello-world guests" >&2
cargo build -q -p hostile -p hello-world --target wasm32-wasip2 --profile guest --target-dir target/guests
