#!/usr/bin/env bash
# One section of the suite: `bench.py async` (see bench/README.md). Extra
# arguments go to bench.py, e.g. --rounds 2.
set -euo pipefail
cd "$(dirname "$0")/.."
bench/setup.sh
exec bench/.venv/bin/python bench/bench.py async "$@"
