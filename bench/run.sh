#!/usr/bin/env bash
# The benchmark suite: every hot path of pg_eventsource against what a
# user would otherwise do (a bare INSERT, a hand-written plpgsql append or fold, a
# plain SELECT), on one private PostgreSQL 15 server, in one run.
#
#   bash bench/run.sh            # full run: pgbench -T 15, two rounds (25 to 40 minutes)
#   bash bench/run.sh --quick    # short run: -T 2, one round, smaller bank data set (under 2 minutes once built)
#
# Options: --no-build (use the library already installed in the private copy),
#          --only REGEX (run only the scenarios whose name matches),
#          --keep (leave the server running at the end).
# Environment: BENCH_PGPORT (28830), BENCH_SECONDS, BENCH_ROUNDS, BENCH_STREAMS,
#   BENCH_ATTEMPTS, BENCH_MAX_FOREIGN, BENCH_QUIET_WAIT, BENCH_NOISE_BUDGET (see
#   quiet_wait and pgb below: how the runner copes with a machine shared with others).
#
# Runs as root on a fresh machine: it calls setup_machine (scripts/common.sh). The
# server is a private copy of the system PostgreSQL 15 under target/bench-pg, so
# installs into the system PostgreSQL by anyone else never replace the library
# under this server, and this run never replaces theirs. Its own data directory,
# port and socket directory, default settings (synchronous commit on).
#
# Output: one table on stdout, and under target/bench/<stamp>/: results.csv (every
# measurement), table.md, append-scaling.svg, the raw pgbench output. The chart is
# also written to bench/append-scaling.svg.
source "$(dirname "$0")/../scripts/common.sh"

BENCH=$REPO/bench
QUICK=0
BUILD=1
KEEP=0
ONLY=
while [ $# -gt 0 ]; do
    case $1 in
        --quick) QUICK=1 ;;
        --no-build) BUILD=0 ;;
        --keep) KEEP=1 ;;
        --only) ONLY=$2; shift ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

if [ $QUICK = 1 ]; then
    T=${BENCH_SECONDS:-2}; ROUNDS=${BENCH_ROUNDS:-1}; STREAMS=${BENCH_STREAMS:-100}; ATTEMPTS=${BENCH_ATTEMPTS:-1}
    QUIET_WAIT=${BENCH_QUIET_WAIT:-0}
else
    T=${BENCH_SECONDS:-15}; ROUNDS=${BENCH_ROUNDS:-2}; STREAMS=${BENCH_STREAMS:-1000}; ATTEMPTS=${BENCH_ATTEMPTS:-3}
    QUIET_WAIT=${BENCH_QUIET_WAIT:-30}
fi

# The private PostgreSQL: a copy of the system's, relocatable (pg_config and the
# server find lib/ and share/ next to their own bin/). Headers are linked, not copied.
BENCH_PG=$REPO/target/bench-pg
PG_BIN=$BENCH_PG/lib/postgresql/$PG_MAJOR/bin
PG_CONFIG=$PG_BIN/pg_config
ES_PGPORT=${BENCH_PGPORT:-28830}
ES_PGDATA=$REPO/target/bench-cluster/data
ES_PGSOCK=$REPO/target/bench-cluster/run
ES_PGLOG=$REPO/target/bench-cluster/postgres.log
# a worker and a relay for each of six databases: more than the default 8 processes
ES_PGOPTS="-c max_worker_processes=16"
# The library is preloaded (start_cluster) with a projection worker and a
# notification relay for es_append, where the append scenarios run, and for
# es_bankcmd, the bank example's database, and for the partition databases
# es_rp0..es_rp3 behind the routers; es_direct
# holds the same data with no relay, so its appenders NOTIFY directly.
ES_WORKER_DATABASES=es_append,es_bankcmd,es_rp0,es_rp1,es_rp2,es_rp3
unset RUST_BACKTRACE

STAMP=$(date -u +%Y%m%d-%H%M%S)$([ $QUICK = 1 ] && echo -quick || true)
OUT=$REPO/target/bench/$STAMP
CSV=$OUT/results.csv
mkdir -p "$OUT/raw"
echo "scenario,side,round,clients,seconds,value,unit,transactions,retries,failed,foreign_cpu" >"$CSV"
START=$SECONDS

copy_postgres() {
    local sys=/usr/lib/postgresql/$PG_MAJOR
    # (again when the system gained PL/Proxy, for the routers, after the copy was made)
    if [ -x "$PG_CONFIG" ] && [ "$("$PG_CONFIG" --version)" = "$("$sys/bin/pg_config" --version)" ] &&
        [ -f "$BENCH_PG/lib/postgresql/$PG_MAJOR/lib/plproxy.so" ]; then
        return 0
    fi
    log "copying PostgreSQL $PG_MAJOR to $BENCH_PG"
    stop_cluster
    rm -rf "$BENCH_PG"
    mkdir -p "$BENCH_PG/lib/postgresql" "$BENCH_PG/share/postgresql" "$BENCH_PG/include"
    cp -a "$sys" "$BENCH_PG/lib/postgresql/"
    cp -a "/usr/share/postgresql/$PG_MAJOR" "$BENCH_PG/share/postgresql/"
    ln -sfn /usr/include/postgresql "$BENCH_PG/include/postgresql"
}

q() { es_psql "$1" -qAt -c "$2"; }

# Record one measurement: rec SCENARIO SIDE ROUND CLIENTS SECONDS VALUE UNIT [TX RETRIES FAILED FOREIGN_CPU]
rec() { echo "$1,$2,$3,$4,$5,$6,$7,${8:-},${9:-},${10:-},${11:-}" >>"$CSV"; }

# CPU used by the whole machine (non-idle jiffies, steal included) and by this
# server (the postmaster, the backends it has reaped, and its live children).
busy_jiffies() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
server_children() { cat "/proc/$(head -1 "$ES_PGDATA/postmaster.pid")/task/"*/children 2>/dev/null || true; }
server_jiffies() {
    local pm c t
    pm=$(head -1 "$ES_PGDATA/postmaster.pid")
    t=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pm/stat")
    for c in $(server_children); do
        t=$((t + $(awk '{ print $14 + $15 }' "/proc/$c/stat" 2>/dev/null || echo 0)))
    done
    echo "$t"
}

