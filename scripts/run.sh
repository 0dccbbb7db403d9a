#!/usr/bin/env bash
# The main job: set up the machine, build and install the extension, start a
# private PostgreSQL 15 cluster, and run the bank example (examples/bank.sql)
# in psql, in a fresh database es_demo.
#   bash scripts/run.sh             # the bank
#   bash scripts/run.sh commerce    # another example: examples/commerce.sql (or demo: the API tour)
source "$(dirname "$0")/common.sh"

EXAMPLE=${1:-bank}
if [ ! -f "$REPO/examples/$EXAMPLE.sql" ]; then
    echo "no example examples/$EXAMPLE.sql (there are: $(cd "$REPO/examples" && ls -- *.sql | sed 's/\.sql$//' | tr '\n' ' '))" >&2
    exit 2
fi

setup_machine
install_extension
start_cluster
log "example $EXAMPLE: examples/$EXAMPLE.sql in a fresh database es_demo"
recreate_db es_demo
es_psql es_demo -f "$REPO/examples/$EXAMPLE.sql"
log "done. Connect with: psql -h $ES_PGSOCK -p $ES_PGPORT -U postgres es_demo"
