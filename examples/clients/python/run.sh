#!/usr/bin/env bash
# Run: bash examples/clients/python/run.sh [--workers N] [--operations N] [--initial AMOUNT]
# Creates a venv in target/examples/python-venv with psycopg 3 the first time
# (installing python3 and python3-venv with apt when they are missing), then
# runs bank_workers.py. Connection: PGHOST, PGPORT, PGUSER, PGDATABASE.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
VENV=${ES_PYTHON_VENV:-$REPO/target/examples/python-venv}

apt_install() {
    if [ "$(id -u)" != 0 ]; then
        echo "missing $*: install it (apt-get install $*) and run again" >&2
        exit 1
    fi
    echo "installing $* (apt)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! "$VENV/bin/python" -c 'import psycopg' 2>/dev/null; then
    command -v python3 >/dev/null || apt_install python3
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
        # Debian ships venv (and ensurepip) in a separate package
        rm -rf "$VENV"
        apt_install python3-venv
        python3 -m venv "$VENV"
    fi
    echo "installing psycopg 3 into $VENV" >&2
    "$VENV/bin/pip" install -q --disable-pip-version-check 'psycopg[binary]>=3.2,<4'
fi
exec "$VENV/bin/python" "$HERE/bank_workers.py" "$@"
