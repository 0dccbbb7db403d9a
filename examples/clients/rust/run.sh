#!/usr/bin/env bash
# Run: bash examples/clients/rust/run.sh [--workers N] [--operations N] [--initial AMOUNT]
# Builds with cargo (fetching tokio and tokio-postgres the first time) into
# target/examples/rust, then runs it. Connection: PGHOST, PGPORT, PGUSER, PGDATABASE.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo >/dev/null; then
    echo "cargo is missing: install Rust (https://rustup.rs) and run again" >&2
    exit 1
fi
export CARGO_TARGET_DIR=${ES_RUST_TARGET:-$REPO/target/examples/rust}
cargo build --quiet --release --manifest-path "$HERE/Cargo.toml"
exec "$CARGO_TARGET_DIR/release/bank-workers" "$@"
