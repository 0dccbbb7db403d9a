#!/usr/bin/env bash
# Instructions per transaction of one pgbench script (-M prepared, 1 client),
# counted by callgrind in the backend that runs it. Unlike time, the count
# does not move when other processes share the machine, so it compares
# variants exactly (the same binary and data give the same count).
#
#   bash bench/run.sh --only 'append_1c' --keep     # data sets, then:
#   bash bench/tools/instructions.sh es_append bench/pgbench/append_es.sql [N]
#   PGOPTIONS='-c es.notify=off' bash bench/tools/instructions.sh es_append bench/pgbench/append_es.sql
#
# It stops the bench server and starts the same data directory under
# valgrind (port 28831, synchronous_commit off so the WAL flush's wait does
# not matter, autovacuum off, the library preloaded with es_append's relay
# and worker as in bench/run.sh: the horizon registry lives there), runs the script for 100 and for 100 + N
# transactions in two connections, and prints (second - first) / N: start-up
# and first-use costs cancel out. The second run's profile is left in
# target/bench-callgrind/last.callgrind. Stop the server with
#   runuser -u postgres -- target/bench-pg/lib/postgresql/15/bin/pg_ctl -D target/bench-cluster/data stop
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DB=$1 SCRIPT=$(realpath "$2") N=${3:-1000}
# INSTR_WARMUP: transactions of the first run (default 100); INSTR_SERVER_OPTS:
# more settings for the server (a server up with other ones is restarted)
WARMUP=${INSTR_WARMUP:-100}
EXTRA=${INSTR_SERVER_OPTS:-}
# INSTR_SEED: pgbench's random seed (default 1): both runs, and runs of two
# builds, draw the same streams, so a difference is the code's, not the draw's
SEED=${INSTR_SEED:-1}
BIN=$REPO/target/bench-pg/lib/postgresql/15/bin
DATA=$REPO/target/bench-cluster/data
SOCK=$REPO/target/bench-callgrind/run
OUTD=$REPO/target/bench-callgrind/out
PORT=28831
mkdir -p "$SOCK" "$OUTD"
chown postgres "$SOCK" "$OUTD"
command -v valgrind >/dev/null || apt-get install -y valgrind >/dev/null
up() { psql -X -qAt -h "$SOCK" -p $PORT -U postgres postgres -c "SELECT 1" >/dev/null 2>&1; }
if ! up || [ "$(cat "$SOCK/../options" 2>/dev/null)" != "$EXTRA" ]; then
    runuser -u postgres -- "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
    runuser -u postgres -- bash -c "cd '$OUTD' && nohup valgrind --tool=callgrind --trace-children=yes \
        --callgrind-out-file='$OUTD/cg.%p' '$BIN/postgres' -D '$DATA' -p $PORT -k '$SOCK' \
        -c listen_addresses= -c synchronous_commit=off -c autovacuum=off \
        -c shared_preload_libraries=pg_eventsource -c es.worker_databases=es_append $EXTRA >'$OUTD/server.log' 2>&1 &" \
        </dev/null >/dev/null 2>&1 # the server outlives this script: it must not hold its output open
    echo "$EXTRA" >"$SOCK/../options"
    for _ in $(seq 1 120); do up && break; sleep 1; done
    up || { echo "the server under valgrind did not start; see $OUTD/server.log" >&2; exit 1; }
fi
# One pgbench run of $1 transactions; prints the instruction count of its
# backend (the largest of the processes that ended meanwhile).
run() {
    local before best=0 f v
    before=$(ls "$OUTD")
    "$BIN/pgbench" -n -M prepared --random-seed="$SEED" -h "$SOCK" -p $PORT -U postgres -c 1 -t "$1" -f "$SCRIPT" "$DB" >"$OUTD/pgbench.log" 2>&1 \
        || { cat "$OUTD/pgbench.log" >&2; exit 1; }
    sleep 2 # the backend writes its profile when it exits
    for f in $(comm -13 <(echo "$before") <(ls "$OUTD") | grep '^cg\.[0-9]*$'); do
        v=$(grep -m1 '^totals:' "$OUTD/$f" | awk '{ print $2 }')
        if [ "${v:-0}" -gt "$best" ]; then
            best=$v
            mv "$OUTD/$f" "$OUTD/../last.callgrind" # the profile: callgrind_annotate --inclusive=yes
        else
            rm -f "$OUTD/$f"
        fi
    done
    echo "$best"
}
a=$(run "$WARMUP")
b=$(run $((N + WARMUP)))
echo "$(basename "$SCRIPT") in $DB${PGOPTIONS:+ ($PGOPTIONS)}: $(((b - a) / N)) instructions per transaction"
