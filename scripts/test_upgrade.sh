#!/usr/bin/env bash
# Upgrade test: the previous released version, upgraded in place with
# ALTER EXTENSION pg_eventsource UPDATE, keeps its data and ends up with the
# same schema as a fresh install of this version.
#
#   bash scripts/test_upgrade.sh
#
#  1. Copies the system PostgreSQL 15 to target/upgrade-pg (relocatable), so
#     nothing is ever installed into the system PostgreSQL; its own cluster
#     under target/upgrade-cluster, port UPGRADE_PGPORT (28819), own socket dir.
#  2. Builds the previous version from git (tag v0.2.0, or its commit) with
#     `cargo pgrx package` in target/upgrade-old (own CARGO_TARGET_DIR; the
#     packaged files are cached there, keyed by commit, so later runs skip it).
#  3. Installs it, CREATE EXTENSION ... VERSION '0.2.0', writes data with its
#     API (tests/upgrade/write_0.2.0.sql) and records what the store
#     answers (tests/upgrade/data.sql).
#  4. Stops, installs this version (`cargo pgrx install --release`, the same
#     build as scripts/common.sh's install_extension, so $REPO/target is
#     reused), starts with the library preloaded and the background worker on
#     the upgraded database; checks the new library still answers the old
#     schema as before (until the update runs, it serves it); runs
#     ALTER EXTENSION pg_eventsource UPDATE.
#  5. Compares the schema of the upgraded database with a fresh
#     CREATE EXTENSION pg_eventsource, section by section
#     (tests/upgrade/schema.sql), printing a unified diff of what differs.
#  6. Checks the data is unchanged, es.verify(), the last_position backfill,
#     appends, and the new features (tests/upgrade/after_0.3.0.sql); the
#     worker catches up an async projection.
#
# Prints "ok - ..." / "FAILED - ..." per check and ends with one line
# "upgrade: N passed, M failed"; exits non-zero on any failure. The cluster
# is stopped at the end, also on failure. Logs: target/upgrade-logs/.
# Environment: UPGRADE_PGPORT (28819).
#
# Next release: point FROM_TAG/FROM_VERSION at the release before it, and add
# tests/upgrade/write_<old>.sql and after_<new>.sql; the schema comparison and
# data.sql stay as they are (data.sql may only use the old version's API).
source "$(dirname "$0")/common.sh"
set +e

FROM_TAG=v0.2.0
FROM_COMMIT_RECORDED=c19e18b6d5a5f136ac2b3ae6f14bd56678b8985d   # v0.2.0, in case the tag is missing
FROM_VERSION=0.2.0
NEW_VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$REPO/Cargo.toml" | head -n 1)

UP=$REPO/target/upgrade-pg
PG_BIN=$UP/lib/postgresql/$PG_MAJOR/bin
PG_CONFIG=$PG_BIN/pg_config
ES_PGPORT=${UPGRADE_PGPORT:-28819}
ES_PGDATA=$REPO/target/upgrade-cluster/data
ES_PGSOCK=$REPO/target/upgrade-cluster/run
ES_PGLOG=$REPO/target/upgrade-cluster/postgres.log
OLD=$REPO/target/upgrade-old
LOGS=$REPO/target/upgrade-logs
T=$REPO/tests/upgrade
DB_UP=es_upgraded
DB_FRESH=es_fresh
DB_BIG=es_upgraded_big
unset RUST_BACKTRACE
export PGOPTIONS='-c client_min_messages=warning'

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
fail() { failed=$((failed + 1)); echo "FAILED - $*"; }
summary() { echo "upgrade: $passed passed, $failed failed"; }
# Fatal: the remaining checks cannot run.
abort() {
    fail "$*"
    summary
    exit 1
}
trap 'stop_cluster' EXIT

# Counts the "ok - " / "FAILED - " lines a SQL file printed, echoing them.
tally() {
    local line
    while IFS= read -r line; do
        case $line in
            "ok - "*) passed=$((passed + 1)); echo "$line" ;;
            "FAILED - "*) failed=$((failed + 1)); echo "$line" ;;
            "") ;;
            *) echo "    $line" ;;
        esac
    done <"$1"
}

