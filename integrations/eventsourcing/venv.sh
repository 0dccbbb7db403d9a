# Sourced (after scripts/common.sh): makes $VENV, a Python venv with the
# eventsourcing library this module is built and tested for, msgspec (the
# library's projection test cases import it) and this package (editable).
# Created once under target/integrations/; apt's python3-venv when missing.
HERE=$REPO/integrations/eventsourcing
VENV=$REPO/target/integrations/eventsourcing-venv
LIB="eventsourcing[postgres,crypto]==9.5.6"

if ! "$VENV/bin/python" -c 'import eventsourcing, msgspec, eventsourcing_pg_eventsource' 2>/dev/null; then
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
        rm -rf "$VENV"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$VENV"
    fi
    "$VENV/bin/pip" install -q "$LIB" msgspec
    "$VENV/bin/pip" install -q -e "$HERE"
fi
