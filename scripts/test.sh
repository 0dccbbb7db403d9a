#!/usr/bin/env bash
# Every test: set up the machine, then the six layers in turn
#   1. in-backend #[pg_test] tests (cargo pgrx test, its own throwaway cluster),
#   2. SQL regression files (pg_regress against the private cluster),
#   3. out-of-process tests with a real driver (tests/integration),
#   4. adversarial tests: real roles trying to escalate, crash or leak
#      (tests/integration/tests/security*.rs), against the same cluster as 3,
#   5. the examples and the clients in three languages (scripts/test_examples.sh),
#      and the Python eventsourcing library's own test cases through the
#      persistence module in integrations/eventsourcing (run_tests.sh), and
#      pg_eventsource_message_db against the real Message DB and its Python
#      client (integrations/message_db/run_tests.sh),
#   6. the upgrade from the previous release (scripts/test_upgrade.sh).
# Every layer runs even when an earlier one fails; the exit code is non-zero
# if any failed. The runners' own summary lines close the output.
source "$(dirname "$0")/common.sh"
set +e

setup_machine || exit 1
cd "$REPO" || exit 1
unset RUST_BACKTRACE
failed=()
summary=()
OUT=$REPO/target/test-logs
mkdir -p "$OUT"

# run_layer NAME SUMMARY_PATTERN COMMAND...: runs the command with its output
# also in $OUT/NAME.log, notes NAME when it fails, keeps its summary lines.
run_layer() {
    local name=$1 pattern=$2
    shift 2
    "$@" 2>&1 | tee "$OUT/$name.log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || failed+=("$name")
    summary+=("$(grep -E "$pattern" "$OUT/$name.log" | grep -vE ' 0 passed; 0 failed')")
}

log "lint: cargo fmt --check, cargo clippy -D warnings"
cargo fmt --check && cargo clippy --quiet --all-targets --features pg_test -- -D warnings \
    || failed+=(lint)

log "layer 1: #[pg_test] in-backend tests"
stop_cluster   # cargo pgrx test installs its build into the system PostgreSQL
mkdir -p "$REPO/target/pgrx-test-data"
chown postgres: "$REPO/target/pgrx-test-data"
run_layer pg_test '^test result: ' cargo pgrx test pg15 --runas postgres --pgdata "$REPO/target/pgrx-test-data"

# The JSON Schema validator's plain unit tests (no PostgreSQL in it).
run_layer validator '^test result: ' env CARGO_TARGET_DIR="$REPO/target/schema-compare" \
    cargo test --manifest-path "$REPO/bench/tools/schema-compare/Cargo.toml"

# `cargo pgrx test` installed its test build; put the release build back.
install_extension || { echo "install failed"; exit 1; }
start_cluster || { echo "could not start the cluster"; exit 1; }

log "layer 2: SQL regression (pg_regress)"
run_layer regress '^regress: [0-9]+ passed, [0-9]+ failed' bash "$REPO/scripts/regress.sh"

log "documentation: it names every source file and SQL function, and its runnable examples run"
run_layer docs '^docs: [0-9]+ passed, [0-9]+ failed' bash "$REPO/scripts/check_docs.sh"

# The integration crate's test files: security*.rs are layer 4, the rest layer 3.
integration=() adversarial=()
for f in "$REPO"/tests/integration/tests/*.rs; do
    n=$(basename "$f" .rs)
    case $n in
        security*) adversarial+=(--test "$n") ;;
        *) integration+=(--test "$n") ;;
    esac
done
integration_tests() {
    env ES_PGHOST=127.0.0.1 ES_PGPORT="$ES_PGPORT" \
        cargo test --release --no-fail-fast --manifest-path "$REPO/tests/integration/Cargo.toml" "$@"
}

log "layer 3: out-of-process tests (tests/integration, postgres driver)"
run_layer integration '^test result: ' integration_tests "${integration[@]}"

log "layer 4: adversarial (tests/integration/tests/security*.rs: roles trying to escalate, crash, leak)"
run_layer adversarial '^test result: ' integration_tests "${adversarial[@]}"

log "layer 5: the examples (bank.sql, commerce.sql, clients in Python, Node.js and Rust)"
run_layer examples '^examples: [0-9]+ passed, [0-9]+ failed' bash "$REPO/scripts/test_examples.sh"

log "layer 5b: the Python eventsourcing library's own test cases through eventsourcing_pg_eventsource"
run_layer eventsourcing '^(Ran [0-9]+ tests|OK|FAILED)' bash "$REPO/integrations/eventsourcing/run_tests.sh"

log "layer 5c: pg_eventsource_message_db against the real Message DB 1.3 (npm) and the message-db-py client"
run_layer message_db '^(Ran [0-9]+ tests|OK|FAILED)' bash "$REPO/integrations/message_db/run_tests.sh"

log "layer 6: upgrade from the previous release (scripts/test_upgrade.sh, its own PostgreSQL copy)"
run_layer upgrade '^upgrade: [0-9]+ passed, [0-9]+ failed' bash "$REPO/scripts/test_upgrade.sh"

[ "${CI:-}" = "true" ] && stop_cluster

log "summary"
[ ${#failed[@]} -eq 0 ] && echo "all layers passed" || echo "FAILED: ${failed[*]}"
printf '%s\n' "${summary[@]}"
[ ${#failed[@]} -eq 0 ]