# Wait (at most BENCH_QUIET_WAIT seconds: 30 in a full run, 0 with --quick) until
# other processes take at most BENCH_MAX_FOREIGN of the CPU over 2 seconds.
quiet_wait() {
    local waited=0 b0 s0 b1 s1 share
    while [ "$waited" -lt "$QUIET_WAIT" ] && noise_budget_left; do
        b0=$(busy_jiffies) s0=$(server_jiffies)
        sleep 2
        b1=$(busy_jiffies) s1=$(server_jiffies)
        share=$(awk -v b="$((b1 - b0))" -v s="$((s1 - s0))" -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" \
            'BEGIN { printf "%.3f", (b - s) / hz / (2 * n) }')
        awk -v a="$share" -v m="${BENCH_MAX_FOREIGN:-0.15}" 'BEGIN { exit !(a <= m) }' && return 0
        [ "$waited" = 0 ] && printf '    waiting for other processes to quieten (they take %.0f%% of the CPU)\n' \
            "$(awk -v f="$share" 'BEGIN { print f * 100 }')"
        waited=$((waited + 2))
        noise_spend 2
    done
}

# Waiting and repeating stop once they have cost BENCH_NOISE_BUDGET seconds in all
# (900 by default), so that a machine that never quietens still gets a full run
# in bounded time (every run's foreign CPU share is recorded either way).
noise_spend() { echo $(($(cat "$OUT/noise_spent" 2>/dev/null || echo 0) + $1)) >"$OUT/noise_spent"; }
noise_budget_left() { [ "$(cat "$OUT/noise_spent" 2>/dev/null || echo 0)" -lt "${BENCH_NOISE_BUDGET:-900}" ]; }

# One pgbench run: pgb SCENARIO SIDE ROUND DB CLIENTS SCRIPT EVENTS_PER_TX UNIT [pgbench args...]
# Records transactions/s times EVENTS_PER_TX, and the share of the machine's CPU
# that processes other than this server and pgbench took during the run (the
# machine may be shared). A run where that share is over BENCH_MAX_FOREIGN
# (default 0.15) is repeated, up to BENCH_ATTEMPTS times in all (3 in a full run,
# 1 with --quick); the attempt with the least foreign CPU is kept.
pgb() {
    local scen=$1 side=$2 round=$3 db=$4 clients=$5 script=$6 mult=$7 unit=$8
    shift 8
    local raw=$OUT/raw/$scen.$side.$round.txt attempt best_foreign= best_raw=
    local max_foreign=${BENCH_MAX_FOREIGN:-0.15} attempts=$ATTEMPTS
    for ((attempt = 1; attempt <= attempts; attempt++)); do
        local try=$raw.try$attempt
        q "$db" CHECKPOINT
        quiet_wait
        local b0 s0 t0 b1 s1 t1 pgb_cpu foreign
        local nchildren
        nchildren=$(server_children | wc -w)
        b0=$(busy_jiffies) s0=$(server_jiffies) t0=$EPOCHREALTIME
        if ! PGOPTIONS=${PGB_OPTS:-} bash -c '"$@"; rc=$?; times >"'"$try"'.times"; exit $rc' _ \
            "$PG_BIN/pgbench" -n -M prepared -h "$ES_PGSOCK" -p "$ES_PGPORT" -U postgres \
            -c "$clients" -T "$T" -f "$script" "$@" "$db" >"$try" 2>&1; then
            tail -5 "$try" >&2
            return 1
        fi
        # the run's backends count once the postmaster has reaped them (their CPU
        # then moves to its cutime); until then they are in neither place
        for _ in $(seq 1 40); do
            [ "$(server_children | wc -w)" -le "$nchildren" ] && break
            sleep 0.05
        done
        b1=$(busy_jiffies) s1=$(server_jiffies) t1=$EPOCHREALTIME
        # `times` prints the children's user and system time on its second line
        pgb_cpu=$(awk 'NR == 2 { n = split($0, a, " "); s = 0
                       for (i = 1; i <= n; i++) { split(a[i], p, "m"); s += p[1] * 60 + p[2] } print s }' "$try.times")
        foreign=$(awk -v b="$((b1 - b0))" -v s="$((s1 - s0))" -v p="$pgb_cpu" -v t0="$t0" -v t1="$t1" \
            -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" \
            'BEGIN { f = (b - s) / hz - p; if (f < 0) f = 0; printf "%.3f", f / ((t1 - t0) * n) }')
        if [ -z "$best_foreign" ] || awk -v a="$foreign" -v b="$best_foreign" 'BEGIN { exit !(a < b) }'; then
            best_foreign=$foreign best_raw=$try
        fi
        awk -v a="$best_foreign" -v m="$max_foreign" 'BEGIN { exit !(a <= m) }' && break
        noise_budget_left || break
        noise_spend "$T"
        [ "$attempt" -lt "$attempts" ] &&
            printf '    %-22s %-8s round %s: other processes took %.0f%% of the CPU, again\n' \
                "$scen" "$side" "$round" "$(awk -v f="$foreign" 'BEGIN { print f * 100 }')"
    done
    cp "$best_raw" "$raw"
    local tps tx retries failed
    tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$raw")
    tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$raw")
    retries=$(sed -n 's/^total number of retries: \([0-9]*\).*/\1/p' "$raw")
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$raw")
    [ -n "$tps" ] || { echo "no tps in $raw" >&2; return 1; }
    rec "$scen" "$side" "$round" "$clients" "$T" "$(awk -v t="$tps" -v m="$mult" 'BEGIN { printf "%.3f", t * m }')" \
        "$unit" "$tx" "${retries:-0}" "${failed:-0}" "$best_foreign"
    printf '    %-22s %-8s round %s: %12.1f %-8s (other processes: %.0f%% CPU)\n' "$scen" "$side" "$round" \
        "$(awk -v t="$tps" -v m="$mult" 'BEGIN { print t * m }')" "$unit" "$(awk -v f="$best_foreign" 'BEGIN { print f * 100 }')"
}

# Alternate sides round by round (A B A B ...) so drift hits every side alike:
# alternate SCENARIO DB CLIENTS UNIT "side script events_per_tx [server options]" ... [-- pgbench args]
# (server options: what PGOPTIONS passes to each connection, e.g. -c es.notify=off)
alternate() {
    local scen=$1 db=$2 clients=$3 unit=$4
    shift 4
    local sides=() extra=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do sides+=("$1"); shift; done
    [ $# -gt 0 ] && shift && extra=("$@")
    local r s side script mult opts sdb
    for ((r = 1; r <= ROUNDS; r++)); do
        for s in "${sides[@]}"; do
            read -r side script mult opts <<<"$s"
            # a side written side@db runs in that database
            sdb=$db
            [[ $side == *@* ]] && sdb=${side#*@} side=${side%@*}
            PGB_OPTS=$opts pgb "$scen" "$side" "$r" "$sdb" "$clients" "$BENCH/pgbench/$script" "$mult" "$unit" "${extra[@]}"
        done
    done
}

has_function() { [ "$(q es_append "SELECT count(*) FROM pg_proc WHERE proname = '$1' AND pronamespace = 'es'::regnamespace")" != 0 ]; }

# ---------------------------------------------------------------- data sets
new_db() {
    recreate_db "$1"
    es_psql "$1" -q -c "CREATE EXTENSION pg_eventsource" -f "$BENCH/sql/baselines.sql" >/dev/null
}

load_append_db() {
    local db
    for db in es_append es_direct; do
        log "database $db: empty store and baselines, 1,000 streams each"
        new_db $db
        load_append_data $db
    done
    wait_relay es_append
}

# Recreating a worker database terminates its relay; the postmaster restarts it
# within 5 s. Until then appends there would notify directly.
wait_relay() {
    for _ in $(seq 1 60); do
        [ "$(q "$1" "SELECT count(*) FROM pg_stat_activity
                     WHERE backend_type = 'pg_eventsource notify relay' AND datname = '$1'")" = 1 ] && return 0
        sleep 0.5
    done
    echo "the notification relay for $1 did not start (is the library preloaded?)" >&2
    exit 1
}

load_append_data() {
    # streams of a type with snapshots every 100 (the snapshot trigger's cost)
    es_psql "$1" -q >/dev/null <<'SQL'
SELECT es.define_aggregate('snap', reducers => '{"MoneyDeposited": [{"add": "balance", "from": "$.amount"}, {"inc": "n"}]}',
                           snapshot_every => 100);
-- every stream exists before the runs (its first append creates it)
SELECT count(es.append_event('acct-' || i, 'Opened', '{}')) FROM generate_series(1, 1000) i;
SELECT count(es.append_event('snap-' || i, 'Opened', '{}')) FROM generate_series(1, 1000) i;
SELECT count(pl.append_event('acct-' || i, 'Opened', '{}')) FROM generate_series(1, 1000) i;
-- the bare table holds the rows es.events holds: with only MoneyDeposited
-- rows of type acct, its appends would always go to the right edge of the
-- (event_type, global_position) and (stream_type, global_position) indexes,
-- which is cheaper (a cached rightmost page, no descent; 90/10 page splits)
-- than landing before Opened and snap as es.events' appends do
INSERT INTO bare.events (global_position, stream_id, stream_type, version, event_type, data, event_id)
SELECT nextval('bare.position'), t || '-' || i, t, nextval('bare.version'), 'Opened', '{}', bl.uuid_v7()
  FROM unnest(ARRAY['acct', 'snap']) t, generate_series(1, 1000) i;
VACUUM ANALYZE;
SQL
}

load_bank_db() {
    log "database es_bank: $STREAMS accounts x 1,000 bank events"
    new_db es_bank
    es_psql es_bank -q -v streams="$STREAMS" -f "$BENCH/sql/data_bank.sql" >/dev/null
    # both folds must agree before their speeds are compared
    local bad
    bad=$(q es_bank "SELECT count(*) FROM (SELECT stream_id, es.fold(e ORDER BY version) AS a, pl.bank_fold_agg(e ORDER BY version) AS b
                                           FROM es.events e GROUP BY stream_id) s
                     WHERE (a->>'balance')::numeric <> (b->>'balance')::numeric OR a->'transactionCount' <> b->'transactionCount'
                        OR a->'owner' <> b->'owner' OR a->'isActive' <> b->'isActive'")
    [ "$bad" = 0 ] || { echo "native and plpgsql folds disagree on $bad streams" >&2; exit 1; }
}

load_load_db() {
    log "database es_load: a 100,050-event and a 150-event stream, snapshot_every 100"
    new_db es_load
    es_psql es_load -q -f "$BENCH/sql/data_load.sql" >/dev/null
}

load_evo_db() {
    log "database es_evo: 100,000 events behind an upcaster, two 100-event streams (chain, none)"
    new_db es_evo
    es_psql es_evo -q -f "$BENCH/sql/data_evolution.sql" >/dev/null
}

# ---------------------------------------------------------------- scenarios
EV="events/s"

sc_append_1c() {
    alternate append_1c es_append 1 "$EV" "es append_es.sql 1" "bare append_bare.sql 1" "pl append_pl.sql 1" \
        "esoff append_es.sql 1 -c es.notify=off" "esdirect@es_direct append_es.sql 1" \
        "barestream append_bare_stream.sql 1"
}
sc_append_8c() {
    alternate append_8c es_append 8 "$EV" "es append_es.sql 1" "bare append_bare.sql 1" "pl append_pl.sql 1" \
        "esoff append_es.sql 1 -c es.notify=off" "esdirect@es_direct append_es.sql 1" \
        "barestream append_bare_stream.sql 1"
}
# What keeping a stream's version costs, by design: a stream row updated per
# append (what es.streams does), or a per-stream lock and an index probe.
sc_append_design() {
    local c
    for c in 1 8; do
        alternate append_design_${c}c es_append $c "$EV" "bare append_bare.sql 1" \
            "barestream append_bare_stream.sql 1" "barelock append_bare_lock.sql 1" "es append_es.sql 1"
    done
}
sc_append_ev_1c() {
    alternate append_ev_1c es_append 1 "$EV" "es append_ev_es.sql 1" "bare append_bare.sql 1" "pl append_ev_pl.sql 1" \
        -- --max-tries=1000
}
sc_append_ev_8c() {
    alternate append_ev_8c es_append 8 "$EV" "es append_ev_es.sql 1" "bare append_bare.sql 1" "pl append_ev_pl.sql 1" \
        "esoff append_ev_es.sql 1 -c es.notify=off" -- --max-tries=1000
}
sc_append_batch() {
    # 100 events per call: the same 100 events as one jsonb array for es.append_events
    # and as a 100-row VALUES list for the bare INSERT; both scripts are written here.
    local payload='{"amount": 12.50, "currency": "EUR", "note": "salary"}'
    local gen=$OUT/gen
    mkdir -p "$gen"
    {
        echo '\set s random(1, 1000)'
        printf "SELECT es.append_events('acct-' || :s, '["
        for ((i = 1; i <= 100; i++)); do
            printf '{"type": "MoneyDeposited", "data": %s}%s' "$payload" "$([ $i -lt 100 ] && echo ', ' || true)"
        done
        echo "]');"
    } >"$gen/batch_es.sql"
    {
        echo '\set s random(1, 1000)'
        echo "INSERT INTO bare.events (global_position, stream_id, stream_type, version, event_type, data, event_id) VALUES"
        for ((i = 1; i <= 100; i++)); do
            printf "(nextval('bare.position'), 'acct-' || :s, 'acct', nextval('bare.version'), 'MoneyDeposited', '%s', bl.uuid_v7())%s\n" \
                "$payload" "$([ $i -lt 100 ] && echo , || echo ';')"
        done
    } >"$gen/batch_bare.sql"
    local r
    for ((r = 1; r <= ROUNDS; r++)); do
        pgb append_batch es "$r" es_append 1 "$gen/batch_es.sql" 100 "$EV"
        pgb append_batch bare "$r" es_append 1 "$gen/batch_bare.sql" 100 "$EV"
    done
}
sc_hot_stream() {
    q es_append "SELECT es.append_event('hot-1', 'Opened', '{}'), pl.append_event('hot-1', 'Opened', '{}')" >/dev/null
    alternate hot_stream es_append 8 "$EV" "es hot_es.sql 1" "pl hot_pl.sql 1" -- --max-tries=1000
}
sc_snapshot_trigger() {
    alternate snapshot_trigger es_append 1 "$EV" "snap append_snap.sql 1" "es append_es.sql 1"
}
sc_read_stream() {
    alternate read_stream es_bank 1 "reads/s" "es read_stream_es.sql 1" "plain read_stream_plain.sql 1" -- -D streams="$STREAMS"
}
sc_read_all() {
    local maxpos
    maxpos=$(q es_bank "SELECT max(global_position) FROM es.events")
    alternate read_all es_bank 1 "$EV" "es read_all_es.sql 1000" "plain read_all_plain.sql 1000" \
        -- -D global_position=0 -D maxpos="$maxpos"
}
# Schema evolution. A 10-property event whose type has a schema against the
# same event of a type with none, in one database (the schema is defined
# here, on its own type: the other append scenarios are unaffected).
sc_schema_append() {
    es_psql es_append -q -f "$BENCH/sql/schema_checked.sql" >/dev/null
    alternate schema_append es_append 1 "$EV" "schema append_schema.sql 1" "none append_noschema.sql 1"
}
# es.read_all with no upcaster defined against 0.2.0's body (es_bank has none).
sc_read_all_noup() {
    local maxpos
    maxpos=$(q es_bank "SELECT max(global_position) FROM es.events")
    es_psql es_bank -q -f - >/dev/null <<'SQL'
CREATE OR REPLACE FUNCTION bl.read_all_020(after_position bigint DEFAULT 0, max_count integer DEFAULT 1000,
                                           event_types text[] DEFAULT NULL, stream_types text[] DEFAULT NULL)
RETURNS SETOF es.events LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    horizon constant bigint := es._next_read_horizon();
BEGIN
    RETURN QUERY
    SELECT e.* FROM es.events e
    WHERE e.global_position > COALESCE(after_position, 0) AND e.global_position < horizon
      AND (event_types IS NULL OR e.event_type = ANY (event_types))
      AND (stream_types IS NULL OR e.stream_type = ANY (stream_types))
    ORDER BY e.global_position LIMIT max_count;
END $$;
SQL
    alternate read_all_noup es_bank 1 "$EV" "es read_all_es.sql 1000" "v020 read_all_020.sql 1000" \
        "plain read_all_plain.sql 1000" -- -D global_position=0 -D maxpos="$maxpos"
}
# es.read_all where one rename upcaster applies to every event, against raw => true.
sc_read_all_upcast() {
    local maxpos
    maxpos=$(q es_evo "SELECT max(global_position) FROM es.events")
    alternate read_all_upcast es_evo 1 "$EV" "upcast read_all_upcast.sql 1000" "raw read_all_raw.sql 1000" \
        -- -D global_position=0 -D maxpos="$maxpos"
}
# es.load of 100 events that all need a two-step chain, against 100 that need none.
sc_load_upcast() {
    alternate load_upcast es_evo 1 "loads/s" "chain load_chain.sql 1" "none load_nochain.sql 1"
}
sc_fold() {
    local n=$((STREAMS * 1000))
    alternate fold es_bank 1 "$EV" "es fold_es.sql $n" "pl fold_pl.sql $n" "count fold_count.sql $n"
}
sc_fold_sorted() {
    local n=$((STREAMS * 1000))
    alternate fold_sorted es_bank 1 "$EV" "es fold_sorted_es.sql $n" "pl fold_sorted_pl.sql $n" \
        "count fold_sorted_count.sql $n"
}
sc_load() {
    alternate load es_load 1 "loads/s" "long load_long.sql 1" "short load_short.sql 1"
}

# Backend memory during the fold of the whole bank data set, read by the backend
# itself from /proc/self/status before and after (VmRSS, VmHWM = peak RSS, and
# RSS split into RssAnon = private memory, RssShmem = shared buffers mapped,
# RssFile = mapped files such as the JIT's LLVM library), and RssAnon sampled
# from outside every 10 ms for its peak.
sc_fold_rss() {
    local r
    for ((r = 1; r <= ROUNDS; r++)); do
        local tmp=$OUT/raw/fold_rss.$r.txt pid=
        es_psql es_bank -qAt -F ' ' >"$tmp" 2>&1 <<'SQL' &
SET application_name = 'bench-fold-rss';
SELECT count(*) FROM (SELECT es.fold(e ORDER BY version) FROM es.events e WHERE stream_id = 'account-1') w;
SELECT 'before', s FROM regexp_split_to_table(pg_read_file('/proc/self/status'), '\n') s WHERE s ~ '^(VmRSS|VmHWM|RssAnon|RssShmem|RssFile):';
SELECT 'sleep', pg_sleep(0.3);
SELECT count(f) FROM (SELECT stream_id, es.fold(e ORDER BY version) AS f FROM es.events e GROUP BY stream_id) s;
SELECT 'after', s FROM regexp_split_to_table(pg_read_file('/proc/self/status'), '\n') s WHERE s ~ '^(VmRSS|VmHWM|RssAnon|RssShmem|RssFile):';
SQL
        local psql_pid=$!
        for _ in $(seq 1 200); do
            pid=$(q postgres "SELECT pid FROM pg_stat_activity WHERE application_name = 'bench-fold-rss'")
            [ -n "$pid" ] && break
            sleep 0.05
        done
        local peak=0 v
        while kill -0 "$psql_pid" 2>/dev/null; do
            v=$(awk '/^RssAnon:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
            [ -n "$v" ] && [ "$v" -gt "$peak" ] && peak=$v
            sleep 0.01
        done
        wait "$psql_pid"
        kb() { awk -v w="$1" -v k="$2:" '$1 == w && $2 == k { print $3 }' "$tmp"; }
        local mb='BEGIN { printf "%.1f", (a - b) / 1024 }'
        rec fold_rss anon "$r" 1 0 "$(awk -v a="$peak" -v b="$(kb before RssAnon)" "$mb")" MB
        rec fold_rss hwm "$r" 1 0 "$(awk -v a="$(kb after VmHWM)" -v b="$(kb before VmRSS)" "$mb")" MB
        rec fold_rss shmem "$r" 1 0 "$(awk -v a="$(kb after RssShmem)" -v b="$(kb before RssShmem)" "$mb")" MB
        rec fold_rss file "$r" 1 0 "$(awk -v a="$(kb after RssFile)" -v b="$(kb before RssFile)" "$mb")" MB
        printf '    fold_rss round %s: private (RssAnon) peak +%s kB; VmHWM +%s kB, of which shared buffers +%s kB, mapped files +%s kB\n' \
            "$r" "$((peak - $(kb before RssAnon)))" "$(($(kb after VmHWM) - $(kb before VmRSS)))" \
            "$(($(kb after RssShmem) - $(kb before RssShmem)))" "$(($(kb after RssFile) - $(kb before RssFile)))"
    done
}

# The lifecycle functions, one timed call per round on data made afresh
# (they remove and rewrite it): es.apply_retention keeping the last 10 of
# each stream's events, against a bare DELETE of the same rows; es.redact of a
# 10,000-event stream, against a bare UPDATE with jsonb_set of the same rows
# (both as events/s: 10,000 in under a second is 10,000 events/s or more).
lifecycle_round() {
    recreate_db es_life
    es_psql es_life -q -c "CREATE EXTENSION pg_eventsource" >/dev/null
    es_psql es_life -q -v streams="$LIFE_STREAMS" -v per=1000 -f "$BENCH/sql/data_lifecycle.sql" >/dev/null
    q es_life CHECKPOINT
    quiet_wait
}
# timed DB SQL: prints "rows seconds" of one statement whose one row has a
# column n (a count)
timed() {
    es_psql "$1" -qAt -F ' ' <<SQL
SELECT clock_timestamp() AS t0 \gset
$2 \gset
SELECT :n, extract(epoch FROM clock_timestamp() - :'t0');
SQL
}
LIFE_STREAMS=$([ $QUICK = 1 ] && echo 20 || echo 200)
sc_retention() {
    local r out n secs
    for ((r = 1; r <= ROUNDS; r++)); do
        lifecycle_round
        q es_life "SELECT es.set_retention('ret', max_count => 10)" >/dev/null
        read -r n secs <<<"$(timed es_life "SELECT es.apply_retention(100000000) AS n")"
        rec retention es "$r" 1 0 "$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.1f", n / s }')" "$EV" "$n"
        printf '    %-22s %-8s round %s: %12.1f %-8s (%s events in %.3f s)\n' retention es "$r" \
            "$(awk -v n="$n" -v s="$secs" 'BEGIN { print n / s }')" "$EV" "$n" "$secs"
        read -r n secs <<<"$(timed es_life "WITH d AS (DELETE FROM bench_ret b USING es.streams s
                                                          WHERE s.stream_id = b.stream_id AND b.version <= s.version - 10
                                                          RETURNING 1) SELECT count(*) AS n FROM d")"
        rec retention delete "$r" 1 0 "$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.1f", n / s }')" "$EV" "$n"
        printf '    %-22s %-8s round %s: %12.1f %-8s (%s rows in %.3f s)\n' retention delete "$r" \
            "$(awk -v n="$n" -v s="$secs" 'BEGIN { print n / s }')" "$EV" "$n" "$secs"
    done
}
sc_redact() {
    local r n secs
    for ((r = 1; r <= ROUNDS; r++)); do
        lifecycle_round
        read -r n secs <<<"$(timed es_life "SELECT es.redact('red-1', '{\"email\": \"[redacted]\"}', 'bench') AS n")"
        rec redact es "$r" 1 0 "$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.1f", n / s }')" "$EV" "$n"
        printf '    %-22s %-8s round %s: %10.1f ms   (%s events)\n' redact es "$r" "$(awk -v s="$secs" 'BEGIN { print s * 1000 }')" "$n"
        read -r n secs <<<"$(timed es_life "WITH u AS (UPDATE bench_red SET data = jsonb_set(data, '{email}', '\"[redacted]\"')
                                                        WHERE data ? 'email' RETURNING 1) SELECT count(*) AS n FROM u")"
        rec redact update "$r" 1 0 "$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.1f", n / s }')" "$EV" "$n"
        printf '    %-22s %-8s round %s: %10.1f ms   (%s rows)\n' redact update "$r" "$(awk -v s="$secs" 'BEGIN { print s * 1000 }')" "$n"
    done
}

# The Python eventsourcing library's own performance tests (and reads through
# the same recorders) with its stock PostgreSQL module and with
# eventsourcing_pg_eventsource (bench/tools/eventsourcing_bench.py). Times per
# operation are recorded as operations per second.
sc_eventsourcing() {
    source "$REPO/integrations/eventsourcing/venv.sh"
    local r side metric value unit
    for ((r = 1; r <= ROUNDS; r++)); do
        while IFS=, read -r side metric value unit; do
            if [ "$unit" = us ]; then
                value=$(awk -v v="$value" 'BEGIN { printf "%.1f", 1e6 / v }')
                unit=$([ "$metric" = select_events_100 ] && echo reads/s || echo inserts/s)
            elif [ "$unit" = inserts/s ]; then
                unit=events/s
            fi
            rec "lib_$metric" "$side" "$r" 1 0 "$value" "$unit"
            printf '    %-26s %-6s round %s: %12.1f %s\n' "lib_$metric" "$side" "$r" "$value" "$unit"
        done < <("$VENV/bin/python" "$BENCH/tools/eventsourcing_bench.py" 127.0.0.1 "$ES_PGPORT" 1)
    done
}

# Message DB's write_message at 8 clients: through pg_eventsource_message_db,
# against es.append_event in the same database, and against Message DB 1.3
# itself (from the npm registry, integrations/message_db/install_message_db.sh)
# in another database of this server.
sc_message_db() {
    # es_append: the database with the notification relay, as shipped for the append scenarios
    es_psql es_append -q -c "CREATE EXTENSION IF NOT EXISTS pg_eventsource_message_db" >/dev/null
    es_psql postgres -q -c "DROP DATABASE IF EXISTS es_mdb_real WITH (FORCE)" >/dev/null
    ES_PGPORT=$ES_PGPORT ES_PGSOCK=$ES_PGSOCK ES_PGDATA=$ES_PGDATA PG_BIN=$PG_BIN \
        bash "$REPO/integrations/message_db/install_message_db.sh" es_mdb_real >/dev/null
    # Message DB's functions find each other through a schema on the search path
    es_psql es_mdb_real -q -c "ALTER DATABASE es_mdb_real SET search_path = message_store, public" >/dev/null
    alternate message_db es_append 8 "$EV" "layer mdb_write.sql 1" "es mdb_append_es.sql 1" \
        "esid mdb_append_es_id.sql 1" "messagedb@es_mdb_real mdb_write.sql 1"
}

# Chart points that the 1- and 8-client scenarios do not give.
sc_append_scaling() {
    local c r
    for c in 2 4 16; do
        for ((r = 1; r <= ROUNDS; r++)); do
            for s in "es append_es.sql" "bare append_bare.sql" "pl append_pl.sql" "esoff append_es.sql -c es.notify=off" \
                "esdirect@es_direct append_es.sql"; do
                read -r side script opts <<<"$s"
                local sdb=es_append
                [[ $side == *@* ]] && sdb=${side#*@} side=${side%@*}
                PGB_OPTS=$opts pgb "append_${c}c" "$side" "$r" "$sdb" "$c" "$BENCH/pgbench/$script" 1 "$EV"
            done
        done
    done
}

# ---------------------------------------------------------------- projections -------
sc_proj_inline() {
    if ! has_function create_projection; then
        rec proj_inline na 0 0 0 "" "n/a: needs es.create_projection"
        echo "    n/a: needs es.create_projection"
        return 0
    fi
    local lang r
    for lang in sql plpgsql; do
        recreate_db "es_proj_inline_$lang"
        es_psql "es_proj_inline_$lang" -q -c "CREATE EXTENSION pg_eventsource" -f "$BENCH/sql/projections.sql" \
            -v mode=inline -v lang="$lang" >/dev/null
    done
    for ((r = 1; r <= ROUNDS; r++)); do
        pgb proj_inline sql "$r" es_proj_inline_sql 1 "$BENCH/pgbench/append_es.sql" 1 "$EV"
        pgb proj_inline plpgsql "$r" es_proj_inline_plpgsql 1 "$BENCH/pgbench/append_es.sql" 1 "$EV"
        pgb proj_inline es "$r" es_append 1 "$BENCH/pgbench/append_es.sql" 1 "$EV"
    done
}
sc_proj_materialize() {
    if ! has_function materialize_aggregate; then
        rec proj_materialize na 0 0 0 "" "n/a: needs es.materialize_aggregate"
        echo "    n/a: needs es.materialize_aggregate"
        return 0
    fi
    recreate_db es_proj_mat
    es_psql es_proj_mat -q -c "CREATE EXTENSION pg_eventsource" -f "$BENCH/sql/projections.sql" -v mode=materialize >/dev/null
    local r
    for ((r = 1; r <= ROUNDS; r++)); do
        pgb proj_materialize mat "$r" es_proj_mat 1 "$BENCH/pgbench/append_es.sql" 1 "$EV"
        pgb proj_materialize es "$r" es_append 1 "$BENCH/pgbench/append_es.sql" 1 "$EV"
    done
}
sc_proj_async() {
    if ! has_function create_projection || ! has_function run_projection; then
        rec proj_async na 0 0 0 "" "n/a: needs es.create_projection"
        echo "    n/a: needs es.create_projection and es.run_projection"
        return 0
    fi
    local n=$((QUICK == 1 ? 20000 : 200000))
    recreate_db es_proj_async
    es_psql es_proj_async -q -c "CREATE EXTENSION pg_eventsource" -f "$BENCH/sql/projections.sql" -v mode=async -v events="$n" >/dev/null
    local r secs
    for ((r = 1; r <= ROUNDS; r++)); do
        # ours: a fresh async projection catches up over every event
        secs=$(q es_proj_async "SELECT bench_async_catch_up()")
        rec proj_async es "$r" 1 "$secs" "$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.1f", n / s }')" "$EV"
        # baseline: a plpgsql loop over es.events in global order calling the same handler
        secs=$(q es_proj_async "SELECT bench_plpgsql_loop()")
        rec proj_async pl "$r" 1 "$secs" "$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.1f", n / s }')" "$EV"
        # a count per day kept by an upsert: one call per event, or one per batch of 100
        local d=$((QUICK == 1 ? 5000 : 20000)) side handler
        for side in "one rm_daily_one(es.events)" "batch rm_daily_batch(es.events[])"; do
            read -r side handler <<<"$side"
            secs=$(q es_proj_async "CALL bench_async_daily('$handler', $d, 100)")
            rec proj_async_daily "$side" "$r" 1 "$secs" "$(awk -v n="$d" -v s="$secs" 'BEGIN { printf "%.1f", n / s }')" "$EV"
        done
        printf '    proj_async round %s: done\n' "$r"
    done
}

