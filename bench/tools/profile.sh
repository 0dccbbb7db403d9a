#!/usr/bin/env bash
# perf profile of the backend that runs one pgbench script (1 client) against
# the bench server (bench/run.sh --keep leaves it running).
#
#   bash bench/tools/profile.sh DB SCRIPT [SECONDS] [pgbench args...]
#   then: perf report -i target/bench/perf.data --children --sort symbol
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DB=$1 SCRIPT=$2 S=${3:-10}
shift $(($# < 3 ? $# : 3))
PG_BIN=$REPO/target/bench-pg/lib/postgresql/15/bin
SOCK=$REPO/target/bench-cluster/run
PORT=${BENCH_PGPORT:-28830}
mkdir -p "$REPO/target/bench"
"$PG_BIN/pgbench" -n -M prepared -h "$SOCK" -p "$PORT" -U postgres -c 1 -T "$S" -f "$SCRIPT" "$@" "$DB" \
    >"$REPO/target/bench/perf.pgbench.txt" 2>&1 &
pb=$!
sleep 1
pid=$(psql -X -qAt -h "$SOCK" -p "$PORT" -U postgres postgres \
    -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench' LIMIT 1")
perf record -F 2000 -g -p "$pid" -o "$REPO/target/bench/perf.data" -- sleep $((S > 3 ? S - 2 : 1)) >/dev/null 2>&1
wait "$pb"
grep '^tps' "$REPO/target/bench/perf.pgbench.txt"
perf report -i "$REPO/target/bench/perf.data" --children --sort symbol --stdio -g none 2>/dev/null |
    grep -E '^ +[0-9]' | grep -v ' 0x0000' | head -40
