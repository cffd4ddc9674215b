#!/usr/bin/env bash
# The whole suite, twice, in one run: sync (wasmproc, ceiling, pygeoapi at
# concurrency 1/16/64), async (wasmproc, pygeoapi), status reads under CPU
# load. About 8 minutes on 2 cores (plus the first build). Extra arguments go to bench.py, e.g.
# `bench/run-all.sh --rounds 1 --duration 3` for a quick look.
set -euo pipefail
cd "$(dirname "$0")/.."
bench/setup.sh
exec bench/.venv/bin/python bench/bench.py all --rounds 2 "$@"