# ---------------------------------------------------------------- where users live
# The bank example as shipped (examples/bank.sql: snapshots, an inline read model,
# async read models the worker runs, notifications through the relay), and its
# command bank.deposit (load, decide, append: one SQL call) against es.append_event
# in es_append, where nothing but the append runs.
load_bankcmd_db() {
    log "database es_bankcmd: examples/bank.sql as shipped, 1,000 accounts, one of 10 events and one of 10,000"
    recreate_db es_bankcmd
    es_psql es_bankcmd -q -f "$REPO/examples/bank.sql" >/dev/null
    es_psql es_bankcmd -q >/dev/null <<'SQL'
SELECT count(*) FROM generate_series(1, 1000) i, bank.open_account('b' || i, 'Owner ' || i, 1000);
SELECT bank.open_account('young', 'Young', 1000), bank.open_account('old', 'Old', 1000);
SELECT count(*) FROM generate_series(1, 9) i, bank.deposit('young', 1);
DO $$ BEGIN FOR i IN 1 .. 9999 LOOP PERFORM bank.deposit('old', 1); END LOOP; END $$;
SQL
    wait_relay es_bankcmd
    # the worker catches the async read models up before anything is measured
    for _ in $(seq 1 120); do
        [ "$(q es_bankcmd "SELECT count(*) FROM es.projections WHERE mode = 'async' AND lag > 0")" = 0 ] && break
        sleep 1
    done
    q es_bankcmd "VACUUM ANALYZE" >/dev/null
}
sc_bank_command_1c() {
    alternate bank_command_1c es_bankcmd 1 "$EV" "deposit bank_deposit.sql 1" "es@es_append append_es.sql 1" \
        -- --max-tries=1000
}
sc_bank_command_8c() {
    alternate bank_command_8c es_bankcmd 8 "$EV" "deposit bank_deposit.sql 1" "es@es_append append_es.sql 1" \
        -- --max-tries=1000
}
sc_bank_age() {
    local r a
    for ((r = 1; r <= ROUNDS; r++)); do
        for a in old young; do
            pgb bank_age "$a" "$r" es_bankcmd 1 "$BENCH/pgbench/bank_deposit_one.sql" 1 "commands/s" -D acct="$a"
        done
    done
}

