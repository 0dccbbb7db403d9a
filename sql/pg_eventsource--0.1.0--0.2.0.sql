-- pg_eventsource 0.1.0 -> 0.2.0 (ALTER EXTENSION pg_eventsource UPDATE).
--
-- Made by tests/upgrade/assemble-0.1.0--0.2.0.sh from the SQL files of 0.2.0:
--   1. tables of 0.1.0: es.streams gains last_position and chain_hash (its
--      last columns, as in a fresh install), backfilled with each stream's largest global_position;
--      es.aggregates.fold becomes text (when 05_aggregates.sql says so);
--   2. functions of 0.1.0 whose body changed, replaced (same signature, so
--      their ACLs and comments stay), and sql/04_horizon.sql (es.horizon
--      dropped and created again: its columns changed);
--   3. the files 0.1.0 did not have, verbatim, in the order of the
--      extension_sql_file! graph in src/lib.rs: 06_projections, 07_subscriptions,
--      08_stats, 09_verify, 10_privileges;
--   4. what the finalize file (sql/04_guards.sql in 0.1.0, now sql/11_guards.sql)
--      gained: REVOKEs on the new functions.
-- The Rust-generated objects (#[pg_extern]) are the same in both versions.
--
-- The result must equal a fresh CREATE EXTENSION of 0.2.0: functions, tables,
-- columns in order, constraints, indexes, triggers (and ENABLE ALWAYS), views,
-- policies and RLS flags, ACLs and pg_init_privs, config tables.
-- scripts/test_upgrade.sh proves it (and prints what differs if not).

\echo Use "ALTER EXTENSION pg_eventsource UPDATE TO '0.2.0'" to load this file. \quit

-- ---------------------------------------------------------------------
-- 1. Tables of 0.1.0.
--
-- es.streams.last_position: the global_position of the stream's last
-- event; an append must place its events after it. ALTER TABLE holds an
-- ACCESS EXCLUSIVE lock on es.streams until the update commits, so no append
-- runs between the backfill and the end of the upgrade.

ALTER TABLE es.streams ADD COLUMN last_position bigint NOT NULL DEFAULT 0;

UPDATE es.streams s
   SET last_position = e.last_position
  FROM (SELECT e.stream_id, max(e.global_position) AS last_position
          FROM es.events e GROUP BY e.stream_id) e
 WHERE e.stream_id = s.stream_id;

-- es.streams.chain_hash: the SHA-256 chain over a stream's events
-- (src/store/chain.rs). Streams that exist before the upgrade have none (NULL):
-- their appends leave it NULL and es.verify() does not check them.
ALTER TABLE es.streams ADD COLUMN chain_hash bytea;

-- The CHECK (version > 0) of es.events and es.streams: versions come only
-- from the append path (es.verify checks them), and PostgreSQL read each
-- CHECK back and compiled it on every append.
ALTER TABLE es.events DROP CONSTRAINT events_version_check;
ALTER TABLE es.streams DROP CONSTRAINT streams_version_check;

-- es.aggregates.fold: regprocedure -> text, the signature schema-qualified as
-- es.define_aggregate writes it (fold::text with search_path pg_catalog, pg_temp).
DO $$
DECLARE
    caller_path constant text := pg_catalog.current_setting('search_path');
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    ALTER TABLE es.aggregates ALTER COLUMN fold TYPE text USING fold::text;
    PERFORM pg_catalog.set_config('search_path', caller_path, true);
END
$$;

-- ---------------------------------------------------------------------
-- 2. functions and triggers of 0.1.0 that changed

-- sql/05_aggregates.sql
CREATE OR REPLACE FUNCTION es.define_aggregate(
    stream_type    text,
    fold           regprocedure DEFAULT NULL,
    reducers       jsonb        DEFAULT NULL,
    initial_state  jsonb        DEFAULT '{}',
    snapshot_every integer      DEFAULT 100
) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f pg_catalog.pg_proc%ROWTYPE;
BEGIN
    IF stream_type IS NULL THEN
        RAISE EXCEPTION 'stream_type must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF stream_type = '' OR octet_length(stream_type) > 1000 THEN
        RAISE EXCEPTION 'stream_type must be 1 to 1000 bytes long' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (fold IS NULL) = (reducers IS NULL) THEN
        RAISE EXCEPTION 'give exactly one of fold and reducers'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'fold => ''my_fold(jsonb, es.events)''::regprocedure, or reducers => ''{"EventType": [steps]}''';
    END IF;
    IF initial_state IS NULL THEN
        RAISE EXCEPTION 'initial_state must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF snapshot_every IS NULL OR snapshot_every < 0 THEN
        RAISE EXCEPTION 'snapshot_every must be 0 (never) or a positive number of events, got %', snapshot_every
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF fold IS NOT NULL THEN
        SELECT * INTO f FROM pg_catalog.pg_proc WHERE oid = fold;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'fold function % does not exist', fold::oid
                USING ERRCODE = 'undefined_function';
        END IF;
        IF f.prokind <> 'f' OR f.proretset OR f.pronargs <> 2
           OR f.proargtypes[0] <> 'jsonb'::regtype OR f.proargtypes[1] <> 'es.events'::regtype
           OR f.prorettype <> 'jsonb'::regtype THEN
            RAISE EXCEPTION 'fold function % has the wrong signature', fold
                USING ERRCODE = 'invalid_function_definition',
                      HINT = 'A fold is a function (state jsonb, event es.events) RETURNS jsonb.';
        END IF;
        IF f.pronamespace = pg_my_temp_schema() OR pg_is_other_temp_schema(f.pronamespace) THEN
            RAISE EXCEPTION 'fold function % must not be a temporary function', fold
                USING ERRCODE = 'invalid_function_definition',
                      HINT = 'Create the fold function in a permanent schema.';
        END IF;
    ELSE
        PERFORM es._check_reducers(reducers);
    END IF;

    INSERT INTO es.aggregates AS a (stream_type, fold, reducers, initial_state, snapshot_every)
    VALUES (stream_type, fold::text, reducers, initial_state, snapshot_every)
    ON CONFLICT ON CONSTRAINT aggregates_pkey DO UPDATE
       SET fold = EXCLUDED.fold, reducers = EXCLUDED.reducers,
           initial_state = EXCLUDED.initial_state, snapshot_every = EXCLUDED.snapshot_every,
           revision = a.revision + 1, defined_at = now();
    PERFORM es._definitions_changed();
END
$$;

-- sql/03_read.sql
CREATE OR REPLACE FUNCTION es.stream_version(stream_id text) RETURNS bigint
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'es_stream_version';

-- sql/04_horizon.sql (es.read_horizon, es.read_all and es.horizon of 0.1.0 replaced)
DROP FUNCTION es.horizon();

-- The read horizon and reading every stream in global order.
--
-- es.read_all hands out only positions below the read horizon: every event
-- below it that will ever exist has committed already, so a reader paging by
-- position never skips one. With the library preloaded the horizon is held
-- back only by transactions of this database that have appended to
-- es.events and are still running (src/store/horizon.rs keeps them in shared
-- memory); without it, by the oldest transaction running anywhere in the
-- cluster (the snapshot's xmin).

-- The horizon as a transaction id: valid for the calling query's snapshot.
CREATE FUNCTION es._snapshot_horizon_xid() RETURNS bigint
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'es_snapshot_horizon_xid';

-- The horizon as a transaction id: valid for every snapshot taken after the
-- call (READ COMMITTED; in REPEATABLE READ and SERIALIZABLE, the
-- transaction's snapshot). Fresher than the snapshot's: a transaction that
-- ended between the query's snapshot and now does not hold it back.
CREATE FUNCTION es._next_horizon_xid() RETURNS bigint
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'es_next_horizon_xid';

-- What holds the horizon: its transaction id, the kind of holder
-- ('appending', 'prepared', 'ended', 'running', NULL for nothing), the
-- holder's pid when it has one, its transaction id, and for an appending
-- one whether a reader has waited for it (its end will be announced).
CREATE FUNCTION es._horizon_holder(
    OUT horizon_xid     bigint,
    OUT held_by         text,
    OUT holder_pid      integer,
    OUT holder_xid      bigint,
    OUT readers_waiting boolean
) RETURNS record
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'es_horizon_holder';

-- The position of a horizon id. Positions are (xid + offset) << 20; after a
-- restore from another cluster and before the first append here, every
-- restored event is below it (src/store/position.rs).
CREATE FUNCTION es._horizon_position(xid bigint) RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT CASE
        WHEN b.restored_foreign IS false THEN (xid + b.xid_offset) << 20
        ELSE COALESCE((SELECT max(e.global_position) FROM es.events e), 0) + 1
    END
    FROM (SELECT (SELECT p.restored_foreign FROM es.position_base p
                  WHERE p.system_identifier = es._system_identifier()) AS restored_foreign,
                 (SELECT p.xid_offset FROM es.position_base p
                  WHERE p.system_identifier = es._system_identifier()) AS xid_offset) b;
END;

CREATE OR REPLACE FUNCTION es.read_horizon() RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT es._horizon_position(es._snapshot_horizon_xid());
END;

COMMENT ON FUNCTION es.read_horizon() IS
    'The first position not handed out yet to a query with the caller''s snapshot: every event below it has committed. Held back only by running transactions of this database that appended (library preloaded).';

-- For readers that take their snapshot after asking (es.read_all, es.poll,
-- the projection worker).
CREATE FUNCTION es._next_read_horizon() RETURNS bigint
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT es._horizon_position(es._next_horizon_xid());
END;

-- PL/pgSQL so that the horizon is taken before the scan's snapshot (each
-- statement of a VOLATILE function takes a new one in READ COMMITTED).
CREATE OR REPLACE FUNCTION es.read_all(
    after_position bigint  DEFAULT 0,
    max_count      integer DEFAULT 1000,
    event_types    text[]  DEFAULT NULL,
    stream_types   text[]  DEFAULT NULL
) RETURNS SETOF es.events
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    horizon constant bigint := es._next_read_horizon();
BEGIN
    RETURN QUERY
    SELECT e.* FROM es.events e
    WHERE e.global_position > COALESCE(after_position, 0)
      AND e.global_position < horizon
      AND (event_types IS NULL OR e.event_type = ANY (event_types))
      AND (stream_types IS NULL OR e.stream_type = ANY (stream_types))
    ORDER BY e.global_position
    LIMIT max_count;
END
$$;

COMMENT ON FUNCTION es.read_all(bigint, integer, text[], text[]) IS
    'Events of every stream after after_position, in global order, never skipping one that commits later. Page with the last global_position returned.';

-- How far behind readers are held, and by whom.
CREATE FUNCTION es.horizon(
    OUT horizon_position  bigint,
    OUT held_back_events  bigint,
    OUT held_by           text,
    OUT holder_pid        integer,
    OUT holder_xid        xid8,
    OUT holder_database   name,
    OUT holder_xact_start timestamptz,
    OUT holder_age        interval,
    OUT readers_waiting   boolean
) RETURNS record
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT p.pos,
           (SELECT count(*) FROM es.events e WHERE e.global_position >= p.pos),
           h.held_by,
           COALESCE(h.holder_pid, a.pid),
           h.holder_xid::text::xid8,
           COALESCE(a.datname, x.database),
           COALESCE(a.xact_start, x.prepared),
           pg_catalog.now() - COALESCE(a.xact_start, x.prepared),
           h.readers_waiting
    FROM es._horizon_holder() h
    CROSS JOIN LATERAL (SELECT es._horizon_position(h.horizon_xid) AS pos) p
    LEFT JOIN LATERAL (
        SELECT s.pid, s.datname, s.xact_start
        FROM pg_catalog.pg_stat_activity s
        WHERE s.pid = h.holder_pid
           OR (h.holder_pid IS NULL AND h.held_by = 'running'
               AND s.backend_xid::text = (h.holder_xid & 4294967295)::text)
        LIMIT 1) a ON true
    LEFT JOIN LATERAL (
        SELECT t.database, t.prepared
        FROM pg_catalog.pg_prepared_xacts t
        WHERE h.held_by = 'prepared' AND t.transaction::text = (h.holder_xid & 4294967295)::text
        LIMIT 1) x ON true;
END;

COMMENT ON FUNCTION es.horizon() IS
    'The read horizon, how many committed events it holds back, and what holds it: an appending or prepared transaction of this database (or, without the library preloaded, the oldest transaction running anywhere).';

-- added to sql/02_append.sql in 0.2.0
-- The append statements move es.streams.chain_hash with this (src/store/chain.rs).
CREATE FUNCTION es._chain(prev bytea, prev_version bigint, stream_type text, digests bytea)
RETURNS bytea
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'es_chain';

-- The snapshot trigger of 0.1.0: sql/06_projections.sql (below) creates the one
-- AFTER INSERT trigger that takes snapshots and runs inline projections.
DROP TRIGGER events_snapshot ON es.events;
DROP FUNCTION es._take_snapshot();
DROP FUNCTION es._snapshot_due(text, bigint);

-- ---------------------------------------------------------------------
-- 3. sql/06_projections.sql

-- Projections: read models kept current from the events (Rust: src/projections/,
-- src/projections/inline.rs, src/projections/materialize.rs).
--
-- The registry is written only by the functions below, which run its writes
-- as the extension's owner and each handler as the role that created its
-- projection: a role can never make a handler run with more rights than
-- its own.

CREATE TABLE es.projection_registry (
    name            text        NOT NULL PRIMARY KEY,
    -- 'handler': a user function called once per event;
    -- 'materializer': es.materialize_aggregate's table of states
    kind            text        NOT NULL CHECK (kind IN ('handler', 'materializer')),
    mode            text        NOT NULL CHECK (mode IN ('inline', 'async')),
    -- function signatures, schema-qualified: text, not regprocedure, which
    -- pg_upgrade refuses in tables
    handler         text,
    reset           text,
    target          regclass,
    event_types     text[],
    stream_types    text[],
    owner           regrole     NOT NULL,
    -- handlers run with the search_path of the session that created the projection
    search_path     text        NOT NULL DEFAULT '',
    -- async: the last event handled (global_position); inline: unused (0)
    position        bigint      NOT NULL DEFAULT 0,
    status          text        NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'failed')),
    last_error      text,
    failed_position bigint,
    events_handled  bigint      NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'handler') = (handler IS NOT NULL)),
    CHECK ((kind = 'materializer') = (target IS NOT NULL))
);
COMMENT ON TABLE es.projection_registry IS
    'One row per projection. Written only by es.create_projection, es.run_projection, es.rebuild_projection, es.drop_projection and es.materialize_aggregate.';

