#!/usr/bin/env bash
# The main job: set up the machine, build and install the extension, start a
# private PostgreSQL 15 cluster, and run the demo in psql.
source "$(dirname "$0")/common.sh"

setup_machine
install_extension
start_cluster
log "demo database es_demo"
recreate_db es_demo
es_psql es_demo -f "$REPO/examples/demo.sql"
log "done. Connect with: psql -h $ES_PGSOCK -p $ES_PGPORT -U postgres es_demo"
