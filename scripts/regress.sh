#!/usr/bin/env bash
# SQL regression tests (pg_regress) against the private cluster, with the
# extension as currently installed (run scripts/run.sh or `cargo pgrx install`
# first). Tests: tests/regress/sql/*.sql, expected output:
# tests/regress/expected/*.out, order: tests/regress/schedule.
# Results go to target/regress/; on failure the diffs are printed.
# Ends with the line "regress: N passed, M failed".
source "$(dirname "$0")/common.sh"

start_cluster

PG_REGRESS=$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress
OUT=$REPO/target/regress
SCHEDULE=$REPO/tests/regress/schedule
rm -rf "$OUT"
mkdir -p "$OUT"

log "pg_regress against port $ES_PGPORT (database es_regress)"
# Environment settings of the caller must not change what psql prints or where it connects.
unset PGOPTIONS PGDATABASE PGHOST PGPORT
export PGUSER=postgres
set +e
"$PG_REGRESS" \
    --host="$ES_PGSOCK" --port="$ES_PGPORT" --user=postgres \
    --bindir="$PG_BIN" \
    --inputdir="$REPO/tests/regress" --outputdir="$OUT" \
    --dbname=es_regress \
    --schedule="$SCHEDULE" 2>&1 | tee "$OUT/pg_regress.log"
rc=${PIPESTATUS[0]}
set -e

# One line per test: "test NAME ... ok" / "... FAILED" (also "failed (ignored)").
passed=$(grep -cE '\.\.\. +ok( |$)' "$OUT/pg_regress.log" || true)
failed=$(grep -cE '\.\.\. +(FAILED|failed)( |$)' "$OUT/pg_regress.log" || true)
total=$(grep -cE '^test:' "$SCHEDULE" || true)
if [ "$rc" -ne 0 ]; then
    # Tests that never ran (pg_regress stopped early) count as failed.
    if [ $((passed + failed)) -lt "$total" ]; then
        failed=$((total - passed))
    fi
    [ "$failed" -gt 0 ] || failed=1
    if [ -s "$OUT/regression.diffs" ]; then
        log "$OUT/regression.diffs"
        cat "$OUT/regression.diffs"
    fi
fi
echo "regress: $passed passed, $failed failed"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
