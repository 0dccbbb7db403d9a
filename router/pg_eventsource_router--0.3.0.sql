-- pg_eventsource_router 0.3.0: a router database in front of partition
-- databases, each an ordinary pg_eventsource database. A stream lives in
-- logical partition hashtext(stream_id) & (n - 1) (PL/Proxy's own rule), n
-- fixed at the first es.configure_partitions; several logical partitions
-- may share a database, so that one can later be split (docs/partitions.md).
--
-- The functions keep the names, arguments and errors of a single database
-- (a remote error comes back with its SQLSTATE). PL/Proxy runs every remote
-- call in its own transaction, committed before the router's ends, so the
-- writing functions refuse to run where a ROLLBACK would pretend to undo
-- them: inside BEGIN ... COMMIT, inside a subtransaction, or as the second
-- writing call of one transaction (es._routed_write, in the pg_eventsource
-- library: SQL cannot tell a transaction block from a driver's implicit
-- transaction).
\echo Use "CREATE EXTENSION pg_eventsource_router CASCADE" to load this file. \quit

DO $$
BEGIN
    IF pg_catalog.to_regnamespace('es') IS NOT NULL THEN
        RAISE EXCEPTION 'schema "es" already exists in this database: a router database holds no store of its own'
            USING ERRCODE = 'duplicate_schema',
                  HINT = 'Create the router in its own database; the partitions are pg_eventsource databases.';
    END IF;
END
$$;

CREATE SCHEMA es;
COMMENT ON SCHEMA es IS 'pg_eventsource_router: the store''s functions, routed to partition databases by stream id.';
-- The router holds nothing: each caller reaches the partitions as itself, and
-- their privileges decide what it may do.
GRANT USAGE ON SCHEMA es TO PUBLIC;

-- es.events' columns, as the partitions return them.
CREATE TYPE es.events AS (
    global_position bigint,
    stream_id       text,
    stream_type     text,
    version         bigint,
    event_type      text,
    data            jsonb,
    metadata        jsonb,
    event_id        uuid,
    recorded_at     timestamptz,
    schema_version  integer
);

-- ---------------------------------------------------------------------------
-- Configuration: the PL/Proxy cluster is the foreign server es_partitions,
-- one option p<N> per logical partition (not part of the extension, so that
-- pg_dump keeps it).

CREATE FUNCTION es.partitions() RETURNS TABLE (partition integer, connstr text)
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT pg_catalog.substr(o.opt, 2, pg_catalog.strpos(o.opt, '=') - 2)::integer,
           pg_catalog.substr(o.opt, pg_catalog.strpos(o.opt, '=') + 1)
      FROM pg_catalog.pg_foreign_server s
     CROSS JOIN LATERAL pg_catalog.unnest(s.srvoptions) AS o(opt)
     WHERE s.srvname = 'es_partitions' AND o.opt OPERATOR(pg_catalog.~) '^p[0-9]+='
     ORDER BY 1;
END;

COMMENT ON FUNCTION es.partitions() IS
    'The logical partitions and the connection string of the database each lives in.';

CREATE FUNCTION es._partition_count() RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer := (SELECT pg_catalog.count(*) FROM es.partitions());
BEGIN
    IF n = 0 THEN
        RAISE EXCEPTION 'no partitions are configured on this router'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Run es.configure_partitions(ARRAY[''dbname=... host=...'', ...]) first: one connection string per logical partition, a power of two of them.';
    END IF;
    RETURN n;
END
$$;

-- Before es.configure_partitions creates the server, PL/Proxy falls back to
-- its configuration-function API (schema plproxy) to find the cluster: these
-- answer with a clear error instead of its "cluster not found" (XX000). Once
-- the server exists PL/Proxy never calls them. (A cluster name from a
-- function would have given the same error, at a cost on every call.)
CREATE SCHEMA plproxy;

CREATE FUNCTION plproxy.get_cluster_version(cluster_name text) RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF cluster_name = 'es_partitions' THEN
        PERFORM es._partition_count();
    END IF;
    RAISE EXCEPTION 'PL/Proxy cluster "%" is not defined in this database', cluster_name
        USING ERRCODE = 'undefined_object';
END
$$;

CREATE FUNCTION plproxy.get_cluster_partitions(cluster_name text) RETURNS SETOF text
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT NULL::text WHERE false;
END;

CREATE FUNCTION plproxy.get_cluster_config(IN cluster_name text, OUT key text, OUT val text) RETURNS SETOF record
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT NULL::text, NULL::text WHERE false;
END;

CREATE FUNCTION es.configure_partitions(connstrs text[]) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n constant integer := COALESCE(pg_catalog.cardinality(connstrs), 0);
    configured constant integer := (SELECT pg_catalog.count(*) FROM es.partitions());
    options text;
BEGIN
    IF n < 1 OR n & (n - 1) <> 0 OR pg_catalog.array_ndims(connstrs) <> 1 THEN
        RAISE EXCEPTION 'es.configure_partitions needs one connection string per logical partition, a power of two of them (1, 2, 4, ...), not %', n
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Several logical partitions may name the same database: 16 strings over 4 databases lets each be split later.';
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.unnest(connstrs) c WHERE c IS NULL OR pg_catalog.btrim(c) = '') THEN
        RAISE EXCEPTION 'es.configure_partitions: a connection string is NULL or empty'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Callers connect as themselves; a user or password here would make every
    -- caller that user on the partitions.
    IF EXISTS (SELECT FROM pg_catalog.unnest(connstrs) c
                WHERE c OPERATOR(pg_catalog.~*) '(^|\s)(user|password|passfile|service)\s*='
                   OR c OPERATOR(pg_catalog.~*) '^\s*postgres(ql)?://') THEN
        RAISE EXCEPTION 'es.configure_partitions: a connection string names a user, a password, a passfile or a service, or is a URI'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give host, port and dbname as key=value pairs; every caller connects as itself. Passwords belong in .pgpass or in a user mapping a superuser creates (CREATE USER MAPPING FOR role SERVER es_partitions OPTIONS (password ''...'')).';
    END IF;
    IF configured > 0 AND configured <> n THEN
        RAISE EXCEPTION 'this router has % logical partitions, fixed when they were first configured: another count would move streams to other partitions', configured
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = pg_catalog.format('Pass %s connection strings; several may name the same database. To give some logical partitions a database of their own, follow the split procedure (docs/partitions.md).', configured);
    END IF;
    IF configured = 0 THEN
        SELECT pg_catalog.string_agg(pg_catalog.format('p%s %L', c.i - 1, c.s), ', ' ORDER BY c.i) INTO options
          FROM pg_catalog.unnest(connstrs) WITH ORDINALITY AS c(s, i);
        EXECUTE pg_catalog.format('CREATE SERVER es_partitions FOREIGN DATA WRAPPER plproxy OPTIONS (%s)', options);
        -- each caller connects to the partitions as itself; they check its rights
        CREATE USER MAPPING FOR PUBLIC SERVER es_partitions;
        GRANT USAGE ON FOREIGN SERVER es_partitions TO PUBLIC;
    ELSE
        SELECT pg_catalog.string_agg(pg_catalog.format('SET p%s %L', c.i - 1, c.s), ', ' ORDER BY c.i) INTO options
          FROM pg_catalog.unnest(connstrs) WITH ORDINALITY AS c(s, i);
        EXECUTE pg_catalog.format('ALTER SERVER es_partitions OPTIONS (%s)', options);
    END IF;
