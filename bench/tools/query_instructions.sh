#!/usr/bin/env bash
# Instructions of one run of a long query (a fold over a million events):
# instructions.sh with a first run of one and one more after it, the server
# with jit = off (JIT'd code is not counted the same from run to run) and no
# parallel workers (one process does the whole query).
#
#   bash bench/run.sh --only grouped_fold --keep      # the data sets, then:
#   bash bench/tools/query_instructions.sh es_bank bench/pgbench/fold_grouped_columns.sql
set -euo pipefail
INSTR_WARMUP=1 INSTR_SERVER_OPTS="-c jit=off -c max_parallel_workers_per_gather=0" \
    exec bash "$(dirname "${BASH_SOURCE[0]}")/instructions.sh" "$1" "$2" 1