SELECT pg_catalog.pg_extension_config_dump('es.projection_registry', '');

CREATE FUNCTION es._create_projection(
    name         text,
    handler      regprocedure,
    mode         text,
    event_types  text[],
    stream_types text[],
    reset        regprocedure,
    search_path  text
) RETURNS void
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'es_create_projection';

-- No SET here: it records the caller's search_path for the handler.
CREATE FUNCTION es.create_projection(
    name         text,
    handler      regprocedure,
    mode         text         DEFAULT 'inline',
    event_types  text[]       DEFAULT NULL,
    stream_types text[]       DEFAULT NULL,
    reset        regprocedure DEFAULT NULL
) RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT es._create_projection(name, handler, mode, event_types, stream_types, reset,
                                 pg_catalog.current_setting('search_path'));
END;

COMMENT ON FUNCTION es.create_projection(text, regprocedure, text, text[], text[], regprocedure) IS
    'Registers a projection: handler(es.events) is called for every matching event, inline (in the appending transaction) or async (by es.run_projection or the background worker).';

CREATE FUNCTION es.run_projection(name text, max_events integer DEFAULT 10000) RETURNS bigint
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'es_run_projection';

COMMENT ON FUNCTION es.run_projection(text, integer) IS
    'Catches an async projection up by at most max_events events, in global order, moving its position in the same transaction. Returns how many it handled (0 when another catch-up of it is running).';