END
$$;

COMMENT ON FUNCTION es.configure_partitions(text[]) IS
    'Points the router at its partition databases: one connection string per logical partition, a power of two of them, fixed at the first call (later calls re-point them).';

REVOKE ALL ON FUNCTION es.configure_partitions(text[]) FROM PUBLIC;

CREATE FUNCTION es.partition_of(stream_id text) RETURNS integer
LANGUAGE sql STABLE STRICT
BEGIN ATOMIC
    SELECT pg_catalog.hashtext(stream_id) & (es._partition_count() - 1);
END;

COMMENT ON FUNCTION es.partition_of(text) IS
    'The logical partition (0 .. n - 1) of a stream: hashtext(stream_id) & (n - 1), as PL/Proxy routes it.';

-- Before a writing call (done = false): 25001 inside a transaction block or
-- after another writing call of this transaction. After it (done = true):
-- notes the call. In the pg_eventsource library (src/router/mod.rs).
CREATE FUNCTION es._routed_write(function_name text, done boolean) RETURNS void
LANGUAGE c VOLATILE STRICT
AS 'MODULE_PATHNAME', 'es_router_write';

-- ---------------------------------------------------------------------------
-- Reads: straight to the stream's partition.

CREATE FUNCTION es.read_stream(
    stream_id    text,
    from_version bigint  DEFAULT 1,
    max_count    bigint  DEFAULT NULL,
    raw          boolean DEFAULT false
) RETURNS SETOF es.events
LANGUAGE plproxy VOLATILE
AS $$
    CLUSTER 'es_partitions';
    RUN ON pg_catalog.hashtext(stream_id);
$$;

CREATE FUNCTION es.stream_version(stream_id text) RETURNS bigint
LANGUAGE plproxy VOLATILE
AS $$
    CLUSTER 'es_partitions';
    RUN ON pg_catalog.hashtext(stream_id);
