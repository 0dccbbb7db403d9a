#!/usr/bin/env bash
# Runs the examples against the private cluster (scripts/common.sh) and checks
# what they did:
#   examples/demo.sql, bank.sql, commerce.sql, each in a fresh database, then
#   examples/tests/{bank,commerce}_checks.sql there; the three bank clients
#   (examples/clients/{python,node,rust}) in a fresh database with bank.sql,
#   each followed by examples/tests/client_checks.sql on its account;
#   examples/partitions.sql through a router (ex_router over ex_part0..3, as
#   scripts/run.sh partitions sets it up) with examples/tests/partitions_checks.sql,
#   then the Python consumer of every partition (partitions_consumer.py) into
#   ex_part_consumer: caught up, more appends, killed in the middle of a page,
#   resumed; its read model checked against the router and the partitions.
# Every check prints "ok - ..." or "FAIL - ..."; an ERROR counts as a failure.
# Ends with "examples: N passed, M failed"; exits non-zero when M > 0.
# Installs what the clients need (python3-venv + psycopg, nodejs + npm + pg,
# crates) when missing. Logs: target/test-logs/examples/.
source "$(dirname "$0")/common.sh"
set +e

OUT=$REPO/target/test-logs/examples
mkdir -p "$OUT"
passed=0
failed=0
failures=()

pass() { passed=$((passed + 1)); echo "ok - $1"; }
fail() { failed=$((failed + 1)); failures+=("$1"); echo "FAIL - $1"; }

# Count a checks file's output: "ok - " and "FAIL - " lines, and ERRORs.
count_checks() {
    local log=$1 line
    while IFS= read -r line; do
        case "$line" in
            "ok - "*) pass "${line#ok - }" ;;
            "FAIL - "*) fail "${line#FAIL - }" ;;
            *ERROR:*) fail "error in $(basename "$log"): ${line#*ERROR:  }" ;;
        esac
    done < "$log"
}

# run_checks DB FILE [psql args...]
run_checks() {
    local db=$1 file=$2; shift 2
    local log="$OUT/$db.${CHECKS_TAG:-}$(basename "$file" .sql).log"
    es_psql "$db" -v ON_ERROR_STOP=0 "$@" -f "$file" > "$log" 2>&1
    count_checks "$log"
}

# run_example NAME DB: the example in a fresh database; a pass when psql exits 0
run_example() {
    local name=$1 db=$2 log="$OUT/$2.$1.log"
    recreate_db "$db" >/dev/null 2>&1
    if es_psql "$db" -f "$REPO/examples/$name.sql" > "$log" 2>&1; then
        pass "examples/$name.sql runs in a fresh database"
        return 0
    fi
    fail "examples/$name.sql runs in a fresh database (see $log)"
    tail -n 5 "$log" | sed 's/^/    /'
    return 1
}

# The cluster, with the extension available (install it when it is not).
start_cluster >/dev/null
if ! es_psql postgres -qtA -c "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_eventsource'" 2>/dev/null | grep -q 1; then
    setup_machine && install_extension && start_cluster >/dev/null \
        || { echo "could not install the extension"; echo "examples: 0 passed, 1 failed"; exit 1; }
fi

log "examples/demo.sql, bank.sql, commerce.sql"
run_example demo ex_demo
run_example bank ex_bank && run_checks ex_bank "$REPO/examples/tests/bank_checks.sql"
run_example commerce ex_commerce && run_checks ex_commerce "$REPO/examples/tests/commerce_checks.sql"

