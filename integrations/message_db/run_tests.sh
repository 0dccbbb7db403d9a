#!/usr/bin/env bash
# Compares pg_eventsource_message_db with the real Message DB 1.3 on the
# private cluster (scripts/common.sh; running, with the extensions installed):
# Message DB from the npm registry in database mdb_real (install_message_db.sh),
# the extension in mdb_ours, the same calls against both (tests/test_compat.py),
# and the unmodified message-db-py client (PyPI) through both.
# A venv under target/integrations/ (psycopg 3, message-db-py and its psycopg2)
# is made the first time. Ends with unittest's "Ran N tests" and "OK"/"FAILED".
source "$(dirname "$0")/../../scripts/common.sh"
set -euo pipefail
HERE=$REPO/integrations/message_db
VENV=$REPO/target/integrations/message-db-venv

if ! "$VENV/bin/python" -c 'import psycopg, psycopg2, message_db.client' 2>/dev/null; then
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
        rm -rf "$VENV"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$VENV"
    fi
    # message-db-py needs psycopg2; its binary wheel is the same module
    "$VENV/bin/pip" install -q "psycopg[binary]>=3.1" psycopg2-binary
    "$VENV/bin/pip" install -q --no-deps "message-db-py==0.3.5"
fi

# Message DB itself, and the extension, each in a database of its own
es_psql postgres -q -c "DROP DATABASE IF EXISTS mdb_real WITH (FORCE)" -c "DROP DATABASE IF EXISTS mdb_ours WITH (FORCE)"
bash "$HERE/install_message_db.sh" mdb_real >/dev/null
es_psql postgres -q -c "CREATE DATABASE mdb_ours"
es_psql mdb_ours -q -c "CREATE EXTENSION pg_eventsource_message_db CASCADE" \
    -c "SELECT message_store.grant_client('message_store')" >/dev/null

cd "$HERE/tests"
ES_TEST_PGHOST=127.0.0.1 ES_TEST_PGPORT=$ES_PGPORT ES_MDB_REAL=mdb_real ES_MDB_OURS=mdb_ours \
    "$VENV/bin/python" -m unittest -v test_compat 2>&1
