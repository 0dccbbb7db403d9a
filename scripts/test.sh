#!/usr/bin/env bash
# Every test: set up the machine, then the six layers in turn
#   1. in-backend #[pg_test] tests (cargo pgrx test, its own throwaway cluster),
#   2. SQL regression files (pg_regress against the private cluster),
#   3. out-of-process tests with a real driver (tests/integration),
#   4. adversarial tests: real roles trying to escalate, crash or leak
#      (tests/integration/tests/security*.rs), against the same cluster as 3,
#   5. the examples and the clients in three languages (scripts/test_examples.sh),
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

log "lint: cargo fmt --check, cargo clippy -D warnings"
cargo fmt --check && cargo clippy --quiet --all-targets --features pg_test -- -D warnings \
    || failed+=(lint)

log "layer 1: #[pg_test] in-backend tests"
stop_cluster   # cargo pgrx test installs its build into the system PostgreSQL
mkdir -p "$REPO/target/pgrx-test-data"
chown postgres: "$REPO/target/pgrx-test-data"
cargo pgrx test pg15 --runas postgres --pgdata "$REPO/target/pgrx-test-data" 2>&1 | tee "$OUT/pg_test.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || failed+=(pg_test)
summary+=("$(grep -E '^test result: ' "$OUT/pg_test.log" | grep -vE ' 0 passed; 0 failed')")

# `cargo pgrx test` installed its test build; put the release build back.
install_extension || { echo "install failed"; exit 1; }
start_cluster || { echo "could not start the cluster"; exit 1; }

log "layer 2: SQL regression (pg_regress)"
bash "$REPO/scripts/regress.sh" 2>&1 | tee "$OUT/regress.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || failed+=(regress)
summary+=("$(grep -E '^regress: [0-9]+ passed, [0-9]+ failed' "$OUT/regress.log" | tail -n 1)")

log "documentation: it names every source file and SQL function, and its runnable examples run"
bash "$REPO/scripts/check_docs.sh" 2>&1 | tee "$OUT/docs.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || failed+=(docs)
summary+=("$(grep -E '^docs: [0-9]+ passed, [0-9]+ failed' "$OUT/docs.log" | tail -n 1)")

# The integration crate's test files: security*.rs are layer 4, the rest layer 3.
integration=() adversarial=()
for f in "$REPO"/tests/integration/tests/*.rs; do
    n=$(basename "$f" .rs)
    case $n in
        security*) adversarial+=(--test "$n") ;;
        *) integration+=(--test "$n") ;;
    esac
done

log "layer 3: out-of-process tests (tests/integration, postgres driver)"
ES_PGHOST=127.0.0.1 ES_PGPORT=$ES_PGPORT \
    cargo test --release --no-fail-fast --manifest-path "$REPO/tests/integration/Cargo.toml" "${integration[@]}" 2>&1 | tee "$OUT/integration.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || failed+=(integration)
summary+=("$(grep -E '^test result: ' "$OUT/integration.log" | grep -vE ' 0 passed; 0 failed')")

log "layer 4: adversarial (tests/integration/tests/security*.rs: roles trying to escalate, crash, leak)"
ES_PGHOST=127.0.0.1 ES_PGPORT=$ES_PGPORT \
    cargo test --release --no-fail-fast --manifest-path "$REPO/tests/integration/Cargo.toml" "${adversarial[@]}" 2>&1 | tee "$OUT/adversarial.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || failed+=(adversarial)
summary+=("$(grep -E '^test result: ' "$OUT/adversarial.log" | grep -vE ' 0 passed; 0 failed')")

log "layer 5: the examples (bank.sql, commerce.sql, clients in Python, Node.js and Rust)"
bash "$REPO/scripts/test_examples.sh" 2>&1 | tee "$OUT/examples.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || failed+=(examples)
summary+=("$(grep -E '^examples: [0-9]+ passed, [0-9]+ failed' "$OUT/examples.log" | tail -n 1)")

log "layer 6: upgrade from the previous release (scripts/test_upgrade.sh, its own PostgreSQL copy)"
bash "$REPO/scripts/test_upgrade.sh" 2>&1 | tee "$OUT/upgrade.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || failed+=(upgrade)
summary+=("$(grep -E '^upgrade: [0-9]+ passed, [0-9]+ failed' "$OUT/upgrade.log" | tail -n 1)")

[ "${CI:-}" = "true" ] && stop_cluster

log "summary"
[ ${#failed[@]} -eq 0 ] && echo "all layers passed" || echo "FAILED: ${failed[*]}"
printf '%s\n' "${summary[@]}"
[ ${#failed[@]} -eq 0 ]
