#!/usr/bin/env bash
# Instructions of one run of a long query (a fold over a million events),
# counted by callgrind in the backend that runs it: the query file is run
# once in one connection and twice in another, and the difference printed
# (start-up and first-use costs cancel out). Where instructions.sh runs a
# pgbench script many times, this runs a query that takes seconds under
# valgrind a few times.
#
#   bash bench/run.sh --only grouped_fold --keep      # the data sets, then:
#   bash bench/tools/query_instructions.sh es_bank bench/pgbench/fold_grouped_columns.sql
#
# It stops the bench server and starts the same data directory under
# valgrind as instructions.sh does (port 28831), with jit = off (JIT'd code
# is not counted the same from run to run) and no parallel workers (one
# process does the whole query). If a server is already up on that port (one
# instructions.sh left), stop it first: the settings differ. The profile of
# the second connection is left in target/bench-callgrind/last.callgrind.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DB=$1 SQL=$(realpath "$2")
BIN=$REPO/target/bench-pg/lib/postgresql/15/bin
DATA=$REPO/target/bench-cluster/data
SOCK=$REPO/target/bench-callgrind/run
OUTD=$REPO/target/bench-callgrind/out
PORT=28831
mkdir -p "$SOCK" "$OUTD"
chown postgres "$SOCK" "$OUTD"
command -v valgrind >/dev/null || apt-get install -y valgrind >/dev/null
up() { psql -X -qAt -h "$SOCK" -p $PORT -U postgres postgres -c "SELECT 1" >/dev/null 2>&1; }
if ! up; then
    runuser -u postgres -- "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
    runuser -u postgres -- bash -c "cd '$OUTD' && nohup valgrind --tool=callgrind --trace-children=yes \
        --callgrind-out-file='$OUTD/cg.%p' '$BIN/postgres' -D '$DATA' -p $PORT -k '$SOCK' \
        -c listen_addresses= -c synchronous_commit=off -c autovacuum=off -c jit=off \
        -c max_parallel_workers_per_gather=0 \
        -c shared_preload_libraries=pg_eventsource >'$OUTD/server.log' 2>&1 &" \
        </dev/null >/dev/null 2>&1 # the server outlives this script: it must not hold its output open
    for _ in $(seq 1 120); do up && break; sleep 1; done
    up || { echo "the server under valgrind did not start; see $OUTD/server.log" >&2; exit 1; }
fi
# Runs the query $1 times in one connection; prints the instruction count of
# its backend (the largest of the processes that ended meanwhile).
run() {
    local before best=0 f v i
    before=$(ls "$OUTD")
    for ((i = 0; i < $1; i++)); do cat "$SQL"; done | psql -X -q -h "$SOCK" -p $PORT -U postgres "$DB" >/dev/null
    sleep 2 # the backend writes its profile when it exits
    for f in $(comm -13 <(echo "$before") <(ls "$OUTD") | grep '^cg\.[0-9]*$'); do
        v=$(grep -m1 '^totals:' "$OUTD/$f" | awk '{ print $2 }')
        if [ "${v:-0}" -gt "$best" ]; then
            best=$v
            mv "$OUTD/$f" "$OUTD/../last.callgrind"
        else
            rm -f "$OUTD/$f"
        fi
    done
    echo "$best"
}
a=$(run 1)
b=$(run 2)
echo "$(basename "$SQL") in $DB: $((b - a)) instructions per run"