$$;

CREATE FUNCTION es.load(stream_id text, at_version bigint DEFAULT NULL)
RETURNS TABLE (stream_id text, stream_type text, version bigint, state jsonb)
LANGUAGE plproxy VOLATILE
AS $$
    CLUSTER 'es_partitions';
    RUN ON pg_catalog.hashtext(stream_id);
$$;

CREATE FUNCTION es.load_at(stream_id text, at_time timestamptz)
RETURNS TABLE (stream_id text, stream_type text, version bigint, state jsonb)
LANGUAGE plproxy VOLATILE
AS $$
    CLUSTER 'es_partitions';
    RUN ON pg_catalog.hashtext(stream_id);
$$;

-- es.read_all of one logical partition: es.read_partition in its database
-- (which may hold others). Positions are that database's.
CREATE FUNCTION es._read_partition(
    partition       integer,
    partition_count integer,
    after_position  bigint,
    max_count       integer,
    event_types     text[],
    stream_types    text[],
    raw             boolean,
    up_to_position  bigint
) RETURNS SETOF es.events
LANGUAGE plproxy VOLATILE
AS $$
    CLUSTER 'es_partitions';
    RUN ON partition;
    TARGET es.read_partition;
$$;

CREATE FUNCTION es.read_all(
    partition      integer,
    after_position bigint  DEFAULT 0,
    max_count      integer DEFAULT 1000,
    event_types    text[]  DEFAULT NULL,
    stream_types   text[]  DEFAULT NULL,
    raw            boolean DEFAULT false,
    up_to_position bigint  DEFAULT NULL
) RETURNS SETOF es.events
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n constant integer := es._partition_count();
BEGIN
    IF partition IS NULL OR partition < 0 OR partition >= n THEN
        RAISE EXCEPTION 'partition must be between 0 and % on this router, not %', n - 1, partition
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'es.partitions() lists them; a consumer keeps one checkpoint per partition.';
    END IF;
    RETURN QUERY SELECT * FROM es._read_partition(partition, n, after_position, max_count,
                                                  event_types, stream_types, raw, up_to_position);
END
$$;

COMMENT ON FUNCTION es.read_all(integer, bigint, integer, text[], text[], boolean, bigint) IS
    'Events of one logical partition after after_position, in that partition''s global order, never skipping one that commits later. Positions are per partition: keep one checkpoint per partition.';

-- ---------------------------------------------------------------------------
-- Writes: one per transaction, outside transaction blocks.

CREATE FUNCTION es._append_event(
    stream_id        text,
    event_type       text,
    data             jsonb,
    expected_version bigint,
    metadata         jsonb,
    event_id         uuid,
    stream_type      text
) RETURNS bigint
LANGUAGE plproxy VOLATILE
AS $$
    CLUSTER 'es_partitions';
    RUN ON pg_catalog.hashtext(stream_id);
    TARGET es.append_event;
$$;

