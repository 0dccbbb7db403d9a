#!/usr/bin/env bash
# Writes sql/pg_eventsource--0.1.0--0.2.0.sql from the SQL files, as long as
# 0.2.0 is unreleased and they may still change: the new files in the order
# of the extension_sql_file! graph (src/lib.rs), the new column of es.streams
# with its backfill, es.aggregates.fold as text, es.define_aggregate's new
# body, and the lines the finalize file (04_guards.sql, now 11_guards.sql)
# gained since v0.1.0.
#
#   bash tests/upgrade/assemble-0.1.0--0.2.0.sh      # then: bash scripts/test_upgrade.sh
#
# It refuses when a file that 0.1.0 already had changed in another way than
# this upgrade knows: write that part of the upgrade by hand. Once 0.2.0 is
# tagged, the upgrade script is frozen: never run this again.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
OLD=$(git rev-parse -q --verify 'v0.1.0^{commit}' || echo a165b3c2d19b92de5204f5bcb15bb82574a53631)
OUT=sql/pg_eventsource--0.1.0--0.2.0.sql
NEW_FILES=(06_projections 07_subscriptions 08_stats 09_verify 10_privileges)

fail() { echo "assemble: $*" >&2; exit 1; }

# Files 0.1.0 had: unchanged, or changed only as this script knows.
# 02_append.sql: lines added at its end only (es._chain).
old_append=$(git show "$OLD:sql/02_append.sql")
[ "$(head -c ${#old_append} sql/02_append.sql)" = "$old_append" ] \
    || fail "sql/02_append.sql changed other than at its end: upgrade it by hand"
added_append=$(tail -n +$(($(printf '%s\n' "$old_append" | wc -l) + 1)) sql/02_append.sql)
# 03_read.sql: es.stream_version became a C function (same signature);
# es.read_horizon, es.read_all and es.horizon moved to 04_horizon.sql.
stream_version_block() { awk '/^CREATE FUNCTION es\.stream_version\(/ { p = 1 } p { print } p && /^(END;|AS .*;)$/ { exit }'; }
without_stream_version() {
    grep -v '^\s*--' \
        | awk '/^CREATE FUNCTION es\.stream_version\(/ { skip = 1 } !skip { print } skip && /^(END;|AS .*;)$/ { skip = 0 }' \
        | awk '/^CREATE FUNCTION es\.(read_horizon|read_all|horizon)\(/ { skip = "^END;$" }
               /^COMMENT ON FUNCTION es\.(read_horizon|read_all|horizon)\(/ { skip = "\x27;$" }
               !skip { print } skip && $0 ~ skip { skip = "" }'
}
diff <(git show "$OLD:sql/03_read.sql" | without_stream_version | grep -v "^\s*$") <(without_stream_version <sql/03_read.sql | grep -v "^\s*$") >/dev/null \
    || fail "sql/03_read.sql changed beyond es.stream_version and the functions moved to 04_horizon.sql: upgrade it by hand"
git show "$OLD:sql/03_read.sql" | grep -q '^CREATE FUNCTION es\.horizon($' || fail "0.1.0's es.horizon not found"
stream_version=$(stream_version_block <sql/03_read.sql)
[ -n "$stream_version" ] || fail "es.stream_version not found in sql/03_read.sql"
# 05_aggregates.sql: es.aggregates.fold regprocedure -> text (pg_upgrade
# refuses reg* columns), and es.define_aggregate's body.
strip_define() {   # the file without comments and without es.define_aggregate's CREATE
    grep -v '^\s*--' | awk '/^CREATE FUNCTION es\.define_aggregate\(/ { skip = 1 } !skip { print } skip && /^\$\$;$/ { skip = 0 }'
}
# The snapshot trigger of 0.1.0 (es._snapshot_due, es._take_snapshot,
# events_snapshot) moved into 06_projections.sql's single AFTER INSERT trigger.
strip_snapshot_trigger() { awk '/^CREATE FUNCTION es\._snapshot_due\(/ { skip = 1 } !skip { print } skip && /ENABLE ALWAYS TRIGGER events_snapshot;$/ { skip = 0 }'; }
snapshot_trigger_moved=0
if git show "$OLD:sql/05_aggregates.sql" | grep -q '^CREATE TRIGGER events_snapshot$' && ! grep -q 'events_snapshot' sql/05_aggregates.sql; then
    snapshot_trigger_moved=1
fi
aggregates_diff=$(diff <(git show "$OLD:sql/05_aggregates.sql" | strip_snapshot_trigger | strip_define) <(strip_define <sql/05_aggregates.sql) | grep '^[<>]' || true)
fold_to_text=0
case $aggregates_diff in
    "") ;;
    "<     fold           regprocedure,"$'\n'">     fold           text,") fold_to_text=1 ;;
    *) echo "$aggregates_diff" >&2; fail "sql/05_aggregates.sql changed beyond es.aggregates.fold, es.define_aggregate and the snapshot trigger" ;;