CREATE FUNCTION es.rebuild_projection(name text) RETURNS bigint
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'es_rebuild_projection';

COMMENT ON FUNCTION es.rebuild_projection(text) IS
    'Resets the projection''s read model and replays every event into it, in this transaction. Returns how many events it replayed.';

CREATE FUNCTION es.drop_projection(name text) RETURNS void
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'es_drop_projection';

COMMENT ON FUNCTION es.drop_projection(text) IS
    'Removes a projection; its read model (tables the handler writes) is left as it is.';

-- es.materialize_aggregate: the table name is resolved with the caller's
-- search_path (this body has no SET, and names nothing unqualified), then a
-- function with a pinned search_path does the work.
CREATE FUNCTION es._materialize(stream_type text, table_name text, existing regclass,
                                default_schema name) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parts  text[];
    nsp    text;
    rel    text;
    target regclass := existing;
BEGIN
    IF stream_type IS NULL OR table_name IS NULL THEN
        RAISE EXCEPTION 'stream_type and table_name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT FROM es.aggregates a WHERE a.stream_type = _materialize.stream_type) THEN
        RAISE EXCEPTION 'stream type "%" has no aggregate definition', stream_type
            USING ERRCODE = 'undefined_object',
                  HINT = 'Define how its streams fold with es.define_aggregate first.';
    END IF;
    IF target IS NULL THEN
        parts := parse_ident(table_name);
        IF cardinality(parts) = 1 THEN
            nsp := default_schema;
            rel := parts[1];
            IF nsp IS NULL THEN
                RAISE EXCEPTION 'no schema has been selected to create the table in'
                    USING ERRCODE = 'invalid_schema_name', HINT = 'Qualify the table name with a schema.';
            END IF;
        ELSIF cardinality(parts) = 2 THEN
            nsp := parts[1];
            rel := parts[2];
        ELSE
            RAISE EXCEPTION 'improper table name "%"', table_name USING ERRCODE = 'invalid_name';
        END IF;
        EXECUTE format('CREATE TABLE %I.%I (stream_id text PRIMARY KEY, version bigint NOT NULL, state jsonb NOT NULL)',
                       nsp, rel);
        target := format('%I.%I', nsp, rel)::regclass;
    END IF;
    PERFORM es._create_materializer(stream_type, target);
END
$$;

CREATE FUNCTION es.materialize_aggregate(stream_type text, table_name text) RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT es._materialize(stream_type, table_name,
                           pg_catalog.to_regclass(table_name), pg_catalog.current_schema());
END;

COMMENT ON FUNCTION es.materialize_aggregate(text, text) IS
    'Keeps a table (stream_id primary key, version, state jsonb) with every stream''s state of a type current, inline, one fold step per event. Creates the table, or adopts an existing one of that shape.';

CREATE FUNCTION es._create_materializer(stream_type text, target regclass) RETURNS void
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'es_create_materializer';

-- Inline projections and snapshots: one AFTER INSERT row trigger
-- (src/projections/trigger.rs). Its WHEN clause asks the cached registry and
-- definitions whether an inline projection wants the row or the stream is due
-- a snapshot, so appends that need neither queue no trigger event. One
-- clause, not one per feature: PostgreSQL compiles a WHEN clause for every
-- statement, i.e. for every append.
CREATE FUNCTION es._after_insert_due(stream_type text, version bigint, event_type text) RETURNS boolean
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'es_after_insert_due';

CREATE FUNCTION es._after_insert() RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'es_after_insert';

CREATE TRIGGER events_after_insert
    AFTER INSERT ON es.events
    FOR EACH ROW WHEN (es._after_insert_due(NEW.stream_type, NEW.version, NEW.event_type))
    EXECUTE FUNCTION es._after_insert();
ALTER TABLE es.events ENABLE ALWAYS TRIGGER events_after_insert;