# psql on the upgrade cluster, quiet, stopping at the first error.
q() { local db=$1; shift; es_psql "$db" -q "$@"; }

copy_postgres() {
    local sys=/usr/lib/postgresql/$PG_MAJOR
    if [ -x "$PG_CONFIG" ] && [ "$("$PG_CONFIG" --version)" = "$("$sys/bin/pg_config" --version)" ] \
        && [ "$("$PG_CONFIG" --sharedir)" = "$UP/share/postgresql/$PG_MAJOR" ]; then
        return 0
    fi
    log "copying PostgreSQL $PG_MAJOR to $UP"
    rm -rf "$UP"
    mkdir -p "$UP/lib/postgresql" "$UP/share/postgresql" "$UP/include"
    cp -a "$sys" "$UP/lib/postgresql/" &&
        cp -a "/usr/share/postgresql/$PG_MAJOR" "$UP/share/postgresql/" &&
        ln -sfn /usr/include/postgresql "$UP/include/postgresql"
}

# Removes every file of pg_eventsource from the copy.
clear_extension_files() {
    rm -f "$("$PG_CONFIG" --sharedir)"/extension/pg_eventsource* "$("$PG_CONFIG" --pkglibdir)"/pg_eventsource.so
}

# Builds the previous version once (cached by commit) and installs its files.
install_previous() {
    local commit pkg
    commit=$(git -C "$REPO" rev-parse -q --verify "$FROM_TAG^{commit}" 2>/dev/null) ||
        commit=$(git -C "$REPO" rev-parse -q --verify "$FROM_COMMIT_RECORDED^{commit}" 2>/dev/null) ||
        { echo "neither tag $FROM_TAG nor commit $FROM_COMMIT_RECORDED is in this clone (git fetch --tags)"; return 1; }
    pkg=$OLD/pkg-$commit
    if [ ! -f "$pkg/.complete" ]; then
        log "building $FROM_TAG ($commit) with cargo pgrx package (cached in $pkg)"
        rm -rf "$OLD/src" "$pkg"
        mkdir -p "$OLD/src" "$LOGS"
        git -C "$REPO" archive "$commit" | tar -x -C "$OLD/src" || return 1
        # The copy's pg_config: the package mirrors its paths under $pkg.
        if ! (cd "$OLD/src" && CARGO_TARGET_DIR=$OLD/target \
                cargo pgrx package --pg-config "$PG_CONFIG" --out-dir "$pkg") >"$LOGS/build-old.log" 2>&1; then
            tail -n 30 "$LOGS/build-old.log"
            return 1
        fi
        touch "$pkg/.complete"
    fi
    clear_extension_files
    local f n=0
    while IFS= read -r f; do
        case $f in
            *.so) cp "$f" "$("$PG_CONFIG" --pkglibdir)/" ;;
            *) cp "$f" "$("$PG_CONFIG" --sharedir)/extension/" ;;
        esac
        n=$((n + 1))
    done < <(find "$pkg" -type f \( -name 'pg_eventsource.so' -o -name 'pg_eventsource.control' -o -name 'pg_eventsource--*.sql' \))
    [ "$n" -ge 3 ] || { echo "the package in $pkg is incomplete"; return 1; }
    grep -q "default_version = '$FROM_VERSION'" "$("$PG_CONFIG" --sharedir)/extension/pg_eventsource.control" ||
        { echo "the package of $FROM_TAG is not version $FROM_VERSION"; return 1; }
}

# Installs this version's build (release, default features: what
# install_extension builds, so $REPO/target/release is reused).
install_current() {
    log "installing pg_eventsource $NEW_VERSION into $UP"
    if ! (cd "$REPO" && cargo pgrx install --release --pg-config "$PG_CONFIG") >"$LOGS/install-new.log" 2>&1; then
        tail -n 30 "$LOGS/install-new.log"
        return 1
    fi
}

