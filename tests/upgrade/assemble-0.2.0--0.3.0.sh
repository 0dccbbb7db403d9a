#!/usr/bin/env bash
# Writes sql/pg_eventsource--0.2.0--0.3.0.sql from the SQL files, so the
# upgrade runs exactly the statements a fresh install runs:
#   bash tests/upgrade/assemble-0.2.0--0.3.0.sh          # write it
#   bash tests/upgrade/assemble-0.2.0--0.3.0.sh --check  # fail if it is stale
# 0.3.0 adds schema evolution: es.events.schema_version (a column with a
# constant default: no table rewrite), sql/03_evolution.sql whole, and the
# read functions that now upcast (replaced in place, or dropped and created
# where their arguments changed); and the lifecycle functions:
# es.archived_events, sql/12_lifecycle.sql whole, the guard in Rust, es.verify
# reading es.audit, the new tables' triggers and revokes; es.create_publication
# (sql/13_cdc.sql whole); es.append_multi, es.last_position, es.read_all's
# up_to_position; lz4 for snapshot states; es._horizon_position in Rust; es._append_message; the notify outbox;
# es.partition_of and es.read_partition, for partitions behind a router; es.fold's column form; no AFTER INSERT trigger on es.events;
# es.create_projection's comment (batch handlers); no CHECK constraints on es.projection_registry.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$REPO/sql/pg_eventsource--0.2.0--0.3.0.sql
python3 - "$REPO" >"$OUT.new" <<'PY'
import re, sys
repo = sys.argv[1]
def read(f): return open(f"{repo}/sql/{f}").read()
def stmt(f, start, end, replace=False):
    s = read(f)
    i = s.index(start)
    j = s.index(end, i) + len(end)
    out = s[i:j]
    if replace:
        out = out.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
    return out + "\n"
def comment(f, name):
    s = read(f)
    i = s.index(f"COMMENT ON FUNCTION {name}")
    j = s.index(";\n", i) + 2
    return s[i:j]