-- Matching events after an async projection's position: a lag of 0 means caught up.
CREATE VIEW es.projections AS
SELECT p.name, p.mode, p.kind,
       CASE WHEN p.mode = 'async' THEN p.position END AS position,
       CASE WHEN p.mode = 'async' THEN
           (SELECT count(*) FROM es.events e
             WHERE e.global_position > p.position
               AND (p.event_types IS NULL OR e.event_type = ANY (p.event_types))
               AND (p.stream_types IS NULL OR e.stream_type = ANY (p.stream_types)))
           ELSE 0 END AS lag,
       p.status, p.last_error, p.failed_position, p.events_handled,
       p.handler, p.reset, p.target, p.event_types, p.stream_types, p.owner,
       p.created_at, p.updated_at
FROM es.projection_registry p;

COMMENT ON VIEW es.projections IS
    'Every projection with its position (async), lag in events, status and last error.';

-- ---------------------------------------------------------------------
-- 3. sql/07_subscriptions.sql

-- Subscriptions: named consumers that poll the global order from a stored
-- checkpoint and acknowledge what they have processed (at-least-once), alone
-- or as a consumer group that splits the streams among its members.
--
-- Plain SQL and PL/pgSQL, SECURITY INVOKER: a caller acts with its own rights
-- (polling needs SELECT on es.events, like es.read_all). The two tables are
-- open to PUBLIC, and row-level security keeps every role to the
-- subscriptions of roles it belongs to; nobody reaches them without USAGE on
-- schema es, which the extension grants to no one.

CREATE TABLE es.subscriptions (
    consumer     text        NOT NULL PRIMARY KEY
                 CHECK (pg_catalog.char_length(consumer) BETWEEN 1 AND 200),
    -- NULL: every type; otherwise a non-empty set, stored sorted and distinct
    event_types  text[]
                 CHECK (event_types IS NULL OR (pg_catalog.cardinality(event_types) > 0
                        AND pg_catalog.array_ndims(event_types) = 1
                        AND pg_catalog.array_position(event_types, NULL) IS NULL
                        AND pg_catalog.array_position(event_types, '') IS NULL)),
    stream_types text[]
                 CHECK (stream_types IS NULL OR (pg_catalog.cardinality(stream_types) > 0
                        AND pg_catalog.array_ndims(stream_types) = 1
                        AND pg_catalog.array_position(stream_types, NULL) IS NULL
                        AND pg_catalog.array_position(stream_types, '') IS NULL)),
    -- the checkpoint: every matching event at or below it has been processed
    position     bigint      NOT NULL DEFAULT 0 CHECK (position >= 0),
    owner        regrole     NOT NULL DEFAULT current_user::regrole,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    -- the target of subscription_members' key: a member row carries its
    -- subscription's owner
    CONSTRAINT subscriptions_consumer_owner_key UNIQUE (consumer, owner)
);
COMMENT ON TABLE es.subscriptions IS
    'One row per consumer: its filters and checkpoint (position). Written by es.subscribe, es.ack, es.unsubscribe.';

-- A consumer group's member checkpoints, per group size: regrouping to
-- another size starts from the subscription's position, which member acks
-- raise to the lowest of a complete group's checkpoints.
CREATE TABLE es.subscription_members (
    consumer   text        NOT NULL,
    group_size integer     NOT NULL CHECK (group_size >= 1),
    member     integer     NOT NULL CHECK (member >= 0 AND member < group_size),
    position   bigint      NOT NULL CHECK (position >= 0),
    owner      regrole     NOT NULL DEFAULT current_user::regrole,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, group_size, member),
    -- A member row belongs to its subscription's owner: with the policy
    -- below, nobody can put a row under another role's consumer (it would
    -- hide from that owner and make its es.ack fail). The check runs as the
    -- table owner, past row-level security.
    CONSTRAINT subscription_members_subscription_fkey FOREIGN KEY (consumer, owner)
        REFERENCES es.subscriptions (consumer, owner) ON DELETE CASCADE
);
COMMENT ON TABLE es.subscription_members IS
    'Checkpoint of member m of a consumer group of size n; written by es.ack(consumer, position, member, size).';

SELECT pg_catalog.pg_extension_config_dump('es.subscriptions', '');
SELECT pg_catalog.pg_extension_config_dump('es.subscription_members', '');

-- A role sees and changes only the subscriptions of roles whose rights it
-- has (its own, and those of roles it is a member of). The table owner and
-- superusers are not subject to this.
ALTER TABLE es.subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE es.subscription_members ENABLE ROW LEVEL SECURITY;
CREATE POLICY subscriptions_by_owner ON es.subscriptions
    USING (pg_catalog.pg_has_role(owner, 'USAGE'))
    WITH CHECK (pg_catalog.pg_has_role(owner, 'USAGE'));
CREATE POLICY subscription_members_by_owner ON es.subscription_members
    USING (pg_catalog.pg_has_role(owner, 'USAGE'))
    WITH CHECK (pg_catalog.pg_has_role(owner, 'USAGE'));

-- A row's filters and owner never change once made (es.subscribe compares
-- the filters); checkpoints may be moved by hand (to replay, say), so
-- position stays updatable. The CHECK constraints hold direct inserts to
-- what es.subscribe would accept.
GRANT SELECT, INSERT, DELETE ON es.subscriptions, es.subscription_members TO PUBLIC;
GRANT UPDATE (position, updated_at) ON es.subscriptions, es.subscription_members TO PUBLIC;

-- ---------------------------------------------------------------------
-- Argument checks.