# States that grow with every event (bench/sql/data_big_state.sql).
load_big_db() {
    log "database es_big: states of about 1 KB, 100 KB and 1 MB (a list that grows with every event)"
    new_db es_big
    es_psql es_big -q -f "$BENCH/sql/data_big_state.sql" >/dev/null
}
sc_big_state() {
    local r s
    for ((r = 1; r <= ROUNDS; r++)); do
        for s in s m l; do
            pgb big_load "$s" "$r" es_big 1 "$BENCH/pgbench/big_load.sql" 1 "loads/s" -D sid="ledger-$s"
        done
        for s in s m l n; do
            pgb big_snapshot "$s" "$r" es_big 1 "$BENCH/pgbench/big_append.sql" 1 "appends/s" -D sid="snapl-$s"
        done
    done
}

# Notifications on a stock server: the same PostgreSQL with default settings
# and nothing preloaded (only CREATE EXTENSION ran), one subscriber listening
# and reading every notification (bench/tools/listen.py). 8 clients,
# es.append_event with es.notify on against the bare INSERT, same server.
sc_stock_notify() {
    local ES_PGPORT=$((${BENCH_PGPORT:-28830} + 2))
    local ES_PGDATA=$REPO/target/bench-stock/data ES_PGSOCK=$REPO/target/bench-stock/run
    local ES_PGLOG=$REPO/target/bench-stock/postgres.log ES_PRELOAD=0 ES_WORKER_DATABASES= ES_PGOPTS=
    stop_cluster # a server left by an earlier run may have the old library mapped
    start_cluster
    [ "$(q postgres "SHOW shared_preload_libraries")" = "" ] || { echo "the stock server preloads something" >&2; return 1; }
    new_db es_stock
    load_append_data es_stock
    source "$REPO/integrations/eventsourcing/venv.sh"
    "$VENV/bin/python" "$BENCH/tools/listen.py" 127.0.0.1 "$ES_PGPORT" es_stock >"$OUT/raw/stock_notify.listener.txt" &
    local listener=$!
    sleep 1
    alternate stock_notify es_stock 8 "$EV" "es append_es.sql 1" "bare append_bare.sql 1"
    kill -TERM "$listener"
    wait "$listener" || true
    # one notification per committed appending transaction (es side only; bare does not notify)
    local sent got
    sent=$(awk -F, '$1 == "stock_notify" && $2 == "es" { s += $8 } END { print s + 0 }' "$CSV")
    got=$(cat "$OUT/raw/stock_notify.listener.txt")
    printf '    stock_notify: the subscriber got %s notifications; the runs kept committed %s appends (a repeated run adds its own)\n' "$got" "$sent"
    stop_cluster
}