log "bank clients: python, node, rust"
export PGHOST=127.0.0.1 PGPORT=$ES_PGPORT PGUSER=postgres PGDATABASE=ex_clients
WORKERS=8
OPERATIONS=12
INITIAL=50.00
if run_example bank ex_clients; then
    for client in python node rust; do
        log "client: $client"
        clog="$OUT/client-$client.log"
        timeout 1800 bash "$REPO/examples/clients/$client/run.sh" \
            --workers $WORKERS --operations $OPERATIONS --initial $INITIAL > "$clog" 2>&1
        rc=$?
        grep -E '^(opened|accepted|notifications|lowest|final balance|OK|FAILED)' "$clog" | sed 's/^/    /'
        result=$(grep -E "^RESULT client=$client " "$clog" | tail -n 1)
        if [ $rc -eq 0 ] && [ -n "$result" ]; then
            pass "$client client exits 0 and reports its result"
        else
            fail "$client client exits 0 and reports its result (exit $rc, see $clog)"
            tail -n 15 "$clog" | sed 's/^/    /'
            [ -n "$result" ] || continue
        fi
        # RESULT key=value ... -> psql variables
        vars=(-v initial=$INITIAL -v ops=$((WORKERS * OPERATIONS)))
        for kv in ${result#RESULT }; do
            vars+=(-v "$kv")
        done
        if [ "$client" = python ]; then
            accepted=$(sed -E 's/.* accepted=([0-9]+).*/\1/' <<<"$result")
            notifications=$(sed -E 's/.* notifications=([0-9]+).*/\1/' <<<"$result")
            if [ "$notifications" = "$((accepted + 1))" ]; then
                pass "python client: one es_events notification per committed command ($notifications)"
            else
                fail "python client: one es_events notification per committed command: got $notifications for $((accepted + 1))"
            fi
            n_lines=$(grep -c '^  notify: committed 1 event(s) ' "$clog")
            if [ "$n_lines" = "$notifications" ]; then
                pass "python client: printed each append as it committed ($n_lines lines)"
            else
                fail "python client: printed $n_lines notification lines for $notifications notifications"
            fi
        fi
        CHECKS_TAG=$client. run_checks ex_clients "$REPO/examples/tests/client_checks.sql" "${vars[@]}"
    done
fi

log "partitions: examples/partitions.sql through a router, and a consumer of every partition"
# The layout of scripts/run.sh partitions under other names: ex_part0..ex_part3,
# 16 logical partitions (p in ex_part<p % 4>), the router ex_router; the
# consumer's read model in ex_part_consumer.
PART_ROUTER=ex_router
PART_RM=ex_part_consumer
PART_ROUTER_DSN="host=127.0.0.1 port=$ES_PGPORT user=postgres dbname=$PART_ROUTER"
PART_RM_DSN="host=127.0.0.1 port=$ES_PGPORT user=postgres dbname=$PART_RM"
PYVENV=${ES_PYTHON_VENV:-$REPO/target/examples/python-venv}

setup_partitions() {
    local i p connstrs=""
    # the router first: dropping it ends its sessions, which hold connections to the partitions
    es_psql postgres -q -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $PART_ROUTER WITH (FORCE)" || return 1
    for i in 0 1 2 3; do
        recreate_db "ex_part$i" || return 1
        es_psql "ex_part$i" -q -c "SET client_min_messages = warning" -c "CREATE EXTENSION pg_eventsource" || return 1
    done
    recreate_db "$PART_ROUTER" || return 1
    es_psql "$PART_ROUTER" -q -c "SET client_min_messages = warning" \
        -c "CREATE EXTENSION pg_eventsource_router CASCADE" || return 1
    for p in $(seq 0 15); do
        connstrs+="${connstrs:+, }'host=127.0.0.1 port=$ES_PGPORT dbname=ex_part$((p % 4))'"
    done
    es_psql "$PART_ROUTER" -qtA -c "SELECT es.configure_partitions(ARRAY[$connstrs])"
}

# es.read_all holds back events while an older transaction runs anywhere in
# the cluster: before a consumer run that must catch up, wait until every
# committed event of each partition database is readable.
wait_partition_horizons() {
    local i out
    for i in 0 1 2 3; do
        out=$(es_psql "ex_part$i" -qtA -f "$REPO/examples/tests/lib.sql" -c "SELECT pg_temp.wait_horizon(30)" 2>&1)
        case "$out" in
            "ok - "*) ;;
            *) fail "partitions: ex_part$i's read horizon: $out"; return 1 ;;
        esac
    done
}

# part_consumer LOG [args...]: the consumer, bounded in time; returns its exit status
part_consumer() {
    local log=$1; shift
    # in a subshell, so that the shell's "Killed" report of the crash run goes to the log
    ( timeout 300 "$PYVENV/bin/python" "$REPO/examples/clients/python/partitions_consumer.py" \
        --router "$PART_ROUTER_DSN" --read-model "$PART_RM_DSN" "$@"; exit $? ) > "$log" 2>&1
}