CREATE FUNCTION es.append_event(
    stream_id        text,
    event_type       text,
    data             jsonb,
    expected_version bigint DEFAULT NULL,
    metadata         jsonb  DEFAULT NULL,
    event_id         uuid   DEFAULT NULL,
    stream_type      text   DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v bigint;
BEGIN
    PERFORM es._routed_write('es.append_event', false);
    v := es._append_event(stream_id, event_type, data, expected_version, metadata, event_id, stream_type);
    PERFORM es._routed_write('es.append_event', true);
    RETURN v;
END
$$;

COMMENT ON FUNCTION es.append_event(text, text, jsonb, bigint, jsonb, uuid, text) IS
    'Appends one event on the stream''s partition, committed there at once: only as a statement of its own, outside BEGIN ... COMMIT.';

CREATE FUNCTION es._append_events(
    stream_id        text,
    events           jsonb,
    expected_version bigint,
    stream_type      text
) RETURNS bigint
LANGUAGE plproxy VOLATILE
AS $$
    CLUSTER 'es_partitions';
    RUN ON pg_catalog.hashtext(stream_id);
    TARGET es.append_events;
$$;

CREATE FUNCTION es.append_events(
    stream_id        text,
    events           jsonb,
    expected_version bigint DEFAULT NULL,
    stream_type      text   DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v bigint;
BEGIN
    PERFORM es._routed_write('es.append_events', false);
    v := es._append_events(stream_id, events, expected_version, stream_type);
    PERFORM es._routed_write('es.append_events', true);
    RETURN v;
END
$$;

COMMENT ON FUNCTION es.append_events(text, jsonb, bigint, text) IS
    'Appends several events to one stream atomically on its partition, committed there at once: only as a statement of its own, outside BEGIN ... COMMIT.';

-- ---------------------------------------------------------------------------
-- Definitions: on every partition database, each once (PL/Proxy's RUN ON
-- ALL opens one connection per distinct connection string), in parallel.
-- They are idempotent: after an error some databases may have the new
-- definition, and the same call again brings every one to it. Functions
-- named by signature (fold, fn) are text here: they exist in the
-- partitions, not in the router.

CREATE FUNCTION es._define_aggregate(
    stream_type    text,
    fold           text,
    reducers       jsonb,
    initial_state  jsonb,
    snapshot_every integer
) RETURNS SETOF text
LANGUAGE plproxy VOLATILE
AS $$
    CLUSTER 'es_partitions';
    RUN ON ALL;
    SELECT pg_catalog.current_database()::text
      FROM es.define_aggregate(stream_type, fold::regprocedure, reducers, initial_state, snapshot_every);
$$;

CREATE FUNCTION es.define_aggregate(
    stream_type    text,
    fold           text    DEFAULT NULL,
    reducers       jsonb   DEFAULT NULL,
    initial_state  jsonb   DEFAULT '{}',
    snapshot_every integer DEFAULT 100
) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM es._routed_write('es.define_aggregate', false);
    PERFORM es._define_aggregate(stream_type, fold, reducers, initial_state, snapshot_every);
    PERFORM es._routed_write('es.define_aggregate', true);
END
$$;

COMMENT ON FUNCTION es.define_aggregate(text, text, jsonb, jsonb, integer) IS
    'Defines (or redefines) an aggregate in every partition database; fold names a function that exists in each of them.';

CREATE FUNCTION es._define_event_schema(event_type text, schema jsonb, mode text) RETURNS SETOF integer
LANGUAGE plproxy VOLATILE
AS $$
    CLUSTER 'es_partitions';
    RUN ON ALL;
    TARGET es.define_event_schema;
$$;

CREATE FUNCTION es.define_event_schema(event_type text, schema jsonb, mode text DEFAULT 'enforce')
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v integer;
BEGIN
    PERFORM es._routed_write('es.define_event_schema', false);
    -- every database answers; they agree once they all have the definitions
    SELECT pg_catalog.max(r) INTO v FROM es._define_event_schema(event_type, schema, mode) r;
    PERFORM es._routed_write('es.define_event_schema', true);
    RETURN v;
END
$$;

COMMENT ON FUNCTION es.define_event_schema(text, jsonb, text) IS
    'Defines (or replaces) an event type''s JSON Schema in every partition database; returns the type''s current version.';

CREATE FUNCTION es._define_upcaster(
    event_type    text,
    from_version  integer,
    steps         jsonb,
    fn            text,
    to_event_type text
) RETURNS SETOF integer
LANGUAGE plproxy VOLATILE
AS $$
    CLUSTER 'es_partitions';
    RUN ON ALL;
    SELECT es.define_upcaster(event_type, from_version, steps, fn::regprocedure, to_event_type) AS _define_upcaster;
$$;

CREATE FUNCTION es.define_upcaster(
    event_type    text,
    from_version  integer,
    steps         jsonb DEFAULT NULL,
    fn            text  DEFAULT NULL,
    to_event_type text  DEFAULT NULL
) RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v integer;
BEGIN
    PERFORM es._routed_write('es.define_upcaster', false);
    SELECT pg_catalog.max(r) INTO v FROM es._define_upcaster(event_type, from_version, steps, fn, to_event_type) r;
    PERFORM es._routed_write('es.define_upcaster', true);
    RETURN v;
END
$$;

COMMENT ON FUNCTION es.define_upcaster(text, integer, jsonb, text, text) IS
    'Defines an upcaster in every partition database; fn names a function that exists in each of them. Returns the type''s current version.';

-- ---------------------------------------------------------------------------
-- Who connects: a role with USAGE on a foreign server may create a user
-- mapping for itself, and PL/Proxy would connect with its options (a user
-- name, and a password that libpq may find in the server's .pgpass): only
-- superusers create or change mappings for es_partitions.
CREATE FUNCTION es._guard_user_mappings() RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_event_trigger_ddl_commands() c
                WHERE c.object_type = 'user mapping'
                  AND c.object_identity LIKE '% on server es_partitions')
       AND NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = CURRENT_USER) THEN
        RAISE EXCEPTION 'only superusers may create or change user mappings for server es_partitions'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'The router connects to the partitions as the caller; a mapping decides which user that is.';
    END IF;
END
$$;

CREATE EVENT TRIGGER es_guard_user_mappings ON ddl_command_end
    WHEN TAG IN ('CREATE USER MAPPING', 'ALTER USER MAPPING')
    EXECUTE FUNCTION es._guard_user_mappings();
