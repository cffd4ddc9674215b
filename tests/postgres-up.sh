#!/usr/bin/env bash
# Bring up a PostgreSQL the tests can use, idempotently, and print its URL.
#
#   tests/postgres-up.sh            # start (or reuse) it; prints the URL
#   tests/postgres-up.sh --stop     # stop it
#
# WASMPROC_TEST_PG_ROOT and WASMPROC_TEST_PG_PORT put another cluster in
# another directory on another port (the PostgreSQL-restart test runs one of
# its own, so stopping it disturbs no other test).
#
# - If WASMPROC_TEST_DATABASE_URL is set and answers, that server is used.
# - Otherwise a throwaway cluster is run from target/test-postgres/ (data
#   directory, Unix socket and log there), listening on 127.0.0.1 only, on
#   port $WASMPROC_TEST_PG_PORT (default 54329), with trust authentication
#   for loopback connections: it holds nothing but test databases.
# - Debian's PostgreSQL 15 is installed with apt-get when initdb is missing
#   (root or sudo needed then).
# - As root, the cluster runs as the `postgres` user (PostgreSQL refuses to
#   run as root).
#
# The URL is also written to target/test-postgres/url, where the tests read
# it when WASMPROC_TEST_DATABASE_URL is not set. Each test creates its own
# database from it and drops it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${WASMPROC_TEST_PG_ROOT:-$(pwd)/target/test-postgres}
port=${WASMPROC_TEST_PG_PORT:-54329}
data=$root/data
url_file=$root/url
url="postgres://postgres@127.0.0.1:$port/postgres"

log() { printf 'postgres-up: %s\n' "$*" >&2; }

find_bin() {
    local name=$1 dir
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/$name" ] && { echo "$dir/$name"; return 0; }
    done
    command -v "$name" 2>/dev/null && return 0
    return 1
}

as_owner() {
    # Run a PostgreSQL server command as the data directory's owner.
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

if [ "${1:-}" = "--stop" ]; then
    if pg_ctl=$(find_bin pg_ctl) && [ -f "$data/PG_VERSION" ]; then
        as_owner "$pg_ctl" -D "$data" -m fast stop >/dev/null 2>&1 || true
    fi
    log "stopped"
    exit 0
fi

if [ -n "${WASMPROC_TEST_DATABASE_URL:-}" ] && [ -z "${WASMPROC_TEST_PG_ROOT:-}" ]; then
    if command -v psql >/dev/null && psql "$WASMPROC_TEST_DATABASE_URL" -Atc 'select 1' >/dev/null 2>&1; then
        echo "$WASMPROC_TEST_DATABASE_URL"
        exit 0
    fi
    log "WASMPROC_TEST_DATABASE_URL is set but does not answer; starting a local cluster instead"
fi

# Another checkout's cluster may already serve this port (its tests use
# databases of their own, so sharing it is harmless).
if [ -z "${WASMPROC_TEST_PG_ROOT:-}" ] && command -v psql >/dev/null \
    && psql "$url" -Atc 'select 1' >/dev/null 2>&1; then
    mkdir -p "$root"
    echo "$url" >"$url_file"
    echo "$url"
    exit 0
fi

if ! find_bin initdb >/dev/null || ! command -v psql >/dev/null; then
    log "PostgreSQL is not installed: installing Debian's postgresql"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq >/dev/null || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
    # Debian starts its own cluster on 5432 after installing; ours is separate.
fi
initdb=$(find_bin initdb)
pg_ctl=$(find_bin pg_ctl)

mkdir -p "$root"
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
    chown postgres "$root"
fi

if [ ! -f "$data/PG_VERSION" ]; then
    log "initdb in $data"
    rm -rf "$data"
    as_owner "$initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --no-locale >"$root/initdb.log" 2>&1 \
        || { cat "$root/initdb.log" >&2; exit 1; }
    cat >>"$data/postgresql.conf" <<EOF
# wasmproc tests: loopback only, enough connections for 3-node clusters
# and parallel tests, sockets kept inside target/.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$root'
max_connections = 400
shared_buffers = 256MB
fsync = on
synchronous_commit = on
EOF
fi

if ! as_owner "$pg_ctl" -D "$data" status >/dev/null 2>&1; then
    log "starting on 127.0.0.1:$port"
    as_owner "$pg_ctl" -D "$data" -l "$root/server.log" -w -t 60 start >/dev/null \
        || { tail -20 "$root/server.log" >&2; exit 1; }
fi

for _ in $(seq 1 60); do
    if psql "$url" -Atc 'select 1' >/dev/null 2>&1; then
        echo "$url" >"$url_file"
        echo "$url"
        exit 0
    fi
    sleep 0.5
done
log "PostgreSQL did not answer on $url within 30 s"
tail -20 "$root/server.log" >&2 || true
exit 1
