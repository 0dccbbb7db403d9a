#!/usr/bin/env bash
# Runs the Python eventsourcing library's own test cases (shipped in its
# package) against eventsourcing_pg_eventsource, on the private cluster
# (scripts/common.sh; it must be running with the extension installed).
# Creates target/integrations/eventsourcing-venv the first time (apt's
# python3-venv when missing) with eventsourcing 9.5.6 and this package.
# Ends with unittest's own "Ran N tests" and "OK"/"FAILED" lines.
source "$(dirname "$0")/../../scripts/common.sh"
set -euo pipefail
HERE=$REPO/integrations/eventsourcing
VENV=$REPO/target/integrations/eventsourcing-venv
# the library's version the module is built and tested for
LIB="eventsourcing[postgres,crypto]==9.5.6"

if ! "$VENV/bin/python" -c 'import eventsourcing, msgspec, eventsourcing_pg_eventsource' 2>/dev/null; then
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
        rm -rf "$VENV"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$VENV"
    fi
    # msgspec: the library's projection test cases import it
    "$VENV/bin/pip" install -q "$LIB" msgspec
    "$VENV/bin/pip" install -q -e "$HERE"
fi

cd "$HERE/tests"
ES_TEST_PGHOST=127.0.0.1 ES_TEST_PGPORT=$ES_PGPORT "$VENV/bin/python" -m unittest -v test_library_cases 2>&1
