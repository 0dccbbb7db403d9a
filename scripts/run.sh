#!/usr/bin/env bash
# The main job: set up the machine, build and install the extension, start a
# private PostgreSQL 15 cluster, and run the bank example (examples/bank.sql)
# in psql, in a fresh database es_demo.
#   bash scripts/run.sh             # the bank
#   bash scripts/run.sh commerce    # another example: examples/commerce.sql (or demo: the API tour)
#   bash scripts/run.sh partitions  # the bank through a router (examples/partitions.sql): fresh
#                                   # partition databases es_part0..es_part3, 16 logical partitions
#                                   # (p in es_part<p % 4>), a router es_router; the file runs there
source "$(dirname "$0")/common.sh"

EXAMPLE=${1:-bank}
if [ ! -f "$REPO/examples/$EXAMPLE.sql" ]; then
    echo "no example examples/$EXAMPLE.sql (there are: $(cd "$REPO/examples" && ls -- *.sql | sed 's/\.sql$//' | tr '\n' ' '))" >&2
    exit 2
fi

setup_machine
install_extension
start_cluster

if [ "$EXAMPLE" = partitions ]; then
    log "example partitions: partition databases es_part0..es_part3, router es_router (16 logical partitions)"
    # the router first: dropping it ends its sessions, which hold connections to the partitions
    es_psql postgres -q -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS es_router WITH (FORCE)"
    for i in 0 1 2 3; do
        recreate_db "es_part$i"
        es_psql "es_part$i" -q -c "SET client_min_messages = warning" -c "CREATE EXTENSION pg_eventsource"
    done
    recreate_db es_router
    es_psql es_router -q -c "SET client_min_messages = warning" -c "CREATE EXTENSION pg_eventsource_router CASCADE"
    # one connection string per logical partition, without a user: every caller
    # connects to the partitions as itself
    connstrs=""
    for p in $(seq 0 15); do
        connstrs+="${connstrs:+, }'host=127.0.0.1 port=$ES_PGPORT dbname=es_part$((p % 4))'"
    done
    es_psql es_router -q -c "SELECT es.configure_partitions(ARRAY[$connstrs])" >/dev/null
    es_psql es_router -f "$REPO/examples/partitions.sql"
    log "done. Connect to the router with: psql -h $ES_PGSOCK -p $ES_PGPORT -U postgres es_router
    (the partitions: es_part0 .. es_part3). Follow every partition with the Python consumer:
      bash examples/clients/python/run.sh --help >/dev/null   # makes its venv once
      psql -h $ES_PGSOCK -p $ES_PGPORT -U postgres -d postgres -c 'CREATE DATABASE es_consumer'
      target/examples/python-venv/bin/python examples/clients/python/partitions_consumer.py \\
          --router 'host=127.0.0.1 port=$ES_PGPORT user=postgres dbname=es_router' \\
          --read-model 'host=127.0.0.1 port=$ES_PGPORT user=postgres dbname=es_consumer'"
    exit 0
fi

log "example $EXAMPLE: examples/$EXAMPLE.sql in a fresh database es_demo"
recreate_db es_demo
es_psql es_demo -f "$REPO/examples/$EXAMPLE.sql"
log "done. Connect with: psql -h $ES_PGSOCK -p $ES_PGPORT -U postgres es_demo"
