# Shared by scripts/run.sh, scripts/test.sh and bench/: set-up of a fresh
# Debian 12 machine (as root) and a private PostgreSQL 15 cluster.
# Source it; it defines functions and variables only.

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PGRX_VERSION=0.18.1
PG_MAJOR=15
# Overridable, to use a relocated copy of PostgreSQL.
PG_BIN=${PG_BIN:-/usr/lib/postgresql/$PG_MAJOR/bin}
PG_CONFIG=${PG_CONFIG:-$PG_BIN/pg_config}
export PATH="$HOME/.cargo/bin:$PATH"

# The private cluster: its own data directory, port and socket directory.
ES_PGPORT=${ES_PGPORT:-28815}
ES_PGDATA=${ES_PGDATA:-$REPO/target/es-cluster/data}
ES_PGSOCK=${ES_PGSOCK:-$REPO/target/es-cluster/run}
ES_PGLOG=${ES_PGLOG:-$REPO/target/es-cluster/postgres.log}

log() { printf '\n==> %s\n' "$*"; }

# The server must not inherit RUST_BACKTRACE: it would append backtraces to error messages.
as_postgres() { runuser -u postgres -- env -u RUST_BACKTRACE "$@"; }

# apt packages, cargo-pgrx at the pinned version, and pgrx's config: each only when missing.
setup_machine() {
    local pkgs=(postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR postgresql-contrib postgresql-$PG_MAJOR-wal2json
                postgresql-$PG_MAJOR-plproxy
                libclang-dev clang sudo pkg-config)
    local missing=()
    for p in "${pkgs[@]}"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if ! command -v cargo >/dev/null; then
        echo "cargo is not installed: this project needs the machine's Rust toolchain" >&2
        exit 1
    fi
    if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
        log "installing cargo-pgrx $PGRX_VERSION (takes a few minutes)"
        cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
    fi
    if ! grep -q "pg$PG_MAJOR" "$HOME/.pgrx/config.toml" 2>/dev/null; then
        log "cargo pgrx init --pg$PG_MAJOR $PG_CONFIG"
        cargo pgrx init --pg$PG_MAJOR "$PG_CONFIG" >/dev/null
    fi
}

# Build the release library and install it into the system PostgreSQL 15.
# Overwriting the library under a running server crashes the backends that
# have it mapped, so the private cluster is stopped first (start it after).
install_extension() {
    log "building and installing pg_eventsource (release)"
    stop_cluster
    (cd "$REPO" && cargo pgrx install --release --pg-config "$PG_CONFIG" >/dev/null)
    # the Message DB compatibility extension: SQL only, beside it
    cp "$REPO"/integrations/message_db/pg_eventsource_message_db.control \
       "$REPO"/integrations/message_db/pg_eventsource_message_db--*.sql \
       "$("$PG_CONFIG" --sharedir)/extension/"
    # the router for partitions (router/): SQL over PL/Proxy and this library
    cp "$REPO"/router/pg_eventsource_router.control "$REPO"/router/pg_eventsource_router--*.sql \
       "$("$PG_CONFIG" --sharedir)/extension/"
}

# The private cluster preloads the library (once it is installed) so that the
# background worker keeps async projections caught up in database es_worker
# (and in ES_WORKER_DATABASES, comma-separated).
ES_WORKER_DATABASES=${ES_WORKER_DATABASES:-es_worker}

# Start the private cluster as the postgres user, creating it if needed.
start_cluster() {
    local preload=""
    # ES_PRELOAD=0: a stock server (nothing preloaded, default settings)
    if [ "${ES_PRELOAD:-1}" = 1 ] && [ -f "$("$PG_CONFIG" --pkglibdir)/pg_eventsource.so" ]; then
        preload="-c shared_preload_libraries=pg_eventsource -c es.worker_databases=$ES_WORKER_DATABASES -c es.worker_interval=200"
    fi
    mkdir -p "$(dirname "$ES_PGDATA")" "$ES_PGSOCK"
    chown postgres: "$(dirname "$ES_PGDATA")" "$ES_PGSOCK"
    if [ ! -f "$ES_PGDATA/PG_VERSION" ]; then
        log "initdb $ES_PGDATA"
        as_postgres "$PG_BIN/initdb" -D "$ES_PGDATA" --auth=trust --username=postgres -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    if as_postgres "$PG_BIN/pg_ctl" -D "$ES_PGDATA" status >/dev/null 2>&1; then
        return 0
    fi
    log "starting PostgreSQL $PG_MAJOR on port $ES_PGPORT (socket $ES_PGSOCK)"
    # The server must not inherit the caller's open files (a lock held by
    # flock, a pipe a test runner waits on): close everything above stderr.
    (
        for fd in /proc/$BASHPID/fd/*; do
            fd=${fd##*/}
            [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
        done
        as_postgres "$PG_BIN/pg_ctl" -D "$ES_PGDATA" -l "$ES_PGLOG" -w -t 60 \
            -o "-p $ES_PGPORT -k $ES_PGSOCK -c listen_addresses=127.0.0.1 $preload ${ES_PGOPTS:-}" start >/dev/null
    )
    # The worker's database (it retries every few seconds until it exists).
    local db
    for db in ${ES_WORKER_DATABASES//,/ }; do
        es_psql postgres -qtA -c "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 \
            || es_psql postgres -q -c "CREATE DATABASE \"$db\""
    done
}

stop_cluster() {
    as_postgres "$PG_BIN/pg_ctl" -D "$ES_PGDATA" -m fast -w stop >/dev/null 2>&1 || true
}

# psql against the private cluster: es_psql DB [psql args...]
es_psql() {
    local db=$1; shift
    psql -X -v ON_ERROR_STOP=1 -h "$ES_PGSOCK" -p "$ES_PGPORT" -U postgres -d "$db" "$@"
}

recreate_db() {
    es_psql postgres -q -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" -c "CREATE DATABASE \"$1\""
}