# result_field LOG KEY: KEY's value on the consumer's RESULT line
result_field() {
    grep -E '^RESULT ' "$1" | tail -n 1 | grep -oE "(^| )$2=[0-9]+" | cut -d= -f2
}

# the events of the accounts over all partition databases, and those the read model handled
store_account_events() {
    local i n total=0
    for i in 0 1 2 3; do
        n=$(es_psql "ex_part$i" -qtA -c "SELECT count(*) FROM es.events WHERE stream_type = 'account'") || return 1
        total=$((total + n))
    done
    echo "$total"
}
rm_handled() { es_psql "$PART_RM" -qtA -c "SELECT count(*) FROM consumer.handled"; }

plog="$OUT/$PART_ROUTER.partitions.log"
if ! setup_partitions > "$OUT/$PART_ROUTER.setup.log" 2>&1; then
    fail "partitions: four partition databases and a router with 16 logical partitions (see $OUT/$PART_ROUTER.setup.log)"
    tail -n 5 "$OUT/$PART_ROUTER.setup.log" | sed 's/^/    /'
elif ! es_psql "$PART_ROUTER" -f "$REPO/examples/partitions.sql" > "$plog" 2>&1; then
    pass "partitions: four partition databases and a router with 16 logical partitions"
    fail "examples/partitions.sql runs through the router (see $plog)"
    tail -n 5 "$plog" | sed 's/^/    /'
