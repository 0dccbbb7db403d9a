-- Projection scenarios, one database per mode; bench/run.sh loads this
-- after CREATE EXTENSION with -v mode=inline|materialize|async, -v lang=sql|plpgsql
-- (inline: the handler's language) and -v events=N (async). The appends they are
-- compared with run in es_append, a database with no projection at all, to the
-- same 'acct-1' .. 'acct-1000' streams.
SELECT :'mode' = 'inline' AS is_inline, :'mode' = 'materialize' AS is_mat, :'mode' = 'async' AS is_async \gset
\if :{?lang}
\else
\set lang sql
\endif
SELECT :'lang' = 'plpgsql' AS is_plpgsql \gset

\if :is_inline
-- A read model with one row per stream, written by a one-row upsert per event.
-- In SQL, PostgreSQL 15 parses and plans the handler's body again in every
-- transaction (SQL functions keep no plan across transactions); in plpgsql the
-- plan is kept for the session.
CREATE TABLE rm_counts (stream_id text PRIMARY KEY, n bigint NOT NULL);
\if :is_plpgsql
CREATE FUNCTION rm_upsert(e es.events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rm_counts VALUES (e.stream_id, 1)
    ON CONFLICT (stream_id) DO UPDATE SET n = rm_counts.n + 1;
END
$$;
\else
CREATE FUNCTION rm_upsert(e es.events) RETURNS void LANGUAGE sql AS $$
    INSERT INTO rm_counts VALUES (e.stream_id, 1)
    ON CONFLICT (stream_id) DO UPDATE SET n = rm_counts.n + 1
$$;
\endif
SELECT es.create_projection('counts', 'rm_upsert(es.events)'::regprocedure, 'inline');
SELECT count(es.append_event('acct-' || i, 'Opened', '{}')) FROM generate_series(1, 1000) i;
VACUUM ANALYZE;
\endif

\if :is_mat
-- The built-in materializer: one row per stream of type acct, kept current inline
-- by the native reducers (no snapshots, so only the materializer's cost shows).
SELECT es.define_aggregate('acct', reducers => '{
  "Opened":         [{"set": "balance", "value": 0}],
  "MoneyDeposited": [{"add": "balance", "from": "$.amount"}, {"inc": "transactionCount"}]
}', snapshot_every => 0);
SELECT es.materialize_aggregate('acct', 'acct_state');
SELECT count(es.append_event('acct-' || i, 'Opened', '{}')) FROM generate_series(1, 1000) i;
VACUUM ANALYZE;
\endif

\if :is_async
-- A trivial handler: a SQL function that does nothing.
CREATE FUNCTION rm_noop(e es.events) RETURNS void LANGUAGE sql AS 'SELECT';

SELECT set_config('bench.events', :'events', false);
DO $$
DECLARE n int := current_setting('bench.events')::int;
BEGIN
  FOR b IN 0 .. n / 1000 - 1 LOOP
    FOR i IN 1..10 LOOP
      PERFORM es.append_events('acct-' || (b * 10 + i), (
        SELECT jsonb_agg(jsonb_build_object('type', 'MoneyDeposited', 'data', jsonb_build_object('amount', 1.25)))
        FROM generate_series(1, 100)));
    END LOOP;
    COMMIT;
  END LOOP;
END $$;
VACUUM ANALYZE;

-- Seconds for a new async projection to catch up over every event.
CREATE FUNCTION bench_async_catch_up() RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz;
    got bigint;
    total bigint := 0;
BEGIN
    IF EXISTS (SELECT FROM es.projections WHERE name = 'noop') THEN
        PERFORM es.drop_projection('noop');
    END IF;
    PERFORM es.create_projection('noop', 'rm_noop(es.events)'::regprocedure, 'async');
    t := clock_timestamp();
    LOOP
        got := es.run_projection('noop', 10000);
        EXIT WHEN got = 0;
        total := total + got;
    END LOOP;
    IF total <> (SELECT count(*) FROM es.events) THEN
        RAISE EXCEPTION 'catch-up handled % events of %', total, (SELECT count(*) FROM es.events);
    END IF;
    RETURN extract(epoch FROM clock_timestamp() - t);
END
$$;

-- A read model users write: a count per day and event type, kept by an
-- upsert, handed over one event at a time or as a batch (es.events[]).
CREATE TABLE rm_daily (day date, event_type text, n bigint NOT NULL, PRIMARY KEY (day, event_type));
CREATE FUNCTION rm_daily_one(e es.events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rm_daily VALUES (e.recorded_at::date, e.event_type, 1)
    ON CONFLICT (day, event_type) DO UPDATE SET n = rm_daily.n + 1;
END
$$;
CREATE FUNCTION rm_daily_batch(events es.events[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rm_daily AS d
    SELECT e.recorded_at::date, e.event_type, count(*) FROM unnest(events) e GROUP BY 1, 2
    ON CONFLICT (day, event_type) DO UPDATE SET n = d.n + EXCLUDED.n;
END
$$;
-- Seconds for a new projection with `handler` to catch up over the first
-- `events` events in catch-ups of `batch`, each in a transaction of its own
-- as the background worker runs them (its catch-ups are about that size
-- under a steady stream of appends); checks the counts. CALL it: it commits.
CREATE PROCEDURE bench_async_daily(handler regprocedure, events bigint, batch int,
                                   INOUT secs double precision DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz;
    total bigint := 0;
BEGIN
    IF EXISTS (SELECT FROM es.projections WHERE name = 'daily') THEN
        PERFORM es.drop_projection('daily');
    END IF;
    TRUNCATE rm_daily;
    PERFORM es.create_projection('daily', handler, 'async');
    COMMIT;
    t := clock_timestamp();
    WHILE total < events LOOP
        total := total + es.run_projection('daily', batch);
        COMMIT;
    END LOOP;
    secs := extract(epoch FROM clock_timestamp() - t);
    IF (SELECT sum(n) FROM rm_daily) <> total THEN
        RAISE EXCEPTION 'the read model counted % events of %', (SELECT sum(n) FROM rm_daily), total;
    END IF;
END
$$;

-- Baseline: what a user would write by hand, a plpgsql loop over es.events in
-- global order calling the same handler, keeping its position in a table.
CREATE TABLE bl_position (name text PRIMARY KEY, position bigint NOT NULL);
CREATE FUNCTION bench_plpgsql_loop() RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz := clock_timestamp();
    e es.events;
    last bigint := 0;
BEGIN
    FOR e IN SELECT * FROM es.events WHERE global_position > 0 AND global_position < es.read_horizon()
             ORDER BY global_position LOOP
        PERFORM rm_noop(e);
        last := e.global_position;
    END LOOP;
    INSERT INTO bl_position VALUES ('noop', last) ON CONFLICT (name) DO UPDATE SET position = excluded.position;
    RETURN extract(epoch FROM clock_timestamp() - t);
END
$$;
\endif