CREATE FUNCTION es._check_consumer(consumer text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF consumer IS NULL THEN
        RAISE EXCEPTION 'consumer must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF consumer = '' THEN
        RAISE EXCEPTION 'consumer must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF char_length(consumer) > 200 THEN
        RAISE EXCEPTION 'consumer is % characters long; at most 200 are allowed', char_length(consumer)
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
    RETURN consumer;
END
$$;

-- NULL means "every type"; otherwise the set of types, sorted and without
-- repeats, so that subscribing again with the same set in another order is
-- recognised as the same subscription.
CREATE FUNCTION es._check_types(arg text, types text[]) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF types IS NULL THEN
        RETURN NULL;
    END IF;
    IF cardinality(types) = 0 THEN
        RAISE EXCEPTION '% must not be an empty array', arg
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass NULL to match every type.';
    END IF;
    IF array_ndims(types) <> 1 THEN
        RAISE EXCEPTION '% must be a one-dimensional array', arg USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF array_position(types, NULL) IS NOT NULL THEN
        RAISE EXCEPTION '% must not contain NULL', arg USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF array_position(types, '') IS NOT NULL THEN
        RAISE EXCEPTION '% must not contain an empty string', arg USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN ARRAY(SELECT DISTINCT t COLLATE "C" FROM unnest(types) t ORDER BY 1);
END
$$;

-- A checkpoint must lie below the read horizon: a position no reader can
-- have been handed yet would skip the events that commit below it later.
CREATE FUNCTION es._check_position(arg text, pos bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    horizon bigint;
BEGIN
    IF pos IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', arg USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pos < 0 THEN
        RAISE EXCEPTION '% must not be negative, got %', arg, pos USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- the horizon es.poll and es.read_all hand out below (not lower than any
    -- they handed out before)
    horizon := es._next_read_horizon();
    IF pos >= horizon THEN
        RAISE EXCEPTION '% % is at or above the read horizon %: no reader has been handed it yet', arg, pos, horizon
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use the global_position of an event es.poll or es.read_all returned (es.read_horizon() - 1 means "everything so far").';
    END IF;
    RETURN pos;
END
$$;

CREATE FUNCTION es._check_member(member integer, size integer) RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF member IS NULL OR size IS NULL THEN
        RAISE EXCEPTION 'member and size must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF size < 1 THEN
        RAISE EXCEPTION 'size must be at least 1, got %', size USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF member < 0 OR member >= size THEN
        RAISE EXCEPTION 'member must be between 0 and % for a group of size %, got %', size - 1, size, member
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

CREATE FUNCTION es._check_max_count(max_count integer) RETURNS integer
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF max_count IS NULL OR max_count <= 0 THEN
        RAISE EXCEPTION 'max_count must be a positive number of events, got %', coalesce(max_count::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN max_count;
END
$$;

-- ---------------------------------------------------------------------
-- The events a subscription (or one member of its group) is due, gap-free
-- exactly as es.read_all: below a horizon the caller took before this
-- query's snapshot (es._next_read_horizon()).
-- A stream belongs to one member of a group of size n (its stream_id's hash
-- modulo n), so each stream's events stay in order within one member.
CREATE FUNCTION es._subscription_events(
    after_position bigint,
    horizon        bigint,
    max_count      integer,
    event_types    text[],
    stream_types   text[],
    member         integer,
    size           integer
) RETURNS SETOF es.events
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT e.* FROM es.events e
    WHERE e.global_position > after_position
      AND e.global_position < horizon
      AND (event_types IS NULL OR e.event_type = ANY (event_types))
      AND (stream_types IS NULL OR e.stream_type = ANY (stream_types))
      AND (size IS NULL OR (pg_catalog.hashtext(e.stream_id) & 2147483647) % size = member)
    ORDER BY e.global_position
    LIMIT max_count;
END;

-- ---------------------------------------------------------------------
-- The API.

CREATE FUNCTION es.subscribe(
    consumer      text,
    event_types   text[] DEFAULT NULL,
    stream_types  text[] DEFAULT NULL,
    from_position bigint DEFAULT 0
) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c   constant text   := es._check_consumer(subscribe.consumer);
    et  constant text[] := es._check_types('event_types', subscribe.event_types);
    st  constant text[] := es._check_types('stream_types', subscribe.stream_types);
    pos constant bigint := es._check_position('from_position', subscribe.from_position);
    cur es.subscriptions%ROWTYPE;
BEGIN
    INSERT INTO es.subscriptions (consumer, event_types, stream_types, position)
    VALUES (c, et, st, pos)
    ON CONFLICT ON CONSTRAINT subscriptions_pkey DO NOTHING;
    IF FOUND THEN
        RETURN;
    END IF;
    -- It exists. The same filters: a service restarting, keep its checkpoint.
    SELECT * INTO cur FROM es.subscriptions sub WHERE sub.consumer = c;
    IF NOT FOUND THEN
        -- hidden by row-level security: another role's
        RAISE EXCEPTION 'consumer "%" is already taken by a role whose rights you do not have', c
            USING ERRCODE = 'duplicate_object', HINT = 'Choose another consumer name.';
    END IF;
    IF cur.event_types IS DISTINCT FROM et OR cur.stream_types IS DISTINCT FROM st THEN
        RAISE EXCEPTION 'consumer "%" is already subscribed with other filters (event_types %, stream_types %)',
                c, coalesce(cur.event_types::text, 'NULL'), coalesce(cur.stream_types::text, 'NULL')
            USING ERRCODE = 'duplicate_object',
                  HINT = 'To change its filters, call es.unsubscribe first; that drops its checkpoint.';
    END IF;
END
$$;

COMMENT ON FUNCTION es.subscribe(text, text[], text[], bigint) IS
    'Creates a subscription; its checkpoint starts at from_position. Subscribing again with the same filters does nothing (the checkpoint is kept).';

CREATE FUNCTION es.poll(consumer text, max_count integer DEFAULT 100) RETURNS SETOF es.events
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
-- plan each poll for its own filters: a generic plan could not use the type indexes
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    -- before the scan's snapshot (a VOLATILE function's statements each take one)
    h   constant bigint  := es._next_read_horizon();
    c   constant text    := es._check_consumer(poll.consumer);
    n   constant integer := es._check_max_count(poll.max_count);
    cur es.subscriptions%ROWTYPE;
BEGIN
    SELECT * INTO cur FROM es.subscriptions sub WHERE sub.consumer = c;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'consumer "%" does not exist', c
            USING ERRCODE = 'undefined_object', HINT = 'Create it with es.subscribe.';
    END IF;
    RETURN QUERY SELECT * FROM es._subscription_events(cur.position, h, n, cur.event_types, cur.stream_types, NULL, NULL);
END
$$;

COMMENT ON FUNCTION es.poll(text, integer) IS
    'The subscription''s next events after its checkpoint, in global order, never skipping one that commits later. Does not move the checkpoint: call es.ack.';

CREATE FUNCTION es.poll(consumer text, max_count integer, member integer, size integer) RETURNS SETOF es.events
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    -- before the scan's snapshot (a VOLATILE function's statements each take one)
    h   constant bigint  := es._next_read_horizon();
    c   constant text    := es._check_consumer(poll.consumer);
    n   constant integer := es._check_max_count(poll.max_count);
    cur es.subscriptions%ROWTYPE;
    member_position bigint;
BEGIN
    PERFORM es._check_member(poll.member, poll.size);
    SELECT * INTO cur FROM es.subscriptions sub WHERE sub.consumer = c;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'consumer "%" does not exist', c
            USING ERRCODE = 'undefined_object', HINT = 'Create it with es.subscribe.';
    END IF;
    SELECT m.position INTO member_position FROM es.subscription_members m
     WHERE m.consumer = c AND m.group_size = poll.size AND m.member = poll.member;
    -- A member with no checkpoint yet starts at the subscription's; one whose
    -- checkpoint is older than the subscription's (left from an earlier
    -- grouping, or the subscription was acked as a whole) starts at the latter.
    RETURN QUERY SELECT * FROM es._subscription_events(GREATEST(cur.position, member_position), h, n,
                                                       cur.event_types, cur.stream_types, poll.member, poll.size);