else
    pass "partitions: four partition databases and a router with 16 logical partitions"
    pass "examples/partitions.sql runs through the router"
    if grep -q 'cannot run inside a transaction block on a router' "$plog" \
       && grep -q '^the transfer in BEGIN ... COMMIT was refused with SQLSTATE 25001$' "$plog"; then
        pass "partitions.sql: the transfer inside BEGIN ... COMMIT is refused with 25001"
    else
        fail "partitions.sql: the transfer inside BEGIN ... COMMIT is refused with 25001 (not in $plog)"
    fi
    run_checks "$PART_ROUTER" "$REPO/examples/tests/partitions_checks.sql"
    # a command that lost a race: the partition's 40001 comes back through the router
    out=$(es_psql "$PART_ROUTER" -v VERBOSITY=verbose -c "SET client_min_messages = warning" \
              -c "SELECT es.append_event('account-bob', 'MoneyDeposited', '{\"amount\": 1}', expected_version => 1)" 2>&1)
    if [[ "$out" == *"ERROR:  40001:"* ]]; then
        pass "partitions: an append with a stale expected version fails with the partition's 40001"
    else
        fail "partitions: an append with a stale expected version fails with the partition's 40001: $out"
    fi

    # The consumer: psycopg 3 in the Python client's venv (its run.sh makes it;
    # --help stops bank_workers.py before it connects).
    "$PYVENV/bin/python" -c 'import psycopg' 2>/dev/null \
        || bash "$REPO/examples/clients/python/run.sh" --help > "$OUT/python-venv.log" 2>&1
    if ! "$PYVENV/bin/python" -c 'import psycopg' 2>/dev/null; then
        fail "partitions consumer: a Python venv with psycopg 3 in $PYVENV (see $OUT/python-venv.log)"
    elif ! recreate_db "$PART_RM" > "$OUT/$PART_RM.setup.log" 2>&1; then
        fail "partitions consumer: a fresh read-model database $PART_RM (see $OUT/$PART_RM.setup.log)"
    else
        # 1. from nothing to caught up
        wait_partition_horizons
        clog="$OUT/partitions-consumer-1.log"
        part_consumer "$clog" --until-caught-up
        rc=$?
        total=$(store_account_events)
        if [ $rc -eq 0 ] && [ "$(result_field "$clog" handled)" = "$total" ] && [ "$(rm_handled)" = "$total" ]; then
            pass "partitions consumer: catches up from nothing, every event of the accounts once ($total)"
        else
            fail "partitions consumer: catches up from nothing: exit $rc, handled $(result_field "$clog" handled), read model $(rm_handled), store $total (see $clog)"
            tail -n 5 "$clog" | sed 's/^/    /'
        fi

        # 2. more commands through the router, each a statement of its own
        #    (psql -f sends them one by one, each its own transaction)
        more="$OUT/partitions-more-commands.sql"
        accts=(alice bob carol dave judy kim lee)
        {
            echo "SELECT version FROM bank.open_account('kim', 'Kim Gordon', 50);"
            echo "SELECT version FROM bank.open_account('lee', 'Lee Morgan');"
            for i in $(seq 1 28); do
                echo "SELECT version FROM bank.deposit('${accts[i % 7]}', $i.25);"
            done
            for i in $(seq 1 14); do
                echo "SELECT version FROM bank.withdraw('${accts[i % 7]}', 1.00);"
            done
        } > "$more"
        if es_psql "$PART_ROUTER" -qtA -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -f "$more" \
               > "$OUT/partitions-more-commands.log" 2>&1; then
            pass "partitions: 44 more commands through the router, each a statement of its own"
        else
            fail "partitions: 44 more commands through the router (see $OUT/partitions-more-commands.log)"
            tail -n 5 "$OUT/partitions-more-commands.log" | sed 's/^/    /'
        fi
        wait_partition_horizons
        total=$(store_account_events)

        # 3. killed in the middle of a page: after 4 committed pages of 3
        #    events it applies the 5th and kills itself (SIGKILL) before the commit
        before=$(rm_handled)
        clog="$OUT/partitions-consumer-2-crash.log"
        part_consumer "$clog" --until-caught-up --page 3 --crash-after-pages 4
        rc=$?
        committed=$(sed -nE 's/^crash: .* after ([0-9]+) event\(s\) in 4 committed page\(s\)$/\1/p' "$clog")
        now=$(rm_handled)
        if [ $rc -eq 137 ] && [ -n "$committed" ] && [ "$now" = "$((before + committed))" ] && [ "$now" -lt "$total" ]; then
            pass "partitions consumer: killed in the middle of a page, the read model keeps exactly the 4 committed pages ($before + $committed of $total)"
        else
            fail "partitions consumer: killed in the middle of a page: exit $rc (want 137), committed '${committed}', read model $now, before $before, store $total (see $clog)"
            tail -n 5 "$clog" | sed 's/^/    /'
        fi

        # 4. resumed from its checkpoints: the rest, once
        clog="$OUT/partitions-consumer-3-resume.log"
        part_consumer "$clog" --until-caught-up --page 3
        rc=$?
        if [ $rc -eq 0 ] && [ "$(result_field "$clog" handled)" = "$((total - now))" ] && [ "$(rm_handled)" = "$total" ]; then
            pass "partitions consumer: resumes from its checkpoints and handles the other $((total - now)) events"
        else
            fail "partitions consumer: resumes from its checkpoints: exit $rc, handled $(result_field "$clog" handled) (want $((total - now))), read model $(rm_handled), store $total (see $clog)"
            tail -n 5 "$clog" | sed 's/^/    /'
        fi

        # 5. once more: nothing new, nothing repeated
        clog="$OUT/partitions-consumer-4-again.log"
        part_consumer "$clog" --until-caught-up
        rc=$?
        if [ $rc -eq 0 ] && [ "$(result_field "$clog" handled)" = 0 ]; then
            pass "partitions consumer: caught up, a run handles nothing again"
        else
            fail "partitions consumer: caught up, a run handles nothing again: exit $rc, handled $(result_field "$clog" handled) (see $clog)"
        fi

        # 6. the read model against the store: the partitions' events and the
        #    router's es.load, compared in the router
        pdump="$OUT/partitions-store-events.tsv"
        : > "$pdump"
        for i in 0 1 2 3; do
            es_psql "ex_part$i" -qtA -c "COPY (SELECT $i, event_id, stream_id, version, global_position FROM es.events
                                              WHERE stream_type = 'account') TO STDOUT" >> "$pdump"
        done
        es_psql "$PART_RM" -qtA -c "COPY consumer.accounts (stream_id, balance, is_active, version, partition) TO STDOUT" \
            > "$OUT/partitions-rm-accounts.tsv"
        es_psql "$PART_RM" -qtA -c "COPY consumer.handled (event_id, partition, global_position, stream_id, version) TO STDOUT" \
            > "$OUT/partitions-rm-handled.tsv"
        es_psql "$PART_RM" -qtA -c "COPY consumer.checkpoints (partition, position) TO STDOUT" \
            > "$OUT/partitions-rm-checkpoints.tsv"
        cat > "$OUT/partitions_consumer_checks.sql" <<SQL