# ---------------------------------------------------------------- long folds
# One stream of 200,000 events and no snapshot: es.load and es.fold against
# the bare SQL aggregate over the same rows and the columns the reducers read,
# as PostgreSQL plans it (the stream is the whole table: a parallel scan) and
# in one process, as es.load runs.
load_long_db() {
    log "database es_long: one stream of 200,000 events, no snapshots"
    new_db es_long
    es_psql es_long -q >/dev/null <<'SQL'
SELECT es.define_aggregate('long', reducers => '{"Deposited": [{"add": "balance", "from": "$.amount"}, {"inc": "n"}]}',
                           snapshot_every => 0);
SELECT es.append_events('long-1', (SELECT jsonb_agg(jsonb_build_object('type', 'Deposited',
                        'data', jsonb_build_object('amount', 1.25, 'currency', 'EUR'))) FROM generate_series(1, 100000)));
SELECT es.append_events('long-1', (SELECT jsonb_agg(jsonb_build_object('type', 'Deposited',
                        'data', jsonb_build_object('amount', 1.25, 'currency', 'EUR'))) FROM generate_series(1, 100000)));
VACUUM ANALYZE;
SQL
}
sc_long_fold() {
    alternate long_fold es_long 1 "folds/s" "load long_load.sql 1" "fold long_fold.sql 1" \
        "columns long_fold_columns.sql 1" "ordered long_fold_columns_ordered.sql 1" "sql long_sql.sql 1" \
        "sqlserial long_sql.sql 1 -c max_parallel_workers_per_gather=0"
}
# Every stream's state in one query over the 1,000,000 events of es_bank:
# es.fold by rows and by columns against the bare SQL aggregate.
sc_grouped_fold() {
    alternate grouped_fold es_bank 1 "$EV" "rows fold_sorted_es.sql $((STREAMS * 1000))" \
        "columns fold_grouped_columns.sql $((STREAMS * 1000))" "sql fold_grouped_sql.sql $((STREAMS * 1000))" \
        "sqlserial fold_grouped_sql.sql $((STREAMS * 1000)) -c max_parallel_workers_per_gather=0"
}

