#!/usr/bin/env bash
# The documentation cannot drift from the code (part of scripts/test.sh):
#   1. every src/**/*.rs, sql/*.sql and router/*.sql is named in docs/architecture.md;
#   2. every SQL function of the extension whose name does not start with "_"
#      appears (as es.NAME) in docs/reference/, and every one of the router
#      (pg_eventsource_router) in docs/reference/partitions.md;
#   3. every code block marked `sql runnable` in docs/ runs: each page's blocks
#      in order, in a fresh database with the extension (database es_docs).
# Needs the private cluster running with the extension installed
# (scripts/run.sh or scripts/test.sh start it). Prints "ok - ..." or
# "FAILED - ..." per check and ends with "docs: N passed, M failed".
source "$(dirname "$0")/common.sh"
set +e
cd "$REPO" || exit 1
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
fail() { failed=$((failed + 1)); echo "FAILED - $*"; }

log "1. every source file is named in docs/architecture.md"
while IFS= read -r f; do
    if grep -qF "\`$f\`" docs/architecture.md; then ok "$f"; else fail "$f is not named in docs/architecture.md"; fi
done < <(find src sql router -type f \( -name '*.rs' -o -name '*.sql' \) | sort)

log "2. every SQL function of the extension is in docs/reference/"
recreate_db es_docs >/dev/null 2>&1
es_psql es_docs -q -c "CREATE EXTENSION pg_eventsource" >/dev/null || fail "CREATE EXTENSION in es_docs"
while IFS= read -r fn; do
    if grep -qE "es\.$fn\b" docs/reference/*.md; then ok "es.$fn"; else fail "es.$fn is not in docs/reference/"; fi
done < <(es_psql es_docs -qtA -c "
    SELECT DISTINCT p.proname FROM pg_catalog.pg_proc p
      JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
      JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_eventsource'
     WHERE p.proname !~ '^_' ORDER BY 1")

log "2b. every SQL function of the router (pg_eventsource_router) is in docs/reference/partitions.md"
recreate_db es_docs_router >/dev/null 2>&1
es_psql es_docs_router -q -c "SET client_min_messages = warning" -c "CREATE EXTENSION pg_eventsource_router CASCADE" >/dev/null \
    || fail "CREATE EXTENSION pg_eventsource_router in es_docs_router"
while IFS= read -r fn; do
    if grep -qE "es\.$fn\b" docs/reference/partitions.md; then ok "router es.$fn"; else fail "router es.$fn is not in docs/reference/partitions.md"; fi
done < <(es_psql es_docs_router -qtA -c "
    SELECT DISTINCT p.proname FROM pg_catalog.pg_proc p
      JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
      JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_eventsource_router'
     WHERE p.proname !~ '^_' AND p.pronamespace = 'es'::regnamespace ORDER BY 1")
es_psql postgres -q -c "DROP DATABASE IF EXISTS es_docs_router WITH (FORCE)" >/dev/null 2>&1

log "3. the runnable examples run"
tmp=$(mktemp -d)
for page in $(find docs -name '*.md' | sort); do
    # Each block marked `sql runnable` into its own file, in page order.
    awk -v dir="$tmp" -v base="$(echo "$page" | tr '/' '_')" '
        /^```sql runnable/ { n++; out = sprintf("%s/%s.%03d.sql", dir, base, n); inb = 1; next }
        inb && /^```/ { inb = 0; close(out); next }
        inb { print > out }' "$page"
    blocks=$(ls "$tmp"/"$(echo "$page" | tr '/' '_')".*.sql 2>/dev/null)
    [ -n "$blocks" ] || continue
    recreate_db es_docs >/dev/null 2>&1
    es_psql es_docs -q -c "CREATE EXTENSION pg_eventsource" >/dev/null
    i=0
    for b in $blocks; do
        i=$((i + 1))
        if out=$(es_psql es_docs -q -f "$b" 2>&1 >/dev/null); then
            ok "$page, runnable block $i"
        else
            fail "$page, runnable block $i: $out"
        fi
    done
done
rm -rf "$tmp"
es_psql postgres -q -c "DROP DATABASE IF EXISTS es_docs WITH (FORCE)" >/dev/null 2>&1

echo "docs: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