# start_upgrade_cluster [preload]: starts the cluster (initdb when needed).
start_upgrade_cluster() {
    local opts="-p $ES_PGPORT -k $ES_PGSOCK -c listen_addresses=''"
    [ "${1:-}" = preload ] &&
        opts+=" -c shared_preload_libraries=pg_eventsource -c es.worker_databases=$DB_UP -c es.worker_interval=200"
    mkdir -p "$(dirname "$ES_PGDATA")" "$ES_PGSOCK"
    chown postgres: "$(dirname "$ES_PGDATA")" "$ES_PGSOCK"
    if [ ! -f "$ES_PGDATA/PG_VERSION" ]; then
        as_postgres "$PG_BIN/initdb" -D "$ES_PGDATA" --auth=trust --username=postgres -E UTF8 --locale=C.UTF-8 >/dev/null || return 1
    fi
    (
        # the server must not inherit the caller's open files (see common.sh)
        for fd in /proc/$BASHPID/fd/*; do
            fd=${fd##*/}
            [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
        done
        as_postgres "$PG_BIN/pg_ctl" -D "$ES_PGDATA" -l "$ES_PGLOG" -w -t 60 -o "$opts" start >/dev/null
    ) || { tail -n 20 "$ES_PGLOG"; return 1; }
}