esac
define_aggregate=$(awk '/^CREATE FUNCTION es\.define_aggregate\(/ { p = 1 } p { print } p && /^\$\$;$/ { exit }' sql/05_aggregates.sql)
old_define_aggregate=$(git show "$OLD:sql/05_aggregates.sql" | awk '/^CREATE FUNCTION es\.define_aggregate\(/ { p = 1 } p { print } p && /^\$\$;$/ { exit }')
[ -n "$define_aggregate" ] || fail "es.define_aggregate not found in sql/05_aggregates.sql"
# 01_tables.sql: es.streams.last_position (its last column), and the
# CHECK (version > 0) of es.events and es.streams dropped (versions come only
# from the append path, and each CHECK cost 4% of an append).
tables_diff=$(diff <(git show "$OLD:sql/01_tables.sql" | grep -v '^\s*--' | sed -E 's/^(\s*version\s+bigint\s+NOT NULL) CHECK \(version > 0\),$/\1,/') \
    <(grep -v '^\s*--' sql/01_tables.sql | grep -Ev '^\s*(last_position|chain_hash) ' | sed -E 's/^(\s*updated_at .*now\(\)),$/\1/') | grep '^[<>]' || true)
[ -z "$tables_diff" ] || { echo "$tables_diff" >&2; fail "sql/01_tables.sql changed beyond es.streams.last_position, chain_hash and the version CHECKs"; }
version_checks_dropped=$(($(git show "$OLD:sql/01_tables.sql" | grep -c 'CHECK (version > 0)') - $(grep -c 'CHECK (version > 0)' sql/01_tables.sql || true)))
grep -Eq '^\s*last_position\s+bigint\s+NOT NULL DEFAULT 0,?$' sql/01_tables.sql \
    || fail "es.streams.last_position is no longer 'bigint NOT NULL DEFAULT 0'"
grep -Eq '^\s*chain_hash\s+bytea$' sql/01_tables.sql \
    || fail "es.streams.chain_hash is no longer 'bytea', its last column"
# The finalize file (sql/04_guards.sql in 0.1.0, sql/11_guards.sql since it
# was renamed for running last): lines added at its end only.
old_guards=$(git show "$OLD:sql/04_guards.sql")
[ "$(head -c ${#old_guards} sql/11_guards.sql)" = "$old_guards" ] \
    || fail "sql/11_guards.sql changed other than at its end"
added_guards=$(tail -n +$(($(printf '%s\n' "$old_guards" | wc -l) + 1)) sql/11_guards.sql)

