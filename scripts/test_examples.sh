#!/usr/bin/env bash
# Runs the examples against the private cluster (scripts/common.sh) and checks
# what they did:
#   examples/demo.sql, bank.sql, commerce.sql, each in a fresh database, then
#   examples/tests/{bank,commerce}_checks.sql there; the three bank clients
#   (examples/clients/{python,node,rust}) in a fresh database with bank.sql,
#   each followed by examples/tests/client_checks.sql on its account.
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

log "examples summary"
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "examples: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
