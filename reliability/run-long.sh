#!/usr/bin/env bash
# The long reliability scenarios of RELIABILITY.md, in a release build:
#   crash_rounds  20 kill -9 rounds under mixed load (+ the SIGTERM test)
#   overload      1000 concurrent async submissions against a queue of 100
#   hostile_load  50 runs of each hostile case while good jobs run
# Their short versions run in CI with plain `cargo test`.
#
#     reliability/run-long.sh            # all three
#     WASMPROC_SEED=123 reliability/run-long.sh   # replay crash_rounds' choices
#
# Prints each scenario's RELIABILITY-SUMMARY line at the end (the full
# output is kept in target/reliability-long.log) and exits non-zero when any
# scenario failed. Takes ~3-5 minutes after the build on 2 cores.
set -uo pipefail
cd "$(dirname "$0")/.."

log=target/reliability-long.log
mkdir -p target
export WASMPROC_LONG=1
export RUST_LIB_BACKTRACE=0

started=$(date +%s)
WASMPROC_LONG=1 cargo test --release -p wasmproc-tests --test e2e --no-fail-fast \
    -- --nocapture crash_rounds:: overload:: hostile_load:: 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

echo
echo "==> summaries ($(( $(date +%s) - started )) s; full output in $log)"
grep -h '^RELIABILITY-SUMMARY' "$log" || echo "(no summary line: a scenario failed before printing it)"
grep -hE '^test .* (ok|FAILED)$' "$log"
if [[ $status -ne 0 ]]; then
    echo "==> FAILED (exit $status): see the PROBLEM lines and panics in $log"
fi
exit "$status"