END
$$;

COMMENT ON FUNCTION es.poll(text, integer, integer, integer) IS
    'Consumer group: the next events of the streams that belong to member (0 .. size-1) of a group of size, after that member''s checkpoint.';

CREATE FUNCTION es.ack(consumer text, global_position bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c   constant text   := es._check_consumer(ack.consumer);
    pos constant bigint := es._check_position('global_position', ack.global_position);
BEGIN
    -- Forward only: a concurrent ack re-checks the condition on the newer row.
    UPDATE es.subscriptions sub SET position = pos, updated_at = now()
     WHERE sub.consumer = c AND sub.position < pos;
    IF NOT FOUND THEN
        PERFORM FROM es.subscriptions sub WHERE sub.consumer = c;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'consumer "%" does not exist', c
                USING ERRCODE = 'undefined_object', HINT = 'Create it with es.subscribe.';
        END IF;
    END IF;
END
$$;

COMMENT ON FUNCTION es.ack(text, bigint) IS
    'Moves the subscription''s checkpoint forward to global_position (never back): events up to it are processed.';

CREATE FUNCTION es.ack(consumer text, global_position bigint, member integer, size integer) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c   constant text   := es._check_consumer(ack.consumer);
    pos constant bigint := es._check_position('global_position', ack.global_position);
    cur es.subscriptions%ROWTYPE;
BEGIN
    PERFORM es._check_member(ack.member, ack.size);
    SELECT * INTO cur FROM es.subscriptions sub WHERE sub.consumer = c;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'consumer "%" does not exist', c
            USING ERRCODE = 'undefined_object', HINT = 'Create it with es.subscribe.';
    END IF;
    INSERT INTO es.subscription_members AS m (consumer, group_size, member, position, owner)
    VALUES (c, ack.size, ack.member, GREATEST(pos, cur.position), cur.owner)
    ON CONFLICT ON CONSTRAINT subscription_members_pkey DO UPDATE
       SET position = EXCLUDED.position, updated_at = now()
     WHERE m.position < EXCLUDED.position;
    -- Raise the subscription's checkpoint to the group's low-water mark once
    -- every member has one. Members ack concurrently: whoever finds the row
    -- locked leaves it to the next ack rather than wait (the mark may lag, it
    -- never overtakes a member, since member checkpoints only grow).
    IF pos > cur.position THEN
        PERFORM FROM es.subscriptions sub WHERE sub.consumer = c FOR NO KEY UPDATE SKIP LOCKED;
        IF FOUND THEN
            UPDATE es.subscriptions sub SET position = g.low, updated_at = now()
              FROM (SELECT min(m.position) AS low, count(*) AS members
                      FROM es.subscription_members m
                     WHERE m.consumer = c AND m.group_size = ack.size) g
             WHERE sub.consumer = c AND g.members = ack.size AND sub.position < g.low;
        END IF;
    END IF;
END
$$;

COMMENT ON FUNCTION es.ack(text, bigint, integer, integer) IS
    'Consumer group: moves member''s checkpoint forward; once all members of the group have one, the subscription''s follows their minimum.';

CREATE FUNCTION es.unsubscribe(consumer text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c constant text := es._check_consumer(unsubscribe.consumer);
BEGIN
    DELETE FROM es.subscriptions sub WHERE sub.consumer = c;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'consumer "%" does not exist', c
            USING ERRCODE = 'undefined_object';
    END IF;
END
$$;

COMMENT ON FUNCTION es.unsubscribe(text) IS
    'Deletes the subscription with its checkpoints (group members included).';

-- How many matching events after a checkpoint es.poll could hand out now,
-- for es.subscription_status; NULL for a caller who may not read es.events.
-- PL/pgSQL, so that the count is planned only when it runs (the planner
-- evaluates es.read_horizon() while estimating, which a CASE cannot stop).
CREATE FUNCTION es._subscription_lag(after_position bigint, event_types text[], stream_types text[])
RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT has_table_privilege('es.events', 'SELECT') THEN
        RETURN NULL;
    END IF;
    RETURN (SELECT count(*) FROM es.events e
             WHERE e.global_position > after_position
               AND e.global_position < es.read_horizon()
               AND (event_types IS NULL OR e.event_type = ANY (event_types))
               AND (stream_types IS NULL OR e.stream_type = ANY (stream_types)));
END
$$;

-- lag costs as much as the consumer is behind. The view runs with its
-- owner's rights (security_invoker views need PostgreSQL 15), so it applies
-- the row-level security rule itself (functions in it run as the caller), and
-- is a security barrier so that no caller-supplied function sees rows before
-- that rule.
CREATE VIEW es.subscription_status WITH (security_barrier) AS
SELECT s.consumer, s.owner, s.event_types, s.stream_types, s.position,
       es._subscription_lag(s.position, s.event_types, s.stream_types) AS lag,
       s.created_at, s.updated_at
  FROM es.subscriptions s
 WHERE pg_catalog.pg_has_role(s.owner, 'USAGE');

COMMENT ON VIEW es.subscription_status IS
    'Each visible subscription with its checkpoint and lag (matching events after it that es.poll can hand out now).';

GRANT SELECT ON es.subscription_status TO PUBLIC;

-- ---------------------------------------------------------------------
-- 3. sql/08_stats.sql

-- es.stats(): the store at a glance, as one jsonb document. It counts the
-- tables (a scan of es.events for the per-type counts), so call it for
-- dashboards and checks, not on a hot path.
CREATE FUNCTION es.stats() RETURNS jsonb
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT pg_catalog.jsonb_build_object(
        'total_events',    (SELECT count(*) FROM es.events),
        'total_streams',   (SELECT count(*) FROM es.streams),
        'total_snapshots', (SELECT count(*) FROM es.snapshots),
        'events_by_type',  COALESCE((SELECT pg_catalog.jsonb_object_agg(t.event_type, t.n ORDER BY t.event_type)
                                       FROM (SELECT e.event_type, count(*) AS n FROM es.events e
                                              GROUP BY e.event_type) t), '{}'::jsonb),
        'streams_by_type', COALESCE((SELECT pg_catalog.jsonb_object_agg(t.stream_type, t.n ORDER BY t.stream_type)
                                       FROM (SELECT s.stream_type, count(*) AS n FROM es.streams s
                                              GROUP BY s.stream_type) t), '{}'::jsonb),
        'aggregates',      COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                            'stream_type', a.stream_type,
                                            'kind', CASE WHEN a.fold IS NULL THEN 'reducers' ELSE 'fold' END,
                                            'revision', a.revision,
                                            'snapshot_every', a.snapshot_every) ORDER BY a.stream_type)
                                       FROM es.aggregates a), '[]'::jsonb),
        'projections',     COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                            'name', p.name, 'mode', p.mode, 'kind', p.kind,
                                            'position', p.position, 'lag', p.lag,
                                            'status', p.status, 'last_error', p.last_error) ORDER BY p.name)
                                       FROM es.projections p), '[]'::jsonb),
        'subscriptions',   COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                            'consumer', s.consumer, 'position', s.position,
                                            'lag', s.lag) ORDER BY s.consumer)
                                       FROM es.subscription_status s), '[]'::jsonb),
        'last_position',   (SELECT max(e.global_position) FROM es.events e),
        'horizon',         es.read_horizon()
    );
