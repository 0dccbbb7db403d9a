-- Baselines: what the scenarios are compared with. None of them uses the
-- extension's functions: they are what a user could do with plain
-- PostgreSQL 15. bench/run.sh loads this file into each bench database
-- after CREATE EXTENSION (only the plpgsql fold names the es.events row type).

-- A time-ordered UUID (version 7 layout) in plain SQL: PostgreSQL 15 has no
-- uuidv7(). The baselines use it so that their event_id index sees the same
-- append-at-the-end inserts as the extension's UUIDv7 ids; a random
-- gen_random_uuid() would scatter them and make the baselines slower.
-- (Bits 52 and 53 turn gen_random_uuid()'s version nibble 4 into 7; its
-- variant bits stay as they are.)
CREATE SCHEMA bl;
CREATE FUNCTION bl.uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE
RETURN encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
                                      PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                                      FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid;

-- Wall-clock seconds of one statement, run in this backend (for one-shot
-- measurements that pgbench cannot repeat, e.g. a projection catch-up).
CREATE FUNCTION bl.seconds(q text) RETURNS double precision
LANGUAGE plpgsql AS $$
DECLARE t timestamptz := clock_timestamp();
BEGIN
    EXECUTE q;
    RETURN extract(epoch FROM clock_timestamp() - t);
END
$$;

-- 1. Bare INSERT: the physical limit of an append. A table shaped like
-- es.events with the same constraints and indexes (and, bench/run.sh's
-- load_append_data, the same rows before the runs). The position and the
-- version come from two sequences (no stream row, no version check; a
-- version unique in the table keeps UNIQUE (stream_id, version) satisfied
-- for any stream), the id from bl.uuid_v7().
-- bare.streams: the least a per-stream version costs on top of that, an
-- UPDATE of the stream's row in the same statement
-- (bench/pgbench/append_bare_stream.sql); its versions start far above the
-- sequence's so that the two never meet in UNIQUE (stream_id, version).
CREATE SCHEMA bare;
CREATE SEQUENCE bare.position;
CREATE SEQUENCE bare.version;
CREATE TABLE bare.events (
    global_position bigint      NOT NULL PRIMARY KEY,
    stream_id       text        NOT NULL,
    stream_type     text        NOT NULL,
    version         bigint      NOT NULL,
    event_type      text        NOT NULL,
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL DEFAULT '{}',
    event_id        uuid        NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream_id, version),
    UNIQUE (event_id)
);
CREATE INDEX ON bare.events (event_type, global_position);
CREATE INDEX ON bare.events (stream_type, global_position);
CREATE TABLE bare.streams (
    stream_id text   NOT NULL PRIMARY KEY,
    version   bigint NOT NULL
) WITH (fillfactor = 70);
INSERT INTO bare.streams SELECT 'acct-' || i, 1000000000000 FROM generate_series(1, 1000) i;
-- The other way to keep a stream's version (bench/pgbench/append_bare_lock.sql):
-- no stream row; a per-stream advisory lock and a probe of the stream's last
-- version in UNIQUE (stream_id, version). Its versions come from this
-- sequence (far above the others) so the measurement never fails on a race.
CREATE SEQUENCE bare.lock_version START 2000000000000;

-- 2. A hand-written plpgsql append, as a careful user would write it without
-- the extension: its own streams and events tables like ours, lock the
-- stream's row, check the version, then insert. Correct under concurrency:
-- the row lock queues writers of one stream and SELECT ... FOR UPDATE
-- re-reads the row after the wait; a missing stream row is created with
-- ON CONFLICT DO NOTHING and then locked, so two first appends to one
-- stream cannot both pass; UNIQUE (stream_id, version) backs it all up.
CREATE SCHEMA pl;
CREATE SEQUENCE pl.position;
CREATE TABLE pl.streams (
    stream_id   text        NOT NULL PRIMARY KEY,
    stream_type text        NOT NULL,
    version     bigint      NOT NULL CHECK (version >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 70);
CREATE INDEX ON pl.streams (stream_type);
CREATE TABLE pl.events (LIKE bare.events INCLUDING ALL);

CREATE FUNCTION pl.append_event(p_stream_id text, p_event_type text, p_data jsonb,
                                p_expected_version bigint DEFAULT NULL, p_metadata jsonb DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    cur bigint;
    st  text;
BEGIN
    SELECT version, stream_type INTO cur, st FROM pl.streams WHERE stream_id = p_stream_id FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO pl.streams (stream_id, stream_type, version)
        VALUES (p_stream_id, split_part(p_stream_id, '-', 1), 0)
        ON CONFLICT (stream_id) DO NOTHING;
        SELECT version, stream_type INTO cur, st FROM pl.streams WHERE stream_id = p_stream_id FOR UPDATE;
    END IF;
    IF p_expected_version IS NOT NULL AND p_expected_version <> cur THEN
        RAISE EXCEPTION 'wrong expected version for stream "%": expected %, actual %',
                        p_stream_id, p_expected_version, cur
            USING ERRCODE = 'serialization_failure';
    END IF;
    UPDATE pl.streams SET version = cur + 1, updated_at = now() WHERE stream_id = p_stream_id;
    INSERT INTO pl.events (global_position, stream_id, stream_type, version, event_type, data, metadata, event_id)
    VALUES (nextval('pl.position'), p_stream_id, st, cur + 1, p_event_type, p_data,
            COALESCE(p_metadata, '{}'), bl.uuid_v7());
    RETURN cur + 1;
END
$$;

CREATE FUNCTION pl.stream_version(p_stream_id text) RETURNS bigint
LANGUAGE sql STABLE
RETURN COALESCE((SELECT version FROM pl.streams WHERE stream_id = p_stream_id), 0);

-- 3. The bank fold in plpgsql, as a plain aggregate over es.events rows: the
-- same state as the native reducers defined in bench/sql/data_bank.sql
-- (numeric is exact, like the reducers' decimals).
CREATE FUNCTION pl.bank_fold(s jsonb, e es.events) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    CASE e.event_type
        WHEN 'AccountOpened' THEN
            RETURN s || jsonb_build_object('owner', e.data->'owner', 'balance', (e.data->>'initialBalance')::numeric, 'isActive', true);
        WHEN 'MoneyDeposited' THEN
            RETURN s || jsonb_build_object('balance', coalesce((s->>'balance')::numeric, 0) + (e.data->>'amount')::numeric,
                                           'transactionCount', coalesce((s->>'transactionCount')::int, 0) + 1);
        WHEN 'MoneyWithdrawn' THEN
            RETURN s || jsonb_build_object('balance', coalesce((s->>'balance')::numeric, 0) - (e.data->>'amount')::numeric,
                                           'transactionCount', coalesce((s->>'transactionCount')::int, 0) + 1);
        WHEN 'AccountClosed' THEN
            RETURN s || '{"isActive": false}';
        ELSE
            RETURN s;
    END CASE;
END
$$;
CREATE AGGREGATE pl.bank_fold_agg(es.events) (SFUNC = pl.bank_fold, STYPE = jsonb, INITCOND = '{}');

-- 4. Reads: the baseline is a plain SELECT ... ORDER BY on es.events itself
-- (bench/pgbench/read_*_plain.sql), so both sides read the same rows.
