#!/usr/bin/env bash
# The long fuzzing run: build target/release/wasmproc, serve it on
# 127.0.0.1 (temporary data directory, an admin token, protect_jobs, short
# job limits) and run schemathesis from the server's own OpenAPI document,
# with the token and without it. tests/tests/fuzz_openapi.rs is the short
# version that runs with `cargo test`.
#
#     reliability/fuzz.sh [EXAMPLES]      (per operation and phase; default 200)
#
# Environment: FUZZ_MAX_SECONDS bounds each schemathesis run (default 1200;
# it is killed past it), FUZZ_SEED replays a run, FUZZ_REPORT_DIR keeps
# the JUnit reports and server log (default: a temporary directory, kept).
# Exit status: 0 when both runs pass, 1 otherwise. Installs schemathesis
# with reliability/install-tools.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

EXAMPLES=${1:-200}
MAX_SECONDS=${FUZZ_MAX_SECONDS:-1200}
TOKEN=fuzz-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
# Keep in step with CHECKS in tests/tests/fuzz_openapi.rs.
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance
CHECKS+=,response_schema_conformance,response_headers_conformance,negative_data_rejection
CHECKS+=,unsupported_method,use_after_free,ensure_resource_availability,ignored_auth

[[ "$EXAMPLES" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [EXAMPLES]" >&2; exit 2; }

reliability/install-tools.sh >&2
echo "fuzz: building target/release/wasmproc" >&2
cargo build --release -q -p wasmproc

WORK=$(mktemp -d /tmp/wasmproc-fuzz-XXXXXX)
REPORTS=$(realpath -m "${FUZZ_REPORT_DIR:-$WORK/reports}")
mkdir -p "$REPORTS"
cat > "$WORK/config.toml" <<TOML
[auth]
protect_jobs = true
[execution]
sync_timeout = "5s"
max_concurrent_jobs = 2
max_queued_jobs = 64
[limits.default]
timeout = "2s"
[limits.max]
timeout = "2s"
[href]
allowed_hosts = ["href-fetching-is-off.invalid"]
timeout = "2s"
[callbacks]
allowed_hosts = ["callbacks-are-off.invalid"]
timeout = "1s"
attempts = 1
TOML
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
WASMPROC_ADMIN_TOKEN=$TOKEN target/release/wasmproc serve --bind "127.0.0.1:$PORT" \
    --data-dir "$WORK/data" --config "$WORK/config.toml" > "$REPORTS/server.log" 2>&1 &
SERVER=$!
cleanup() {
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    rm -rf "$WORK/data"
}
trap cleanup EXIT
for _ in $(seq 100); do
    curl -sf -o /dev/null "$BASE/" && break
    kill -0 "$SERVER" 2>/dev/null || { cat "$REPORTS/server.log" >&2; exit 1; }
    sleep 0.1
done
curl -sf -o /dev/null "$BASE/" || { echo "fuzz: the server did not start" >&2; exit 1; }

# One schemathesis run: name, examples, extra arguments. Its output goes to
# $REPORTS/<name>.txt and the terminal; returns its exit status.
run() {
    local name=$1 examples=$2
    shift 2
    local seed=()
    [[ -n "${FUZZ_SEED:-}" ]] && seed=(--seed "$FUZZ_SEED")
    echo "fuzz: schemathesis $name, $examples examples per operation (at most ${MAX_SECONDS}s)" >&2
    local status=0
    # From $WORK: schemathesis keeps state in ./.schemathesis, not in the checkout.
    (cd "$WORK" && SCHEMATHESIS_HOOKS="$ROOT/reliability/schemathesis_hooks.py" \
        NO_PROXY=127.0.0.1 no_proxy=127.0.0.1 PYTHONDONTWRITEBYTECODE=1 \
        timeout --kill-after=10 "$MAX_SECONDS" \
        "$ROOT/reliability/.venv/bin/schemathesis" run "$BASE/api" \
            --checks "$CHECKS" --max-examples "$examples" --request-timeout 30 \
            --generation-database none --workers 2 --no-color "${seed[@]}" \
            --report junit --report-junit-path "$REPORTS/$name.xml" "$@") \
        > "$REPORTS/$name.txt" 2>&1 || status=$?
    cat "$REPORTS/$name.txt"
    [[ $status -eq 124 || $status -eq 137 ]] && echo "fuzz: $name killed after ${MAX_SECONDS}s" >&2
    return $status
}

summary() { # name
    local file=$REPORTS/$1.txt
    printf '%-14s operations %s, test cases: %s, exit %s\n' "$1" \
        "$(sed -n 's/^ *Tested: *//p' "$file" | head -1)" \
        "$(sed -n '/^Test cases:/{n;s/^ *//;p}' "$file" | head -1)" "$2"
}

status_auth=0
status_anon=0
run authenticated "$EXAMPLES" --header "Authorization: Bearer $TOKEN" || status_auth=$?
run anonymous "$(( (EXAMPLES + 3) / 4 ))" || status_anon=$?

# Still alive?
alive=ok
curl -sf -o /dev/null "$BASE/processes/hello-world" || alive="NOT ANSWERING"
server_errors=$(grep -c 'internal error\|panicked' "$REPORTS/server.log" || true)

echo
echo "==== fuzz summary (schemathesis $(reliability/.venv/bin/schemathesis --version | awk '{print $NF}'), $EXAMPLES examples) ===="
summary authenticated "$status_auth"
summary anonymous "$status_anon"
echo "server after the runs: $alive; internal errors or panics in its log: $server_errors"
echo "reports and server log: $REPORTS"
[[ $status_auth -eq 0 && $status_anon -eq 0 && $alive == ok && $server_errors -eq 0 ]]
