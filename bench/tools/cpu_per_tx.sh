#!/usr/bin/env bash
# Backend CPU time per transaction of one pgbench script, 1 client, a fixed
# number of transactions, against the bench server (bench/run.sh --keep leaves
# it running with its databases). CPU time, unlike throughput, hardly moves
# when other processes compete for the machine's cores.
#
#   bash bench/tools/cpu_per_tx.sh DB SCRIPT [N] [pgbench args...]
#   PGOPTIONS='-c synchronous_commit=off' bash bench/tools/cpu_per_tx.sh es_append bench/pgbench/append_es.sql 20000
#
# Prints microseconds of backend user+system CPU per transaction (from
# /proc/<pid>/stat, 10 ms ticks: use N large enough for a few seconds of CPU).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DB=$1 SCRIPT=$2 N=${3:-20000}
shift $(($# < 3 ? $# : 3))
PG_BIN=$REPO/target/bench-pg/lib/postgresql/15/bin
SOCK=$REPO/target/bench-cluster/run
PORT=${BENCH_PGPORT:-28830}
out=$(mktemp)
"$PG_BIN/pgbench" -n -M prepared -h "$SOCK" -p "$PORT" -U postgres -c 1 -t "$N" -f "$SCRIPT" "$@" "$DB" >"$out" 2>&1 &
pb=$!
pid=
for _ in $(seq 1 500); do
    pid=$(psql -X -qAt -h "$SOCK" -p "$PORT" -U postgres postgres \
        -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench' LIMIT 1")
    [ -n "$pid" ] && break
    sleep 0.01
done
last=0
while [ -n "$pid" ] && [ -e "/proc/$pid/stat" ]; do
    v=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || true)
    [ -n "$v" ] && last=$v
    sleep 0.02
done
wait "$pb" || { cat "$out" >&2; exit 1; }
tick=$(getconf CLK_TCK)
echo "$(basename "$SCRIPT"): $(awk -v t="$last" -v n="$N" -v k="$tick" 'BEGIN { printf "%.1f", t * 1e6 / k / n }') us backend CPU per transaction; $(grep '^tps' "$out")"
rm -f "$out"