{
cat <<'EOF'
-- pg_eventsource 0.1.0 -> 0.2.0 (ALTER EXTENSION pg_eventsource UPDATE).
--
-- Made by tests/upgrade/assemble-0.1.0--0.2.0.sh from the SQL files of 0.2.0:
--   1. tables of 0.1.0: es.streams gains last_position and chain_hash (its
--      last columns, as in a fresh install), backfilled with each stream's largest global_position;
--      es.aggregates.fold becomes text (when 05_aggregates.sql says so);
--   2. functions of 0.1.0 whose body changed, replaced (same signature, so
--      their ACLs and comments stay), and sql/04_horizon.sql (es.horizon
--      dropped and created again: its columns changed);
--   3. the files 0.1.0 did not have, verbatim, in the order of the
--      extension_sql_file! graph in src/lib.rs: 06_projections, 07_subscriptions,
--      08_stats, 09_verify, 10_privileges;
--   4. what the finalize file (sql/04_guards.sql in 0.1.0, now sql/11_guards.sql)
--      gained: REVOKEs on the new functions.
-- The Rust-generated objects (#[pg_extern]) are the same in both versions.
--
-- The result must equal a fresh CREATE EXTENSION of 0.2.0: functions, tables,
-- columns in order, constraints, indexes, triggers (and ENABLE ALWAYS), views,
-- policies and RLS flags, ACLs and pg_init_privs, config tables.
-- scripts/test_upgrade.sh proves it (and prints what differs if not).

\echo Use "ALTER EXTENSION pg_eventsource UPDATE TO '0.2.0'" to load this file. \quit

-- ---------------------------------------------------------------------
-- 1. Tables of 0.1.0.
--
-- es.streams.last_position: the global_position of the stream's last
-- event; an append must place its events after it. ALTER TABLE holds an
-- ACCESS EXCLUSIVE lock on es.streams until the update commits, so no append
-- runs between the backfill and the end of the upgrade.

ALTER TABLE es.streams ADD COLUMN last_position bigint NOT NULL DEFAULT 0;

UPDATE es.streams s
   SET last_position = e.last_position
  FROM (SELECT e.stream_id, max(e.global_position) AS last_position
          FROM es.events e GROUP BY e.stream_id) e
 WHERE e.stream_id = s.stream_id;

-- es.streams.chain_hash: the SHA-256 chain over a stream's events
-- (src/store/chain.rs). Streams that exist before the upgrade have none (NULL):
-- their appends leave it NULL and es.verify() does not check them.
ALTER TABLE es.streams ADD COLUMN chain_hash bytea;
EOF
if [ "$version_checks_dropped" = 2 ]; then
cat <<'EOF'

-- The CHECK (version > 0) of es.events and es.streams: versions come only
-- from the append path (es.verify checks them), and PostgreSQL read each
-- CHECK back and compiled it on every append.
ALTER TABLE es.events DROP CONSTRAINT events_version_check;
ALTER TABLE es.streams DROP CONSTRAINT streams_version_check;
EOF
fi
if [ $fold_to_text = 1 ]; then
cat <<'EOF'

-- es.aggregates.fold: regprocedure -> text, the signature schema-qualified as
-- es.define_aggregate writes it (fold::text with search_path pg_catalog, pg_temp).
DO $$
DECLARE
    caller_path constant text := pg_catalog.current_setting('search_path');
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    ALTER TABLE es.aggregates ALTER COLUMN fold TYPE text USING fold::text;
    PERFORM pg_catalog.set_config('search_path', caller_path, true);
END
$$;
EOF
fi
printf '\n-- ---------------------------------------------------------------------\n'
printf -- '-- 2. functions and triggers of 0.1.0 that changed\n'
if [ "$define_aggregate" != "$old_define_aggregate" ]; then
    printf '\n-- sql/05_aggregates.sql\n'
    printf '%s\n' "${define_aggregate/#CREATE FUNCTION/CREATE OR REPLACE FUNCTION}"
fi
if [ "$stream_version" != "$(git show "$OLD:sql/03_read.sql" | stream_version_block)" ]; then
    printf '\n-- sql/03_read.sql\n'
    printf '%s\n' "${stream_version/#CREATE FUNCTION/CREATE OR REPLACE FUNCTION}"
fi
# The read horizon (sql/04_horizon.sql, new in 0.2.0): es.read_horizon and
# es.read_all keep their signatures (replaced in place, so objects of users
# that call them stay); es.horizon names its holder in new columns, so it is
# dropped first.
printf '\n-- sql/04_horizon.sql (es.read_horizon, es.read_all and es.horizon of 0.1.0 replaced)\n'
printf 'DROP FUNCTION es.horizon();\n\n'
sed -E 's/^CREATE FUNCTION es\.(read_horizon|read_all)\(/CREATE OR REPLACE FUNCTION es.\1(/' sql/04_horizon.sql
if [ -n "$added_append" ]; then
    printf '\n-- added to sql/02_append.sql in 0.2.0\n'
    printf '%s\n' "$added_append" | sed '/./,$!d'
fi
if [ $snapshot_trigger_moved = 1 ]; then
cat <<'EOF'

-- The snapshot trigger of 0.1.0: sql/06_projections.sql (below) creates the one
-- AFTER INSERT trigger that takes snapshots and runs inline projections.
DROP TRIGGER events_snapshot ON es.events;
DROP FUNCTION es._take_snapshot();
DROP FUNCTION es._snapshot_due(text, bigint);
EOF
fi
for f in "${NEW_FILES[@]}"; do
    printf '\n-- ---------------------------------------------------------------------\n'
    printf -- '-- 3. sql/%s.sql\n\n' "$f"
    cat "sql/$f.sql"
done
printf '\n-- ---------------------------------------------------------------------\n'
printf -- '-- 4. added to the finalize file (sql/11_guards.sql) in 0.2.0\n\n'
printf '%s\n' "$added_guards" | sed '/./,$!d'
} >"$OUT"
echo "wrote $OUT"