START=$SECONDS
mkdir -p "$LOGS"
rm -f "$LOGS"/*.out "$LOGS"/*.diff

log "set-up"
setup_machine >/dev/null || abort "set-up of the machine"
[ -n "$NEW_VERSION" ] || abort "no version in Cargo.toml"
[ -f "$REPO/sql/pg_eventsource--$FROM_VERSION--$NEW_VERSION.sql" ] \
    || abort "sql/pg_eventsource--$FROM_VERSION--$NEW_VERSION.sql exists"
if bash "$T/assemble-$FROM_VERSION--$NEW_VERSION.sh" --check; then
    ok "sql/pg_eventsource--$FROM_VERSION--$NEW_VERSION.sql is what the assembler writes from sql/"
else
    fail "sql/pg_eventsource--$FROM_VERSION--$NEW_VERSION.sql is stale"
fi
stop_cluster
copy_postgres || abort "copy PostgreSQL to $UP"
# A fresh cluster each run.
rm -rf "$(dirname "$ES_PGDATA")"

log "version $FROM_VERSION: build, install, write data"
install_previous || abort "build and install $FROM_TAG"
ok "built and installed $FROM_TAG ($FROM_VERSION) into the copy"
start_upgrade_cluster || abort "start PostgreSQL (port $ES_PGPORT)"
recreate_db "$DB_UP"
q "$DB_UP" -c "CREATE EXTENSION pg_eventsource VERSION '$FROM_VERSION'" \
    && ok "CREATE EXTENSION pg_eventsource VERSION '$FROM_VERSION'" \
    || abort "CREATE EXTENSION pg_eventsource VERSION '$FROM_VERSION'"
# A store of a million events, for the update's cost: 0.3.0 adds a column
# with a constant default, which must not rewrite es.events.
recreate_db "$DB_BIG"
q "$DB_BIG" -c "CREATE EXTENSION pg_eventsource VERSION '$FROM_VERSION'" \
    -c "SELECT count(*) FROM (SELECT es.append_events('big-' || s, (SELECT jsonb_agg(jsonb_build_object('type', 'Tick',
            'data', jsonb_build_object('n', i))) FROM generate_series(1, 10000) i)) FROM generate_series(1, 100) s) x" \
    >"$LOGS/big.out" 2>&1 || { cat "$LOGS/big.out"; abort "write a million events with $FROM_VERSION"; }
ok "a million events written with $FROM_VERSION (database $DB_BIG)"
if q "$DB_UP" -f "$T/write_$FROM_VERSION.sql" >"$LOGS/write.out" 2>&1; then
    tally "$LOGS/write.out"
else
    tally "$LOGS/write.out"
    abort "write_$FROM_VERSION.sql stopped on an error (above)"
fi
q "$DB_UP" -f "$T/data.sql" >"$LOGS/data-before.out" 2>&1 || { cat "$LOGS/data-before.out"; abort "data.sql before the upgrade"; }
stop_cluster

log "version $NEW_VERSION: install, ALTER EXTENSION pg_eventsource UPDATE"
install_current || abort "install $NEW_VERSION (cargo pgrx install)"
ok "installed $NEW_VERSION into the copy"
start_upgrade_cluster preload || abort "start PostgreSQL with pg_eventsource preloaded"
# Until ALTER EXTENSION UPDATE runs, the old objects are served by the new
# library: the old API must still answer as before.
q "$DB_UP" -f "$T/data.sql" >"$LOGS/data-new-library.out" 2>&1
if diff -u --label "$FROM_VERSION library" --label "$NEW_VERSION library, not yet updated" \
        "$LOGS/data-before.out" "$LOGS/data-new-library.out" >"$LOGS/data-new-library.diff"; then
    ok "the $NEW_VERSION library answers the $FROM_VERSION schema as before, until ALTER EXTENSION UPDATE"
else
    fail "the $NEW_VERSION library answers the $FROM_VERSION schema differently (before ALTER EXTENSION UPDATE):"
    if grep -qE '^\+.*(ERROR|HINT|DETAIL):' "$LOGS/data-new-library.diff"; then
        grep -E '^\+.*(ERROR|HINT|DETAIL):' "$LOGS/data-new-library.diff" | head -n 5 | sed 's/^+/    /'
    else
        head -n 30 "$LOGS/data-new-library.diff" | sed 's/^/    /'
    fi
fi
if q "$DB_UP" -c "ALTER EXTENSION pg_eventsource UPDATE" >"$LOGS/alter.out" 2>&1; then
    ok "ALTER EXTENSION pg_eventsource UPDATE"
else
    sed 's/^/    /' "$LOGS/alter.out"
    abort "ALTER EXTENSION pg_eventsource UPDATE"
fi
big_file() { q "$DB_BIG" -Atc "SELECT pg_relation_filenode('es.events')"; }
file_before=$(big_file)
t0=$EPOCHREALTIME
if q "$DB_BIG" -c "ALTER EXTENSION pg_eventsource UPDATE" >"$LOGS/alter-big.out" 2>&1; then
    ms=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", (b - a) * 1000 }')
    if [ "$(big_file)" = "$file_before" ] \
        && [ "$(q "$DB_BIG" -Atc "SELECT count(*) FILTER (WHERE schema_version = 1) = 1000000 FROM es.events")" = t ]; then
        ok "ALTER EXTENSION UPDATE of a million-event store kept es.events' file (no rewrite; took $ms ms)"
    else
        fail "ALTER EXTENSION UPDATE of the million-event store rewrote es.events or lost events"
    fi
else
    sed 's/^/    /' "$LOGS/alter-big.out"
    fail "ALTER EXTENSION pg_eventsource UPDATE of the million-event store"
fi
v=$(q "$DB_UP" -Atc "SELECT extversion FROM pg_extension WHERE extname = 'pg_eventsource'")
[ "$v" = "$NEW_VERSION" ] && ok "extversion is $NEW_VERSION" || fail "extversion is $NEW_VERSION (got '$v')"

log "schema: upgraded against a fresh CREATE EXTENSION"
recreate_db "$DB_FRESH"
q "$DB_FRESH" -c "CREATE EXTENSION pg_eventsource" || abort "CREATE EXTENSION pg_eventsource (fresh $NEW_VERSION)"
for section in extension members schemas functions relations columns constraints indexes triggers \
               views policies types init_privs dependencies rules; do
    errors=
    for db in "$DB_UP" "$DB_FRESH"; do
        q "$db" -At -v section="$section" -f "$T/schema.sql" >"$LOGS/schema-$section.$db.out" 2>&1 ||
            errors+="$db: $(grep -m1 ERROR "$LOGS/schema-$section.$db.out") "
    done
    if [ -n "$errors" ]; then
        fail "schema $section: schema.sql failed: $errors"
    elif [ ! -s "$LOGS/schema-$section.$DB_FRESH.out" ] && [ "$section" != rules ] && [ "$section" != policies ]; then
        fail "schema $section: the fresh install lists nothing ($LOGS/schema-$section.$DB_FRESH.out)"
    elif diff -u --label "upgraded ($DB_UP)" --label "fresh ($DB_FRESH)" \
            "$LOGS/schema-$section.$DB_UP.out" "$LOGS/schema-$section.$DB_FRESH.out" >"$LOGS/schema-$section.diff"; then
        ok "schema $section: upgraded = fresh ($(grep -c '^[^ ]' "$LOGS/schema-$section.$DB_FRESH.out") objects)"
    else
        fail "schema $section: upgraded differs from fresh (- upgraded, + fresh):"
        sed 's/^/    /' "$LOGS/schema-$section.diff"
    fi
done

log "data after the upgrade"
q "$DB_UP" -f "$T/data.sql" >"$LOGS/data-after.out" 2>&1
if diff -u --label "before the upgrade" --label "after the upgrade" \
        "$LOGS/data-before.out" "$LOGS/data-after.out" >"$LOGS/data.diff"; then
    ok "events, streams, snapshots, definitions, es.load/load_at/fold/read_all/read_stream answers unchanged ($(wc -l <"$LOGS/data-after.out") lines)"
else
    fail "data or read answers changed by the upgrade:"
    head -n 60 "$LOGS/data.diff" | sed 's/^/    /'
fi

log "$NEW_VERSION on the upgraded database"
q "$DB_UP" -v version="$NEW_VERSION" -f "$T/after_$NEW_VERSION.sql" >"$LOGS/after.out" 2>&1
rc=$?
tally "$LOGS/after.out"
[ $rc -eq 0 ] || fail "after_$NEW_VERSION.sql stopped on an error (above)"

# The background worker (started before the update, when the database was
# still at the old version) catches up the async projection made above.
caught_up=
for _ in $(seq 1 150); do
    caught_up=$(q "$DB_UP" -Atc "SELECT lag = 0 AND status = 'running' FROM es.projections WHERE name = 'type_counts'" 2>/dev/null)
    [ "$caught_up" = t ] && break
    sleep 0.2
done
if [ "$caught_up" = t ]; then
    d=$(q "$DB_UP" -Atc "SELECT count(*) FROM ((SELECT event_type, n FROM public.type_counts
                             EXCEPT SELECT event_type, count(*) FROM es.events GROUP BY 1)
                     UNION ALL (SELECT event_type, count(*) FROM es.events GROUP BY 1
                             EXCEPT SELECT event_type, n FROM public.type_counts)) x")
    [ "$d" = 0 ] && ok "the background worker caught up an async projection over the upgraded events" \
        || fail "the background worker's async projection differs from the events ($d rows)"
else
    fail "the background worker did not catch up the async projection in 30 s: $(q "$DB_UP" -Atc \
        "SELECT format('lag %s, status %s, error %s', lag, status, last_error) FROM es.projections WHERE name = 'type_counts'")"
fi

# Checks that remove or move events run last (after the worker's comparison).
if [ -f "$T/after_${NEW_VERSION}_lifecycle.sql" ]; then
    q "$DB_UP" -v version="$NEW_VERSION" -f "$T/after_${NEW_VERSION}_lifecycle.sql" >"$LOGS/after-lifecycle.out" 2>&1
    rc=$?
    tally "$LOGS/after-lifecycle.out"
    [ $rc -eq 0 ] || fail "after_${NEW_VERSION}_lifecycle.sql stopped on an error (above)"
fi

stop_cluster
echo "($((SECONDS - START)) s; logs in $LOGS)"
summary
[ "$failed" -eq 0 ]
