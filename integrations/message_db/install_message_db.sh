#!/usr/bin/env bash
# Installs the real Message DB 1.3 (its database scripts, published on the npm
# registry as @eventide/message-db) into database $1 of the private cluster
# (scripts/common.sh), as Message DB's own install.sh would, without its
# wrapper: the role message_store, the schema, the table, the type, the
# functions, the indexes, the views and the grants, in that order. The
# package is fetched once into target/integrations/message-db/. Used by the
# comparison tests and the benchmark; nothing of it ships in pg_eventsource.
source "$(dirname "$0")/../../scripts/common.sh"
set -euo pipefail
DB=${1:?database name}
VERSION=1.3.1
DIR=$REPO/target/integrations/message-db
PKG=$DIR/package/database

if [ ! -f "$PKG/VERSION.txt" ]; then
    if ! command -v npm >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    fi
    rm -rf "$DIR"
    mkdir -p "$DIR"
    (cd "$DIR" && npm pack --silent "@eventide/message-db@$VERSION" >/dev/null && tar xzf eventide-message-db-$VERSION.tgz)
fi

P() { PGOPTIONS='-c client_min_messages=warning' es_psql "$1" -q -f "$PKG/$2" >/dev/null; }
P postgres roles/message-store.sql
es_psql postgres -qtA -c "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 \
    || es_psql postgres -q -c "CREATE DATABASE \"$DB\""
P "$DB" schema/message-store.sql
P "$DB" extensions/pgcrypto.sql
P "$DB" tables/messages.sql
P "$DB" types/message.sql
for f in message-store-version hash-64 acquire-lock category is-category id cardinal-id \
         stream-version write-message get-stream-messages get-category-messages get-last-stream-message; do
    P "$DB" "functions/$f.sql"
done
for f in messages-id messages-stream messages-category; do P "$DB" "indexes/$f.sql"; done
for f in stream-summary type-summary stream-type-summary type-stream-summary category-type-summary type-category-summary; do
    P "$DB" "views/$f.sql"
done
for f in schema table sequence functions views; do P "$DB" "privileges/$f.sql"; done
echo "Message DB $(cat "$PKG/VERSION.txt") installed in database $DB"
