#!/usr/bin/env bash
# Runs the Python eventsourcing library's own test cases (shipped in its
# package) against eventsourcing_pg_eventsource, on the private cluster
# (scripts/common.sh; it must be running with the extension installed).
# The venv: integrations/eventsourcing/venv.sh.
# Ends with unittest's own "Ran N tests" and "OK"/"FAILED" lines.
source "$(dirname "$0")/../../scripts/common.sh"
set -euo pipefail
source "$REPO/integrations/eventsourcing/venv.sh"

cd "$HERE/tests"
ES_TEST_PGHOST=127.0.0.1 ES_TEST_PGPORT=$ES_PGPORT "$VENV/bin/python" -m unittest -v test_library_cases 2>&1