# ---------------------------------------------------------------- partitions
# Routers (pg_eventsource_router, over PL/Proxy) with 16 logical partitions
# in 1, 2 or 4 partition databases of this server (es_router1, es_router2,
# es_router4; partitions es_rp0..es_rp3, each with a relay as es_append),
# reached over TCP as partitions on other servers would be. Every partition
# database holds all 1,000 streams, so any layout finds them.
load_partitions_db() {
    log "partition databases es_rp0..es_rp3, routers es_router1, es_router2, es_router4"
    local i n p arr
    for i in 0 1 2 3; do
        new_db es_rp$i
        q es_rp$i "SELECT count(es.append_event('acct-' || i, 'Opened', '{}')) FROM generate_series(1, 1000) i" >/dev/null
        q es_rp$i "VACUUM ANALYZE" >/dev/null
    done
    for n in 1 2 4; do
        recreate_db es_router$n
        es_psql es_router$n -q -c "SET client_min_messages = warning" \
            -c "CREATE EXTENSION pg_eventsource_router CASCADE" >/dev/null
        arr=
        for p in $(seq 0 15); do
            arr+="${arr:+, }'host=127.0.0.1 port=$ES_PGPORT dbname=es_rp$((p % n))'"
        done
        q es_router$n "SELECT es.configure_partitions(ARRAY[$arr])" >/dev/null
    done
    for i in 0 1 2 3; do wait_relay es_rp$i; done
}
# Router overhead: the same append through a router whose partitions all live
# in es_rp0, against straight into es_rp0.
sc_router_1c() {
    alternate router_1c es_rp0 1 "$EV" "router@es_router1 append_es.sql 1" "direct append_es.sql 1"
}
sc_router_8c() {
    alternate router_8c es_rp0 8 "$EV" "router@es_router1 append_es.sql 1" "direct append_es.sql 1"
}
# Throughput at 8 clients with 1, 2 and 4 partition databases (one server of 2
# cores: more databases share the same CPUs, so this shows the cost of the
# spread, not a scale-out; see the results' model for N servers).
sc_router_scaling() {
    alternate router_scaling es_rp0 8 "$EV" "p1@es_router1 append_es.sql 1" "p2@es_router2 append_es.sql 1" \
        "p4@es_router4 append_es.sql 1" "direct append_es.sql 1"
}