parts = ["""-- pg_eventsource 0.2.0 -> 0.3.0 (assembled by tests/upgrade/assemble-0.2.0--0.3.0.sh
-- from the SQL files a fresh install runs; do not edit by hand).
\\echo Use "ALTER EXTENSION pg_eventsource UPDATE TO '0.3.0'" to load this file. \\quit

-- The shape each event was written in. A constant default: PostgreSQL
-- records it in the catalog and rewrites nothing, whatever the table's size.
ALTER TABLE es.events ADD COLUMN schema_version integer NOT NULL DEFAULT 1;

-- Cold storage for archived streams (sql/12_lifecycle.sql): es.events'
-- columns, schema_version included; es.read_stream below reads it.
""",
stmt("01_tables.sql", "CREATE TABLE es.archived_events", "es.poll do not.';"), "\n",
"SELECT pg_catalog.pg_extension_config_dump('es.archived_events', '');\n",
stmt("01_tables.sql", "CREATE TABLE es.stream_lifecycle", "\n);"), "\n",
"SELECT pg_catalog.pg_extension_config_dump('es.stream_lifecycle', '');", "\n",
stmt("01_tables.sql", "-- Notifications where no relay has shared memory", "FROM PUBLIC;"), """

-- sql/03_evolution.sql
""", read("03_evolution.sql"), """
-- Read functions that upcast. read_stream and read_all gained `raw`.
DROP FUNCTION es.read_stream(text, bigint, bigint);
""",
stmt("04_read.sql", "CREATE FUNCTION es.read_stream(", "\nEND;"), "\n",
comment("04_read.sql", "es.read_stream"), "\nDROP FUNCTION es.read_all(bigint, integer, text[], text[]);\n",
stmt("05_horizon.sql", "CREATE FUNCTION es._horizon_position(", "'es_horizon_position';", True), "\n",
stmt("05_horizon.sql", "CREATE FUNCTION es.read_all(", "\n$$;"), "\n",
comment("05_horizon.sql", "es.read_all"), """
-- New reads and writes for clients that keep their own positions:
-- es.last_position, es.append_multi (their privileges below).
""",
stmt("05_horizon.sql", "CREATE FUNCTION es.last_position(", "\n$$;"), "\n",
comment("05_horizon.sql", "es.last_position"), "\n",
stmt("05_horizon.sql", "CREATE FUNCTION es.partition_of(", "\n$$;"), "\n",
comment("05_horizon.sql", "es.partition_of"), "\n",
stmt("05_horizon.sql", "CREATE FUNCTION es.read_partition(", "\n$$;"), "\n",
comment("05_horizon.sql", "es.read_partition"), "\n",
stmt("02_append.sql", "CREATE FUNCTION es.append_multi(", "'es_append_multi';"), "\n",
comment("02_append.sql", "es.append_multi"), "\nREVOKE ALL ON FUNCTION es.append_multi(jsonb) FROM PUBLIC;\n",
stmt("02_append.sql", "-- Message DB's write_message, for the pg_eventsource_message_db layer", "'es_append_message';"), "\n",
"REVOKE ALL ON FUNCTION es._append_message(text, text, text, jsonb, jsonb, bigint) FROM PUBLIC;\n", """
-- Its body was expanded to es.events' columns when created: again, with the new one.
""",
stmt("08_subscriptions.sql", "CREATE FUNCTION es._subscription_events(", "\nEND;", True), "\n",
stmt("08_subscriptions.sql", "CREATE FUNCTION es.poll(consumer text, max_count integer DEFAULT 100)", "\n$$;", True), "\n",
stmt("08_subscriptions.sql", "CREATE FUNCTION es.poll(consumer text, max_count integer, member integer, size integer)", "\n$$;", True), """
-- Readers may read the schemas, the upcasters and es.event_types.
""",
stmt("11_privileges.sql", "CREATE FUNCTION es._privileges(", "\nEND;", True), """
REVOKE ALL ON FUNCTION es.define_event_schema(text, jsonb, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es.define_upcaster(text, integer, jsonb, regprocedure, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es._evolution_changed() FROM PUBLIC;

-- The deliberate exceptions to append-only. The guard becomes the Rust
-- function that knows the sanction (same name and signature: the triggers
-- that call it stay).
""",
stmt("14_guards.sql", "CREATE FUNCTION es._forbid_change()", "'es_forbid_change';", True), """
-- sql/12_lifecycle.sql
""", read("12_lifecycle.sql"), """
-- es.load_at reads archived events, and knows what truncation removed.
""",
stmt("06_aggregates.sql", "-- States kept in snapshots are compressed with lz4", "\nEND\n$$;"), "\n",
stmt("06_aggregates.sql", "CREATE FUNCTION es._version_at(", "\n$$;"), "\n",
stmt("06_aggregates.sql", "CREATE FUNCTION es.load_at(", "\nEND;", True), """
-- es.fold's column form.
""",
stmt("06_aggregates.sql", "CREATE FUNCTION es._fold_columns_transition(", "events in any order.';"), """

-- Inline projections and snapshots run in the append path (the library), no
-- longer in an AFTER INSERT trigger.
DROP TRIGGER events_after_insert ON es.events;
DROP FUNCTION es._after_insert();
DROP FUNCTION es._after_insert_due(text, bigint, text);

-- es.verify accepts exactly the holes es.audit explains.
""",
stmt("10_verify.sql", "CREATE FUNCTION es.verify(", "\n$$;", True), "\n",
stmt("14_guards.sql", "CREATE TRIGGER archived_events_no_update_delete", "ENABLE ALWAYS TRIGGER audit_no_truncate;"), "\n",
stmt("14_guards.sql", "-- the deliberate exceptions to append-only: es.grant_admin opens them", "es.unarchive_stream(text) FROM PUBLIC;"), "\n",
stmt("14_guards.sql", "REVOKE ALL ON FUNCTION es._remove_events(", "es._carry_base_snapshots() FROM PUBLIC;"), """
-- sql/13_cdc.sql
""", read("13_cdc.sql"), """
-- Batch handlers (es.events[]) are accepted by es.create_projection.
""",
comment("07_projections.sql", "es.create_projection"), """
-- The projection registry has no CHECK constraints (sql/07_projections.sql):
-- every catch-up writes its row, and PostgreSQL parses a table's CHECK
-- constraints again for every statement that writes it.
ALTER TABLE es.projection_registry
    DROP CONSTRAINT projection_registry_kind_check,
    DROP CONSTRAINT projection_registry_mode_check,
    DROP CONSTRAINT projection_registry_status_check,
    DROP CONSTRAINT projection_registry_check,
    DROP CONSTRAINT projection_registry_check1;
""",
]
sys.stdout.write("".join(parts))
PY
if [ "${1:-}" = --check ]; then
    if ! cmp -s "$OUT" "$OUT.new"; then
        diff -u "$OUT" "$OUT.new" | head -n 40 >&2 || true
        rm -f "$OUT.new"
        echo "sql/pg_eventsource--0.2.0--0.3.0.sql is stale: run bash tests/upgrade/assemble-0.2.0--0.3.0.sh" >&2
        exit 1
    fi
    rm -f "$OUT.new"
else
    mv "$OUT.new" "$OUT"
fi
