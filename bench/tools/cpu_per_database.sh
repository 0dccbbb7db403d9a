#!/usr/bin/env bash
# CPU time per transaction of one pgbench script, split by the database each
# backend is connected to: for a router (pg_eventsource_router), how much of
# an append the router's backends spend and how much the partition databases'
# backends do. 8 clients; the window is from 2 s after the start to 2 s before
# the end (backends that come and go within it are not counted).
#
#   bash bench/tools/cpu_per_database.sh DB SCRIPT [SECONDS]
#   BENCH_PGPORT=28815 BENCH_PGSOCK=target/es-cluster/run bash bench/tools/cpu_per_database.sh rrouter bench/pgbench/append_es.sql 14
#
# Against the bench server by default (bench/run.sh --keep leaves it running).
# Prints "database seconds-of-CPU microseconds-per-transaction" per database.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DB=$1 SCRIPT=$2 S=${3:-14}
PG_BIN=${BENCH_PG_BIN:-$REPO/target/bench-pg/lib/postgresql/15/bin}
SOCK=${BENCH_PGSOCK:-$REPO/target/bench-cluster/run}
PORT=${BENCH_PGPORT:-28830}
tmp=$(mktemp -d)
"$PG_BIN/pgbench" -n -M prepared -h "$SOCK" -p "$PORT" -U postgres -c 8 -T "$S" -f "$SCRIPT" "$DB" >"$tmp/pgbench" 2>&1 &
pb=$!
# "pid datname jiffies" for every client backend (router and partition side)
snap() {
    psql -X -qAt -h "$SOCK" -p "$PORT" -U postgres postgres -F ' ' \
        -c "SELECT pid, datname FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()" |
        while read -r pid db; do
            t=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null) && echo "$pid $db $t"
        done | sort
}
sleep 2
snap >"$tmp/a"
t0=$(date +%s.%N)
sleep $((S - 4))
snap >"$tmp/b"
t1=$(date +%s.%N)
wait "$pb"
tps=$(sed -n 's/^tps = \([0-9.]*\) (without.*/\1/p' "$tmp/pgbench")
tx=$(awk -v t="$tps" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", t * (b - a) }')
echo "tps $tps, about $tx transactions in the window"
join "$tmp/a" "$tmp/b" | awk -v hz="$(getconf CLK_TCK)" -v tx="$tx" \
    '{ d[$2] += $5 - $3 } END { for (k in d) printf "%s %.2f s %.0f us/tx\n", k, d[k] / hz, d[k] / hz / tx * 1e6 }'
rm -rf "$tmp"