SCENARIOS=(append_1c append_8c append_ev_1c append_ev_8c append_batch hot_stream snapshot_trigger
    read_stream read_all fold fold_sorted fold_rss load proj_inline proj_materialize proj_async append_scaling
    schema_append read_all_noup read_all_upcast load_upcast retention redact eventsourcing message_db
    bank_command_1c bank_command_8c bank_age big_state stock_notify router_1c router_8c router_scaling long_fold grouped_fold append_design)

# ---------------------------------------------------------------- main
# The copy needs the system's PostgreSQL, which setup_machine installs: on a
# fresh machine cargo-pgrx is set up with the system's pg_config, then the copy made.
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config setup_machine
copy_postgres
if [ $BUILD = 1 ]; then
    install_extension # stops this private server first; builds with $PG_CONFIG (the copy)
fi
[ -f "$BENCH_PG/lib/postgresql/$PG_MAJOR/lib/pg_eventsource.so" ] || {
    echo "pg_eventsource is not installed in $BENCH_PG (run without --no-build)" >&2
    exit 1
}
stop_cluster # a server started before this install would have the old library mapped
start_cluster

COMMIT=$(cd "$REPO" && git rev-parse --short HEAD)$(cd "$REPO" && git diff --quiet HEAD -- src sql bench 2>/dev/null || echo "+changes")
{
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "commit=$COMMIT"
    echo "nproc=$(nproc)"
    echo "cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
    echo "mem=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "pg=$(q postgres 'SHOW server_version')"
    echo "command=bash bench/run.sh$([ $QUICK = 1 ] && echo ' --quick' || true)"
    echo "seconds=$T"
    echo "rounds=$ROUNDS"
    echo "attempts=$ATTEMPTS"
    echo "bank_events=$((STREAMS * 1000))"
    echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/meta"

wanted() { [ -z "$ONLY" ] || [[ $1 =~ $ONLY ]]; }
need_append=0 need_bank=0 need_load=0 need_evo=0 need_bankcmd=0 need_big=0 need_parts=0 need_long=0
for s in "${SCENARIOS[@]}"; do
    wanted "$s" || continue
    case $s in
        read_all_upcast|load_upcast) need_evo=1 ;;
        bank_command_*) need_bankcmd=1 need_append=1 ;;
        bank_age) need_bankcmd=1 ;;
        big_state) need_big=1 ;;
        router_*) need_parts=1 ;;
        long_fold) need_long=1 ;;
        stock_notify) ;;
        retention|redact|eventsourcing) ;;
        read_*|fold*|grouped_fold) need_bank=1 ;;
        load) need_load=1 ;;
        *) need_append=1 ;;
    esac
done
# has_function asks es_append
load_append_db
[ $need_bank = 1 ] && load_bank_db
[ $need_load = 1 ] && load_load_db
[ $need_evo = 1 ] && load_evo_db
[ $need_bankcmd = 1 ] && load_bankcmd_db
[ $need_big = 1 ] && load_big_db
[ $need_parts = 1 ] && load_partitions_db
[ $need_long = 1 ] && load_long_db

set +e
for s in "${SCENARIOS[@]}"; do
    wanted "$s" || continue
    log "scenario $s"
    (set -e; "sc_$s")
    rc=$?
    if [ $rc != 0 ]; then
        echo "    scenario $s failed (exit $rc); see $OUT/raw" >&2
        rec "$s" error 0 0 0 "" "error"
    fi
done
set -e

echo "elapsed=$((SECONDS - START))" >>"$OUT/meta"
echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/meta"
log "results ($OUT)"
python3 "$BENCH/report.py" "$OUT"
# the committed chart comes from full runs only
if [ $QUICK = 0 ] && [ -z "$ONLY" ] && [ -f "$OUT/append-scaling.svg" ]; then
    cp "$OUT/append-scaling.svg" "$BENCH/append-scaling.svg"
fi
[ $KEEP = 1 ] || stop_cluster
