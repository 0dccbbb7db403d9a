#!/usr/bin/env bash
# Run: bash examples/clients/node/run.sh [--workers N] [--operations N] [--initial AMOUNT]
# Installs nodejs and npm with apt when missing, and the pg driver into this
# directory's node_modules (npm install) the first time, then runs bank_workers.js.
# Connection: PGHOST, PGPORT, PGUSER, PGDATABASE.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing node or npm: install them (apt-get install nodejs npm) and run again" >&2
        exit 1
    fi
    echo "installing nodejs and npm (apt)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
if ! (cd "$HERE" && node -e "require('pg')" 2>/dev/null); then
    echo "installing pg into $HERE/node_modules (npm install)" >&2
    (cd "$HERE" && npm install --no-audit --no-fund --loglevel=error >&2)
fi
exec node "$HERE/bank_workers.js" "$@"