-- Generated by scripts/test_examples.sh: the consumer's read model
-- ($PART_RM) against the partition databases' events and the router's es.load.
\i $REPO/examples/tests/lib.sql
SET client_min_messages = warning;
CREATE TEMP TABLE store_events (db integer, event_id uuid, stream_id text, version bigint, global_position bigint);
\copy store_events FROM '$pdump'
CREATE TEMP TABLE rm_accounts (stream_id text, balance numeric, is_active boolean, version bigint, partition integer);
\copy rm_accounts FROM '$OUT/partitions-rm-accounts.tsv'
CREATE TEMP TABLE rm_handled (event_id uuid, partition integer, global_position bigint, stream_id text, version bigint);
\copy rm_handled FROM '$OUT/partitions-rm-handled.tsv'
CREATE TEMP TABLE rm_checkpoints (partition integer, position bigint);
\copy rm_checkpoints FROM '$OUT/partitions-rm-checkpoints.tsv'

SELECT pg_temp.check_eq('partitions consumer: the store and the read model both have the 8 accounts',
                        jsonb_build_array((SELECT count(DISTINCT stream_id) FROM store_events), (SELECT count(*) FROM rm_accounts)),
                        '[8, 8]'::jsonb);
SELECT pg_temp.check('partitions consumer: each partition database holds only streams of its own logical partitions',
                     count(*) > 0 AND bool_and(es.partition_of(stream_id) % 4 = db),
                     string_agg(DISTINCT stream_id, ', ') FILTER (WHERE es.partition_of(stream_id) % 4 <> db))
  FROM store_events;
SELECT pg_temp.check_eq('partitions consumer: handled rows = events of the accounts over all partitions',
                        (SELECT count(*) FROM rm_handled), (SELECT count(*) FROM store_events));
SELECT pg_temp.check_eq('partitions consumer: every event handled exactly once (no event missing, none extra, none twice)',
                        (SELECT jsonb_build_array(count(*) FILTER (WHERE h.event_id IS NULL),
                                                  count(*) FILTER (WHERE s.event_id IS NULL))
                           FROM store_events s FULL JOIN rm_handled h USING (event_id)),
                        '[0, 0]'::jsonb);
SELECT pg_temp.check_eq('partitions consumer: each event handled from its stream''s partition, at its position and version',
                        (SELECT count(*) FROM store_events s JOIN rm_handled h USING (event_id)
                          WHERE h.partition <> es.partition_of(s.stream_id) OR h.global_position <> s.global_position
                             OR h.stream_id <> s.stream_id OR h.version <> s.version),
                        0::bigint);
SELECT pg_temp.check('partitions consumer: the read model''s balances, versions and status equal es.load on the router, for every account',
                     count(*) = (SELECT count(DISTINCT stream_id) FROM store_events)
                     AND bool_and(r.balance = (l.state->>'balance')::numeric AND r.version = l.version
                                  AND r.is_active = (l.state->>'isActive')::boolean
                                  AND r.partition = es.partition_of(l.stream_id)),
                     string_agg(format('%s: read model %s v%s, es.load %s v%s', l.stream_id, r.balance, r.version,
                                       l.state->>'balance', l.version), '; ')
                         FILTER (WHERE r.balance IS DISTINCT FROM (l.state->>'balance')::numeric OR r.version IS DISTINCT FROM l.version
                                    OR r.is_active IS DISTINCT FROM (l.state->>'isActive')::boolean))
  FROM (SELECT DISTINCT stream_id FROM store_events) s
 CROSS JOIN LATERAL es.load(s.stream_id) l
  LEFT JOIN rm_accounts r ON r.stream_id = s.stream_id;
SELECT pg_temp.check_eq('partitions consumer: one checkpoint per logical partition, each the position of its last handled event',
                        (SELECT jsonb_agg(jsonb_build_array(c.partition, c.position = COALESCE(h.last, 0)) ORDER BY c.partition)
                           FROM rm_checkpoints c
                           LEFT JOIN (SELECT partition, max(global_position) AS last FROM rm_handled GROUP BY partition) h USING (partition)),
                        (SELECT jsonb_agg(jsonb_build_array(p, true) ORDER BY p) FROM generate_series(0, 15) p));
SQL
        run_checks "$PART_ROUTER" "$OUT/partitions_consumer_checks.sql"
    fi
fi

log "examples summary"
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "examples: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