END;

COMMENT ON FUNCTION es.stats() IS
    'Counts of events, streams and snapshots (total and by type), aggregate definitions, projections and subscriptions with their positions and lag, the last position and the read horizon.';

-- ---------------------------------------------------------------------
-- 3. sql/09_verify.sql

-- Helpers of es.verify (Rust: src/store/chain.rs, src/projections/materialize.rs).
CREATE FUNCTION es._stream_chain(stream_id text) RETURNS bytea
LANGUAGE c STABLE STRICT
AS 'MODULE_PATHNAME', 'es_stream_chain';

CREATE FUNCTION es._materialized_rows(projection text)
RETURNS TABLE (stream_id text, version bigint, state jsonb)
LANGUAGE c STABLE STRICT
AS 'MODULE_PATHNAME', 'es_materialized_rows';

-- es.verify(): checks the store's invariants and returns one row per
-- violation; no rows means they all hold. mode 'quick' skips the checks that
-- fold streams (snapshots, materialized tables), which cost as much as
-- loading every stream.
CREATE FUNCTION es.verify(mode text DEFAULT 'full')
RETURNS TABLE (check_name text, object text, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p record;
    last_pos bigint := COALESCE((SELECT max(e.global_position) FROM es.events e), 0);
BEGIN
    IF mode IS NULL OR mode NOT IN ('full', 'quick') THEN
        RAISE EXCEPTION 'mode must be ''full'' or ''quick'', got %', COALESCE(quote_literal(mode), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- Versions 1..n, no gap (duplicates are ruled out by a unique key).
    RETURN QUERY
        SELECT 'stream_versions', g.stream_id,
               format('versions %s..%s in %s events', g.lo, g.hi, g.n)
          FROM (SELECT e.stream_id, min(e.version) AS lo, max(e.version) AS hi, count(*) AS n
                  FROM es.events e GROUP BY e.stream_id) g
         WHERE g.lo <> 1 OR g.hi <> g.n;

    -- es.streams agrees with the events: one row per stream, its version
    -- and type those of its last event, its last_position that event's.
    RETURN QUERY
        SELECT 'stream_row', COALESCE(s.stream_id, g.stream_id),
               CASE WHEN s.stream_id IS NULL THEN 'events without a row in es.streams'
                    WHEN g.stream_id IS NULL THEN 'row in es.streams without events'
                    ELSE format('es.streams has version %s, type %s, last_position %s; the events end at version %s, type %s, position %s',
                                s.version, s.stream_type, s.last_position, g.hi, g.stream_type, g.last_pos)
               END
          FROM es.streams s
          FULL JOIN (SELECT e.stream_id, max(e.version) AS hi, max(e.global_position) AS last_pos,
                            min(e.stream_type) AS stream_type, count(DISTINCT e.stream_type) AS types
                       FROM es.events e GROUP BY e.stream_id) g ON g.stream_id = s.stream_id
         WHERE s.stream_id IS NULL OR g.stream_id IS NULL
            OR s.version <> g.hi OR s.stream_type <> g.stream_type OR g.types <> 1
            OR (s.last_position <> 0 AND s.last_position <> g.last_pos);

    -- The stored events still give each stream's hash chain: an event
    -- changed, removed or added past the guards (a superuser who disabled
    -- them, an edited dump) breaks it. Streams without a chain (older than
    -- it) are skipped.
    RETURN QUERY
        SELECT 'stream_hash', s.stream_id,
               'the stream''s events do not give its recorded hash chain: an event was changed, removed or added outside the extension''s functions'
          FROM es.streams s
         WHERE s.chain_hash IS NOT NULL AND s.chain_hash IS DISTINCT FROM es._stream_chain(s.stream_id);

    -- Each stream's versions in position order (what readers of the global order rely on).
    RETURN QUERY
        SELECT 'stream_order', o.stream_id,
               format('version %s has position %s, below version %s''s', o.version, o.global_position, o.version - 1)
          FROM (SELECT e.stream_id, e.version, e.global_position,
                       lag(e.global_position) OVER (PARTITION BY e.stream_id ORDER BY e.version) AS prev
                  FROM es.events e) o
         WHERE o.global_position < o.prev;

    -- Positions of projections and consumers lie within the store.
    RETURN QUERY
        SELECT 'projection_position', r.name,
               format('position %s is beyond the last event (%s)', r.position, last_pos)
          FROM es.projection_registry r WHERE r.position > last_pos;
    RETURN QUERY
        SELECT 'subscription_position', s.consumer,
               format('position %s is beyond the last event (%s)', s.position, last_pos)
          FROM es.subscriptions s WHERE s.position > last_pos;
    RETURN QUERY
        SELECT 'subscription_position', m.consumer || ' member ' || m.member || '/' || m.group_size,
               format('position %s is beyond the last event (%s)', m.position, last_pos)
          FROM es.subscription_members m WHERE m.position > last_pos;

    IF mode = 'quick' THEN
        RETURN;
    END IF;

    -- Snapshots of the current revision equal a fold from scratch. (Older
    -- revisions' snapshots are never used; they are not checked.)
    RETURN QUERY
        SELECT 'snapshot', s.stream_id || '@' || s.version,
               format('snapshot state %s, fold from scratch %s', s.state, f.state)
          FROM es.snapshots s
          JOIN es.aggregates a ON a.stream_type = s.stream_type AND a.revision = s.revision
          CROSS JOIN LATERAL (SELECT es.fold(e ORDER BY e.version) AS state FROM es.events e
                               WHERE e.stream_id = s.stream_id AND e.version <= s.version) f
         WHERE f.state IS DISTINCT FROM s.state;

    -- Materialized tables equal every stream's loaded state. The table is
    -- read by es._materialized_rows as its owner, sandboxed: a rule or policy
    -- on it is that owner's code, never run with the rights of the caller.
    FOR p IN SELECT r.name, r.stream_types[1] AS stream_type, c.oid IS NOT NULL AS present,
                    c.relkind IN ('r', 'p') AS is_table
               FROM es.projection_registry r LEFT JOIN pg_class c ON c.oid = r.target
              WHERE r.kind = 'materializer' AND r.target IS NOT NULL
    LOOP
        IF NOT p.present OR NOT p.is_table THEN
            RETURN QUERY SELECT 'materialized_table'::text, p.name,
                                CASE WHEN p.present THEN 'is no longer an ordinary table; its rows were not compared'
                                     ELSE 'the table was dropped' END;
            CONTINUE;
        END IF;
        RETURN QUERY
            SELECT 'materialized_row'::text, p.name || ': ' || COALESCE(m.stream_id, l.stream_id),
                   format('table has version %s state %s; es.load gives version %s state %s',
                          m.version, m.state, l.version, l.state)
              FROM es._materialized_rows(p.name) m
              FULL JOIN (SELECT x.stream_id, x.version, x.state
                           FROM es.streams s, es.load(s.stream_id) x
                          WHERE s.stream_type = p.stream_type) l ON l.stream_id = m.stream_id
             WHERE (m.version, m.state) IS DISTINCT FROM (l.version, l.state);
    END LOOP;
END
$$;

COMMENT ON FUNCTION es.verify(text) IS
    'Checks the store''s invariants; one row per violation, none when all hold. ''quick'' skips the fold checks.';

-- ---------------------------------------------------------------------
-- 3. sql/10_privileges.sql

-- Granting access: the extension creates no roles and opens nothing to
-- PUBLIC beyond what row-level security guards (subscriptions). These
-- helpers give a role a documented set of rights, and take them back.
--
-- Readers read: es.read_stream, es.read_all, es.load, es.fold, es.stats(),
-- the views. Writers also append (only through the functions: no table
-- privilege to write is ever granted, so nobody can bypass the version
-- check), use projections and subscriptions. Defining aggregates stays with
-- the extension's owner (fold functions run in every append that takes a
-- snapshot): grant EXECUTE on es.define_aggregate by hand to delegate it.

CREATE FUNCTION es._require_extension_owner() RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT pg_has_role((SELECT e.extowner FROM pg_extension e WHERE e.extname = 'pg_eventsource'), 'USAGE') THEN
        RAISE EXCEPTION 'only the owner of extension pg_eventsource (or a member of it) may grant or revoke its privileges'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;

CREATE FUNCTION es._privileges(writer boolean)
RETURNS TABLE (kind text, object text, privilege text)
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT v.kind, v.object, v.privilege
      FROM (VALUES
        ('schema',   'es', 'USAGE', false),
        ('table',    'es.events', 'SELECT', false),
        ('table',    'es.streams', 'SELECT', false),
        ('table',    'es.snapshots', 'SELECT', false),
        ('table',    'es.aggregates', 'SELECT', false),
        ('table',    'es.position_base', 'SELECT', false),
        ('table',    'es.projections', 'SELECT', false),
        ('table',    'es.subscription_status', 'SELECT', false),
        ('function', 'es.append_event(text, text, jsonb, bigint, jsonb, uuid, text)', 'EXECUTE', true),
        ('function', 'es.append_events(text, jsonb, bigint, text)', 'EXECUTE', true),
        ('function', 'es.create_projection(text, regprocedure, text, text[], text[], regprocedure)', 'EXECUTE', true),
        ('function', 'es.run_projection(text, integer)', 'EXECUTE', true),
        ('function', 'es.rebuild_projection(text)', 'EXECUTE', true),
        ('function', 'es.drop_projection(text)', 'EXECUTE', true),
        ('function', 'es.materialize_aggregate(text, text)', 'EXECUTE', true)
      ) v(kind, object, privilege, for_writers)
     WHERE NOT v.for_writers OR writer;
END;

CREATE FUNCTION es._set_privileges(role regrole, writer boolean, do_grant boolean) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p record;
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'role must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM es._require_extension_owner();
    FOR p IN SELECT x.kind, x.object, x.privilege FROM es._privileges(writer) x
              -- a reader that is revoked keeps nothing; a writer that is
              -- revoked keeps what readers have
              WHERE do_grant OR NOT writer OR x.privilege = 'EXECUTE'
    LOOP
        EXECUTE format(CASE WHEN do_grant THEN 'GRANT %s ON %s %s TO %s' ELSE 'REVOKE %s ON %s %s FROM %s' END,
                       p.privilege, upper(p.kind),
                       CASE p.kind WHEN 'schema' THEN quote_ident(p.object)
                                   WHEN 'table' THEN p.object::regclass::text
                                   ELSE p.object::regprocedure::text END,
                       role);
    END LOOP;
END
$$;

CREATE FUNCTION es.grant_reader(role regrole) RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT es._set_privileges(role, false, true);
END;
COMMENT ON FUNCTION es.grant_reader(regrole) IS
    'Lets a role read: USAGE on schema es, SELECT on its tables and views (the read functions are open to all).';

CREATE FUNCTION es.grant_writer(role regrole) RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT es._set_privileges(role, true, true);
END;
COMMENT ON FUNCTION es.grant_writer(regrole) IS
    'Lets a role read, append (through the functions only), and use projections and subscriptions.';

CREATE FUNCTION es.revoke_reader(role regrole) RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT es._set_privileges(role, true, false);
    SELECT es._set_privileges(role, false, false);
END;
COMMENT ON FUNCTION es.revoke_reader(regrole) IS
    'Takes back everything es.grant_reader and es.grant_writer gave the role.';

CREATE FUNCTION es.revoke_writer(role regrole) RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT es._set_privileges(role, true, false);
END;
COMMENT ON FUNCTION es.revoke_writer(regrole) IS
    'Takes back what es.grant_writer gave beyond reading: the role stays a reader.';

-- ---------------------------------------------------------------------
-- 4. added to the finalize file (sql/11_guards.sql) in 0.2.0

REVOKE ALL ON FUNCTION es.create_projection(text, regprocedure, text, text[], text[], regprocedure) FROM PUBLIC;
REVOKE ALL ON FUNCTION es.run_projection(text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION es.rebuild_projection(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es.drop_projection(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es.materialize_aggregate(text, text) FROM PUBLIC;

-- Trigger functions and internal entry points are the extension's own: no
-- role may put them on a table of its own (a made-up row would reach other
-- roles' projections) or call them directly.
REVOKE ALL ON FUNCTION es._after_insert() FROM PUBLIC;
REVOKE ALL ON FUNCTION es._forbid_change() FROM PUBLIC;
REVOKE ALL ON FUNCTION es._merge_position_base() FROM PUBLIC;
