-- pg_eventsource 0.2.0 -> 0.3.0 (assembled by tests/upgrade/assemble-0.2.0--0.3.0.sh
-- from the SQL files a fresh install runs; do not edit by hand).
\echo Use "ALTER EXTENSION pg_eventsource UPDATE TO '0.3.0'" to load this file. \quit

-- The shape each event was written in. A constant default: PostgreSQL
-- records it in the catalog and rewrites nothing, whatever the table's size.
ALTER TABLE es.events ADD COLUMN schema_version integer NOT NULL DEFAULT 1;

-- Cold storage for archived streams (sql/12_lifecycle.sql): es.events'
-- columns, schema_version included; es.read_stream below reads it.
CREATE TABLE es.archived_events (LIKE es.events INCLUDING DEFAULTS);
ALTER TABLE es.archived_events
    ADD CONSTRAINT archived_events_pkey PRIMARY KEY (global_position),
    ADD CONSTRAINT archived_events_stream_version_key UNIQUE (stream_id, version);
COMMENT ON TABLE es.archived_events IS
    'Events of archived streams (es.archive_stream). es.read_stream and es.load read them; es.read_all and es.poll do not.';

SELECT pg_catalog.pg_extension_config_dump('es.archived_events', '');
CREATE TABLE es.stream_lifecycle (
    stream_id     text        NOT NULL PRIMARY KEY,
    first_version bigint      NOT NULL DEFAULT 1 CHECK (first_version >= 1),
    chain_base    bytea,
    deleted       boolean     NOT NULL DEFAULT false,
    archived      boolean     NOT NULL DEFAULT false,
    updated_at    timestamptz NOT NULL DEFAULT pg_catalog.now()
);

SELECT pg_catalog.pg_extension_config_dump('es.stream_lifecycle', '');
-- Notifications where no relay has shared memory (the library not preloaded):
-- the payloads of committed appends waiting for the relay started on demand,
-- and that relay's pid (src/notifications/outbox.rs). Unlogged: they matter
-- only while the server runs. Only the extension's owner reads or writes them.
CREATE UNLOGGED TABLE es.notify_outbox (payload text NOT NULL);
CREATE UNLOGGED TABLE es.notify_outbox_relay (pid integer NOT NULL);
REVOKE ALL ON es.notify_outbox, es.notify_outbox_relay FROM PUBLIC;


-- sql/03_evolution.sql
-- Schema evolution: a JSON Schema per event type, checked on every append of
-- the type (Rust: src/evolution/validate.rs), and upcasters that read events
-- stored at an older schema version as the type's current one
-- (src/evolution/upcast.rs). Stored rows never change: es.events.schema_version
-- says which shape each event was written in.

-- One row per event type that has a schema.
CREATE TABLE es.event_schemas (
    event_type text        NOT NULL PRIMARY KEY,
    schema     jsonb       NOT NULL,
    mode       text        NOT NULL DEFAULT 'enforce' CHECK (mode IN ('enforce', 'warn', 'off')),
    defined_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE es.event_schemas IS
    'The JSON Schema each event type''s data is checked against on append (es.define_event_schema).';

-- One row per step of a type's chain: events of event_type stored at
-- from_version read as to_event_type (or event_type) at to_version.
CREATE TABLE es.upcasters (
    event_type    text        NOT NULL,
    from_version  integer     NOT NULL CHECK (from_version >= 1),
    steps         jsonb,
    -- the function's signature, schema-qualified: text, not regprocedure,
    -- because pg_upgrade refuses clusters whose tables have regprocedure columns
    fn            text,
    to_event_type text,
    to_version    integer     NOT NULL CHECK (to_version >= 1),
    defined_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_type, from_version),
    CHECK ((steps IS NULL) <> (fn IS NULL))
);
COMMENT ON TABLE es.upcasters IS
    'How events stored at an older schema version read as the next one (es.define_upcaster).';

SELECT pg_catalog.pg_extension_config_dump('es.event_schemas', '');
SELECT pg_catalog.pg_extension_config_dump('es.upcasters', '');

CREATE FUNCTION es._check_event_schema(schema jsonb) RETURNS void
LANGUAGE c STRICT IMMUTABLE
AS 'MODULE_PATHNAME', 'es_check_event_schema';

CREATE FUNCTION es._check_upcast_steps(steps jsonb) RETURNS void
LANGUAGE c STRICT IMMUTABLE
AS 'MODULE_PATHNAME', 'es_check_upcast_steps';

CREATE FUNCTION es._evolution_changed() RETURNS void
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'es_evolution_changed';

-- Whether any upcaster exists: the read functions take their plain path
-- (no per-row call) when none does.
CREATE FUNCTION es._upcasting() RETURNS boolean
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'es_upcasting';

-- A filter on the event types readers see, as one on the stored rows: the
-- given types (unless renamed away) and every type renamed into one of them.
CREATE FUNCTION es._stored_types(event_types text[]) RETURNS text[]
LANGUAGE c STRICT STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'es_stored_types';

-- Upcasting column by column, for the read functions (no whole-row value
-- per event): the type and version an event reads as, and its data.
CREATE FUNCTION es._upcast_type(event_type text, schema_version integer) RETURNS text
LANGUAGE c STRICT STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'es_upcast_type';

CREATE FUNCTION es._upcast_version(event_type text, schema_version integer) RETURNS integer
LANGUAGE c STRICT STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'es_upcast_version';

CREATE FUNCTION es._upcast_data(event_type text, schema_version integer, data jsonb, metadata jsonb)
RETURNS jsonb
LANGUAGE c STRICT STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'es_upcast_data';

CREATE FUNCTION es.upcast(e es.events) RETURNS es.events
LANGUAGE c STRICT STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'es_upcast';

COMMENT ON FUNCTION es.upcast(es.events) IS
    'The event as every reader sees it: chained through its type''s upcasters to the current version (a dry run of what es.read_stream hands out).';

CREATE FUNCTION es.check_event(event_type text, data jsonb) RETURNS text
LANGUAGE c STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'es_check_event';

COMMENT ON FUNCTION es.check_event(text, jsonb) IS
    'NULL when data matches the event type''s schema (or it has none); otherwise what is wrong, as an append would report it.';

-- Checks shared by the two define functions.
CREATE FUNCTION es._check_event_type(what text, event_type text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF event_type IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', what USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF event_type = '' OR octet_length(event_type) > 1000 THEN
        RAISE EXCEPTION '% must be 1 to 1000 bytes long', what USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN event_type;
END
$$;

-- The version new appends of a type are stored at: one past its last
-- upcaster, or that upcaster's own version when it renames the type
-- (events still written under the old name keep being renamed on read).
CREATE FUNCTION es._append_version(event_type text) RETURNS integer
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT COALESCE((SELECT CASE WHEN u.to_event_type IS NULL THEN u.from_version + 1 ELSE u.from_version END
                       FROM es.upcasters u WHERE u.event_type = _append_version.event_type
                      ORDER BY u.from_version DESC LIMIT 1), 1);
END;

CREATE FUNCTION es.define_event_schema(event_type text, schema jsonb, mode text DEFAULT 'enforce')
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t constant text := es._check_event_type('event_type', define_event_schema.event_type);
BEGIN
    IF schema IS NULL THEN
        RAISE EXCEPTION 'schema must not be NULL' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'To stop checking a type, define its schema with mode => ''off''.';
    END IF;
    IF mode IS NULL OR mode NOT IN ('enforce', 'warn', 'off') THEN
        RAISE EXCEPTION 'mode must be ''enforce'', ''warn'' or ''off'', got %', coalesce(quote_literal(mode), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM es._check_event_schema(schema);
    INSERT INTO es.event_schemas AS s (event_type, schema, mode)
    VALUES (t, define_event_schema.schema, define_event_schema.mode)
    ON CONFLICT ON CONSTRAINT event_schemas_pkey DO UPDATE
       SET schema = EXCLUDED.schema, mode = EXCLUDED.mode, defined_at = now();
    PERFORM es._evolution_changed();
    RETURN es._append_version(t);
END
$$;

COMMENT ON FUNCTION es.define_event_schema(text, jsonb, text) IS
    'Defines (or replaces) the JSON Schema an event type''s data is checked against on every append: enforce (23514, nothing written), warn, or off. Returns the type''s current version.';

CREATE FUNCTION es.define_upcaster(
    event_type    text,
    from_version  integer,
    steps         jsonb        DEFAULT NULL,
    fn            regprocedure DEFAULT NULL,
    to_event_type text         DEFAULT NULL
) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t    constant text := es._check_event_type('event_type', define_upcaster.event_type);
    last es.upcasters%ROWTYPE;
    f    pg_catalog.pg_proc%ROWTYPE;
    to_v integer;
    walk text;
    hops integer := 0;
BEGIN
    IF from_version IS NULL THEN
        RAISE EXCEPTION 'from_version must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF (steps IS NULL) = (fn IS NULL) THEN
        RAISE EXCEPTION 'give exactly one of steps and fn'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'steps => ''[{"set": "currency", "value": "EUR"}]'', or fn => ''my_upcast(jsonb, jsonb)''::regprocedure';
    END IF;
    IF to_event_type IS NOT NULL THEN
        PERFORM es._check_event_type('to_event_type', to_event_type);
        IF to_event_type = t THEN
            RAISE EXCEPTION 'to_event_type names the same type as event_type'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    SELECT * INTO last FROM es.upcasters u WHERE u.event_type = t ORDER BY u.from_version DESC LIMIT 1;
    IF from_version < 1 OR from_version > COALESCE(last.from_version, 0) + 1 THEN
        RAISE EXCEPTION 'event type "%" is at version %: from_version must be between 1 and %, got %',
                t, COALESCE(last.from_version, 0) + 1, COALESCE(last.from_version, 0) + 1, from_version
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'An upcaster from the current version adds a version; one from an older version replaces that step.';
    END IF;
    IF last.to_event_type IS NOT NULL AND from_version > last.from_version THEN
        RAISE EXCEPTION 'event type "%" is read as "%" from version %; define further upcasters on "%"',
                t, last.to_event_type, last.from_version, last.to_event_type
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF to_event_type IS NOT NULL AND from_version < COALESCE(last.from_version, 0) THEN
        RAISE EXCEPTION 'only the last upcaster of a type may rename it (event type "%" has upcasters up to version %)',
                t, last.from_version + 1
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF steps IS NOT NULL THEN
        PERFORM es._check_upcast_steps(steps);
    ELSE
        SELECT * INTO f FROM pg_catalog.pg_proc WHERE oid = fn;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'upcaster function % does not exist', fn::oid USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF f.prokind <> 'f' OR f.proretset OR f.pronargs <> 2
           OR f.proargtypes[0] <> 'jsonb'::regtype OR f.proargtypes[1] <> 'jsonb'::regtype
           OR f.prorettype <> 'jsonb'::regtype THEN
            RAISE EXCEPTION 'upcaster function % has the wrong signature', fn
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'An upcaster is a function (data jsonb, metadata jsonb) RETURNS jsonb.';
        END IF;
        IF f.pronamespace = pg_my_temp_schema() OR pg_is_other_temp_schema(f.pronamespace) THEN
            RAISE EXCEPTION 'upcaster function % must not be a temporary function', fn
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Create it in a permanent schema.';
        END IF;
    END IF;
    IF to_event_type IS NOT NULL THEN
        -- the renamed events enter the other type's chain at its version now
        to_v := es._append_version(to_event_type);
        -- no cycle: following renames from the new type must not come back
        walk := to_event_type;
        WHILE walk IS NOT NULL LOOP
            IF walk = t THEN
                RAISE EXCEPTION 'renaming "%" to "%" would make a cycle of renames', t, to_event_type
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            hops := hops + 1;
            EXIT WHEN hops > 10000;
            SELECT u.to_event_type INTO walk FROM es.upcasters u
             WHERE u.event_type = walk ORDER BY u.from_version DESC LIMIT 1;
            IF NOT FOUND THEN
                walk := NULL;
            END IF;
        END LOOP;
    ELSE
        to_v := from_version + 1;
    END IF;

    INSERT INTO es.upcasters AS u (event_type, from_version, steps, fn, to_event_type, to_version)
    VALUES (t, from_version, steps, fn::text, to_event_type, to_v)
    ON CONFLICT ON CONSTRAINT upcasters_pkey DO UPDATE
       SET steps = EXCLUDED.steps, fn = EXCLUDED.fn, to_event_type = EXCLUDED.to_event_type,
           to_version = EXCLUDED.to_version, defined_at = now();

    -- Snapshots of aggregates whose streams hold events that read
    -- differently now (this type, or a type renamed into it) are no longer
    -- used: a new revision, as a redefinition of the aggregate gives.
    UPDATE es.aggregates a SET revision = a.revision + 1, defined_at = now()
     WHERE EXISTS (
        WITH RECURSIVE into_t(event_type) AS (
            SELECT t
            UNION
            SELECT u.event_type FROM es.upcasters u JOIN into_t i ON u.to_event_type = i.event_type)
        SELECT FROM into_t i
         WHERE EXISTS (SELECT FROM es.events e
                        WHERE e.event_type = i.event_type AND e.stream_type = a.stream_type));
    PERFORM es._evolution_changed();
    PERFORM es._definitions_changed();
    RETURN from_version + 1;
END
$$;

COMMENT ON FUNCTION es.define_upcaster(text, integer, jsonb, regprocedure, text) IS
    'Events of event_type stored at from_version read as from_version + 1 (renamed to to_event_type when given), through declarative steps or a function (data jsonb, metadata jsonb) RETURNS jsonb. Returns the type''s new current version.';

-- Every event type the store knows: stored ones (found by a skip scan of
-- the event type index), those with a schema, those with upcasters.
CREATE VIEW es.event_types AS
WITH RECURSIVE stored(event_type) AS (
    (SELECT e.event_type FROM es.events e ORDER BY e.event_type LIMIT 1)
    UNION ALL
    SELECT (SELECT e.event_type FROM es.events e WHERE e.event_type > s.event_type
             ORDER BY e.event_type LIMIT 1)
      FROM stored s WHERE s.event_type IS NOT NULL
), known(event_type) AS (
    SELECT s.event_type FROM stored s WHERE s.event_type IS NOT NULL
    UNION SELECT d.event_type FROM es.event_schemas d
    UNION SELECT u.event_type FROM es.upcasters u
    UNION SELECT u.to_event_type FROM es.upcasters u WHERE u.to_event_type IS NOT NULL
)
SELECT k.event_type,
       COALESCE((SELECT max(u.from_version) + 1 FROM es.upcasters u WHERE u.event_type = k.event_type), 1)
           AS current_version,
       (SELECT u.to_event_type FROM es.upcasters u WHERE u.event_type = k.event_type
         ORDER BY u.from_version DESC LIMIT 1) AS renamed_to,
       d.mode AS schema_mode,
       d.schema,
       COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                    'from_version', u.from_version, 'to_version', u.to_version,
                    'to_event_type', u.to_event_type, 'steps', u.steps, 'fn', u.fn)) ORDER BY u.from_version)
                   FROM es.upcasters u WHERE u.event_type = k.event_type), '[]'::jsonb) AS upcasters,
       (SELECT pg_catalog.count(*) FROM es.events e WHERE e.event_type = k.event_type) AS events
  FROM known k
  LEFT JOIN es.event_schemas d ON d.event_type = k.event_type;

COMMENT ON VIEW es.event_types IS
    'Every event type: its current schema version, the type it is renamed to, its schema and mode, its upcasters, and how many events of it are stored.';

-- Read functions that upcast. read_stream and read_all gained `raw`.
DROP FUNCTION es.read_stream(text, bigint, bigint);
CREATE FUNCTION es.read_stream(
    stream_id    text,
    from_version bigint  DEFAULT 1,
    max_count    bigint  DEFAULT NULL,
    raw          boolean DEFAULT false
) RETURNS SETOF es.events
LANGUAGE sql STABLE
BEGIN ATOMIC
    -- Four branches, of which one or two run: whether to upcast is asked
    -- once per query (an uncorrelated subquery: an InitPlan, run at the
    -- first row, after the statement's snapshot), and a branch whose answer
    -- is no stops before its scan. With no upcaster (or raw => true) the
    -- rows go out as the index scan reads them, with no per-row expression;
    -- otherwise column by column (sql/03_evolution.sql). The archive's
    -- branches (es.archive_stream) are an index probe that finds nothing for
    -- every other stream.
    SELECT e.* FROM (
        SELECT x.* FROM es.events x
         WHERE (SELECT raw OR NOT es._upcasting())
           AND x.stream_id = es._check_stream_id(read_stream.stream_id)
           AND x.version >= COALESCE(from_version, 1)
        UNION ALL
        SELECT x.global_position, x.stream_id, x.stream_type, x.version,
               es._upcast_type(x.event_type, x.schema_version),
               es._upcast_data(x.event_type, x.schema_version, x.data, x.metadata),
               x.metadata, x.event_id, x.recorded_at,
               es._upcast_version(x.event_type, x.schema_version)
          FROM es.events x
         WHERE (SELECT NOT raw AND es._upcasting())
           AND x.stream_id = es._check_stream_id(read_stream.stream_id)
           AND x.version >= COALESCE(from_version, 1)
        UNION ALL
        SELECT a.* FROM es.archived_events a
         WHERE (SELECT raw OR NOT es._upcasting())
           AND a.stream_id = read_stream.stream_id
           AND a.version >= COALESCE(from_version, 1)
        UNION ALL
        SELECT a.global_position, a.stream_id, a.stream_type, a.version,
               es._upcast_type(a.event_type, a.schema_version),
               es._upcast_data(a.event_type, a.schema_version, a.data, a.metadata),
               a.metadata, a.event_id, a.recorded_at,
               es._upcast_version(a.event_type, a.schema_version)
          FROM es.archived_events a
         WHERE (SELECT NOT raw AND es._upcasting())
           AND a.stream_id = read_stream.stream_id
           AND a.version >= COALESCE(from_version, 1)) e
     ORDER BY e.version
     LIMIT max_count;
END;

COMMENT ON FUNCTION es.read_stream(text, bigint, bigint, boolean) IS
    'Events of one stream from from_version on, in version order, upcast to their type''s current version (raw => true: as stored); max_count NULL = all.';

DROP FUNCTION es.read_all(bigint, integer, text[], text[]);
CREATE OR REPLACE FUNCTION es._horizon_position(xid bigint) RETURNS bigint
LANGUAGE c STABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'es_horizon_position';

CREATE FUNCTION es.read_all(
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
    horizon constant bigint := es._next_read_horizon();
    -- the first position not handed out: the horizon, or one past the bound
    below constant bigint := CASE WHEN up_to_position IS NULL OR up_to_position >= horizon THEN horizon
                                  ELSE GREATEST(up_to_position, 0) + 1 END;
BEGIN
    IF raw OR NOT es._upcasting() THEN
        RETURN QUERY
        SELECT e.* FROM es.events e
        WHERE e.global_position > COALESCE(after_position, 0)
          AND e.global_position < below
          AND (event_types IS NULL OR e.event_type = ANY (event_types))
          AND (stream_types IS NULL OR e.stream_type = ANY (stream_types))
        ORDER BY e.global_position
        LIMIT max_count;
    ELSE
        -- event_types names the types as read: a type renamed by an
        -- upcaster is found under its new name.
        RETURN QUERY
        SELECT e.global_position, e.stream_id, e.stream_type, e.version,
               es._upcast_type(e.event_type, e.schema_version),
               es._upcast_data(e.event_type, e.schema_version, e.data, e.metadata),
               e.metadata, e.event_id, e.recorded_at,
               es._upcast_version(e.event_type, e.schema_version)
        FROM es.events e
        WHERE e.global_position > COALESCE(after_position, 0)
          AND e.global_position < below
          AND (event_types IS NULL OR e.event_type = ANY (es._stored_types(event_types)))
          AND (stream_types IS NULL OR e.stream_type = ANY (stream_types))
        ORDER BY e.global_position
        LIMIT max_count;
    END IF;
END
$$;

COMMENT ON FUNCTION es.read_all(bigint, integer, text[], text[], boolean, bigint) IS
    'Events of every stream after after_position (and at most up_to_position), in global order, never skipping one that commits later. Page with the last global_position returned.';

-- New reads and writes for clients that keep their own positions:
-- es.last_position, es.append_multi (their privileges below).
CREATE FUNCTION es.last_position(
    event_types  text[] DEFAULT NULL,
    stream_types text[] DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    horizon constant bigint := es._next_read_horizon();
    types text[];
BEGIN
    IF event_types IS NULL AND stream_types IS NULL THEN
        RETURN COALESCE((SELECT e.global_position FROM es.events e
                          WHERE e.global_position < horizon
                          ORDER BY e.global_position DESC LIMIT 1), 0);
    ELSIF event_types IS NULL THEN
        RETURN COALESCE((SELECT pg_catalog.max(l.p) FROM pg_catalog.unnest(stream_types) AS t(st),
                           LATERAL (SELECT e.global_position FROM es.events e
                                     WHERE e.stream_type = t.st AND e.global_position < horizon
                                     ORDER BY e.global_position DESC LIMIT 1) AS l(p)), 0);
    END IF;
    -- the types as read: a type renamed by an upcaster is found under its new name
    types := CASE WHEN es._upcasting() THEN es._stored_types(event_types) ELSE event_types END;
    RETURN COALESCE((SELECT pg_catalog.max(l.p) FROM pg_catalog.unnest(types) AS t(et),
                       LATERAL (SELECT e.global_position FROM es.events e
                                 WHERE e.event_type = t.et AND e.global_position < horizon
                                   AND (stream_types IS NULL OR e.stream_type = ANY (stream_types))
                                 ORDER BY e.global_position DESC LIMIT 1) AS l(p)), 0);
END
$$;

COMMENT ON FUNCTION es.last_position(text[], text[]) IS
    'The global_position of the newest event es.read_all would hand out now with these filters (0 when none): where a consumer that starts now and skips history begins.';

CREATE FUNCTION es.partition_of(stream_id text, partition_count integer) RETURNS integer
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF partition_count < 1 OR partition_count & (partition_count - 1) <> 0 THEN
        RAISE EXCEPTION 'partition_count must be a power of two (1, 2, 4, ...), not %', partition_count
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN pg_catalog.hashtext(stream_id) & (partition_count - 1);
END
$$;

COMMENT ON FUNCTION es.partition_of(text, integer) IS
    'The logical partition (0 .. partition_count - 1) a router with partition_count partitions assigns the stream to: hashtext(stream_id) & (partition_count - 1).';

CREATE FUNCTION es.read_partition(
    partition       integer,
    partition_count integer,
    after_position  bigint  DEFAULT 0,
    max_count       integer DEFAULT 1000,
    event_types     text[]  DEFAULT NULL,
    stream_types    text[]  DEFAULT NULL,
    raw             boolean DEFAULT false,
    up_to_position  bigint  DEFAULT NULL
) RETURNS SETOF es.events
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    horizon constant bigint := es._next_read_horizon();
    below constant bigint := CASE WHEN up_to_position IS NULL OR up_to_position >= horizon THEN horizon
                                  ELSE GREATEST(up_to_position, 0) + 1 END;
    upcast constant boolean := NOT raw AND es._upcasting();
    mask integer;
    cur bigint := COALESCE(after_position, 0);
    -- NULL: no limit, as LIMIT NULL is for es.read_all
    remaining bigint := COALESCE(max_count, 9223372036854775807);
    want bigint;
    chunk bigint;
    last bigint;
    scanned bigint;
    got bigint;
BEGIN
    IF partition_count IS NULL OR partition_count < 1 OR partition_count & (partition_count - 1) <> 0 THEN
        RAISE EXCEPTION 'partition_count must be a power of two (1, 2, 4, ...), not %', partition_count
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF partition IS NULL OR partition < 0 OR partition >= partition_count THEN
        RAISE EXCEPTION 'partition must be between 0 and % (partition_count - 1), not %', partition_count - 1, partition
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    mask := partition_count - 1;
    -- The global order in ranges of `chunk` positions, each filtered for the
    -- partition: one statement with the partition's predicate and a LIMIT
    -- would be planned as a scan of the whole table (the planner cannot
    -- know how many rows the hash predicate keeps). A range that kept too
    -- few makes the next one larger.
    chunk := GREATEST(LEAST(remaining, 250000), 100) * 4;
    WHILE remaining > 0 LOOP
        want := remaining;
        SELECT pg_catalog.max(x.global_position), pg_catalog.count(*) INTO last, scanned
          FROM (SELECT e.global_position FROM es.events e
                 WHERE e.global_position > cur AND e.global_position < below
                 ORDER BY e.global_position LIMIT chunk) x;
        EXIT WHEN scanned = 0;
        IF NOT upcast THEN
            RETURN QUERY
            SELECT e.* FROM es.events e
            WHERE e.global_position > cur AND e.global_position <= last
              AND (pg_catalog.hashtext(e.stream_id) & mask) = partition
              AND (event_types IS NULL OR e.event_type = ANY (event_types))
              AND (stream_types IS NULL OR e.stream_type = ANY (stream_types))
            ORDER BY e.global_position
            LIMIT remaining;
        ELSE
            -- event_types names the types as read (es.read_all's rule)
            RETURN QUERY
            SELECT e.global_position, e.stream_id, e.stream_type, e.version,
                   es._upcast_type(e.event_type, e.schema_version),
                   es._upcast_data(e.event_type, e.schema_version, e.data, e.metadata),
                   e.metadata, e.event_id, e.recorded_at,
                   es._upcast_version(e.event_type, e.schema_version)
            FROM es.events e
            WHERE e.global_position > cur AND e.global_position <= last
              AND (pg_catalog.hashtext(e.stream_id) & mask) = partition
              AND (event_types IS NULL OR e.event_type = ANY (es._stored_types(event_types)))
              AND (stream_types IS NULL OR e.stream_type = ANY (stream_types))
            ORDER BY e.global_position
            LIMIT remaining;
        END IF;
        GET DIAGNOSTICS got = ROW_COUNT;
        remaining := remaining - got;
        EXIT WHEN scanned < chunk;
        cur := last;
        IF got * 4 < LEAST(want, chunk) THEN
            chunk := LEAST(chunk * 4, 1000000);
        END IF;
    END LOOP;
END
$$;

COMMENT ON FUNCTION es.read_partition(integer, integer, bigint, integer, text[], text[], boolean, bigint) IS
    'es.read_all for the streams of one logical partition (es.partition_of(stream_id, partition_count) = partition) in this database: what a router''s es.read_all(partition, ...) runs.';

CREATE FUNCTION es.append_multi(batches jsonb)
RETURNS TABLE (stream_id text, version bigint, global_position bigint)
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
ROWS 10
AS 'MODULE_PATHNAME', 'es_append_multi';

COMMENT ON FUNCTION es.append_multi(jsonb) IS
    'Appends to several streams at once, all or nothing: batches is an array of {"stream_id", "events", "expected_version"?, "stream_type"?}. One row per event, in the order given, with the version and global_position it got.';

REVOKE ALL ON FUNCTION es.append_multi(jsonb) FROM PUBLIC;
-- Message DB's write_message, for the pg_eventsource_message_db layer
-- (integrations/message_db): its checks in its order and words, Message DB's
-- mapping of metadata and NULL data, an id already taken refused; returns the
-- message's 0-based position (src/compat/message_db.rs).
CREATE FUNCTION es._append_message(
    id               text,
    stream_name      text,
    message_type     text,
    data             jsonb,
    metadata         jsonb,
    expected_version bigint
) RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'es_append_message';

REVOKE ALL ON FUNCTION es._append_message(text, text, text, jsonb, jsonb, bigint) FROM PUBLIC;

-- Its body was expanded to es.events' columns when created: again, with the new one.
CREATE OR REPLACE FUNCTION es._subscription_events(
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

CREATE OR REPLACE FUNCTION es.poll(consumer text, max_count integer DEFAULT 100) RETURNS SETOF es.events
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
    IF NOT es._upcasting() THEN
        RETURN QUERY SELECT * FROM es._subscription_events(cur.position, h, n, cur.event_types, cur.stream_types, NULL, NULL);
    ELSE
        -- upcast (sql/03_evolution.sql); the filter names the types as read
        RETURN QUERY
            SELECT s.global_position, s.stream_id, s.stream_type, s.version,
                   es._upcast_type(s.event_type, s.schema_version),
                   es._upcast_data(s.event_type, s.schema_version, s.data, s.metadata),
                   s.metadata, s.event_id, s.recorded_at,
                   es._upcast_version(s.event_type, s.schema_version)
              FROM es._subscription_events(cur.position, h, n, es._stored_types(cur.event_types),
                                           cur.stream_types, NULL, NULL) s;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION es.poll(consumer text, max_count integer, member integer, size integer) RETURNS SETOF es.events
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
    IF NOT es._upcasting() THEN
        RETURN QUERY SELECT * FROM es._subscription_events(GREATEST(cur.position, member_position), h, n,
                                                           cur.event_types, cur.stream_types, poll.member, poll.size);
    ELSE
        RETURN QUERY
            SELECT s.global_position, s.stream_id, s.stream_type, s.version,
                   es._upcast_type(s.event_type, s.schema_version),
                   es._upcast_data(s.event_type, s.schema_version, s.data, s.metadata),
                   s.metadata, s.event_id, s.recorded_at,
                   es._upcast_version(s.event_type, s.schema_version)
              FROM es._subscription_events(GREATEST(cur.position, member_position), h, n,
                                           es._stored_types(cur.event_types), cur.stream_types,
                                           poll.member, poll.size) s;
    END IF;
END
$$;

-- Readers may read the schemas, the upcasters and es.event_types.
CREATE OR REPLACE FUNCTION es._privileges(writer boolean)
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
        ('table',    'es.event_schemas', 'SELECT', false),
        ('table',    'es.upcasters', 'SELECT', false),
        ('table',    'es.event_types', 'SELECT', false),
        ('table',    'es.position_base', 'SELECT', false),
        ('table',    'es.projections', 'SELECT', false),
        ('table',    'es.subscription_status', 'SELECT', false),
        ('table',    'es.audit', 'SELECT', false),
        ('table',    'es.stream_lifecycle', 'SELECT', false),
        ('table',    'es.archived_events', 'SELECT', false),
        ('table',    'es.retention', 'SELECT', false),
        ('function', 'es.append_event(text, text, jsonb, bigint, jsonb, uuid, text)', 'EXECUTE', true),
        ('function', 'es.append_events(text, jsonb, bigint, text)', 'EXECUTE', true),
        ('function', 'es.append_multi(jsonb)', 'EXECUTE', true),
        ('function', 'es._append_message(text, text, text, jsonb, jsonb, bigint)', 'EXECUTE', true),
        ('function', 'es.create_projection(text, regprocedure, text, text[], text[], regprocedure)', 'EXECUTE', true),
        ('function', 'es.run_projection(text, integer)', 'EXECUTE', true),
        ('function', 'es.rebuild_projection(text)', 'EXECUTE', true),
        ('function', 'es.drop_projection(text)', 'EXECUTE', true),
        ('function', 'es.materialize_aggregate(text, text)', 'EXECUTE', true)
      ) v(kind, object, privilege, for_writers)
     WHERE NOT v.for_writers OR writer;
END;

REVOKE ALL ON FUNCTION es.define_event_schema(text, jsonb, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es.define_upcaster(text, integer, jsonb, regprocedure, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es._evolution_changed() FROM PUBLIC;

-- The deliberate exceptions to append-only. The guard becomes the Rust
-- function that knows the sanction (same name and signature: the triggers
-- that call it stay).
CREATE OR REPLACE FUNCTION es._forbid_change() RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'es_forbid_change';

-- sql/12_lifecycle.sql
-- The deliberate exceptions to append-only: delete, truncate, retain, redact,
-- archive. Direct UPDATE/DELETE/TRUNCATE of es.events still fails for every
-- role (sql/14_guards.sql); the guard lets a statement through only while a
-- flag in the backend is set, and only the Rust primitives below set it,
-- around one statement of their own (src/store/guard.rs,
-- src/lifecycle/change.rs). Each primitive writes its es.audit row in the
-- same transaction, so no event leaves or changes without one.
--
-- The functions a user calls are PL/pgSQL here: argument checks, the
-- stream's row lock, snapshots, markers; they run as the extension's owner
-- and are open to the roles es.grant_admin names.

-- Append-only, like es.events (sql/14_guards.sql): one row per change.
CREATE SEQUENCE es.audit_id_seq;
CREATE TABLE es.audit (
    id          bigint      NOT NULL DEFAULT pg_catalog.nextval('es.audit_id_seq') PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- the role the session acted as (SET ROLE included), not the owner
    -- whose rights the function runs with
    by_role     text        NOT NULL,
    operation   text        NOT NULL,
    stream_id   text,
    -- the versions removed, rewritten or moved
    versions    int8range,
    event_count bigint      NOT NULL,
    reason      text,
    details     jsonb       NOT NULL DEFAULT '{}'
);
ALTER SEQUENCE es.audit_id_seq OWNED BY es.audit.id;
CREATE INDEX audit_stream_idx ON es.audit (stream_id);
COMMENT ON TABLE es.audit IS
    'One row per deliberate change of stored events (delete, truncate, retention, redaction, archive), append-only. es.verify() accepts exactly the holes it explains.';

-- Retention per stream type, applied by es.apply_retention (and the worker).
CREATE TABLE es.retention (
    stream_type text        NOT NULL PRIMARY KEY,
    max_age     interval    CHECK (max_age > interval '0'),
    max_count   bigint      CHECK (max_count >= 1),
    set_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CHECK (max_age IS NOT NULL OR max_count IS NOT NULL)
);

SELECT pg_catalog.pg_extension_config_dump('es.audit', '');
SELECT pg_catalog.pg_extension_config_dump('es.audit_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('es.retention', '');

-- The primitives (src/lifecycle/change.rs). Each runs one sanctioned
-- statement and writes its audit row; none is open to any role.
CREATE FUNCTION es._remove_events(stream_id text, below_version bigint, operation text,
                                  reason text, details jsonb) RETURNS bigint
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'es_remove_events';

CREATE FUNCTION es._redact_events(stream_id text, mask jsonb, stored_types text[],
                                  reason text, details jsonb) RETURNS bigint
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'es_redact_events';

CREATE FUNCTION es._move_events(stream_id text, to_archive boolean, reason text) RETURNS bigint
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'es_move_events';

CREATE FUNCTION es._append_marker(stream_id text, event_type text, data jsonb,
                                  expected_version bigint) RETURNS bigint
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'es_append_marker';

CREATE FUNCTION es._refresh_read_models_of(stream_id text, stream_type text) RETURNS text[]
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'es_refresh_read_models';

-- The chain of a stream's stored events (es.events and es.archived_events)
-- from base, the chain before version first_version; NULL when it has none.
CREATE FUNCTION es._stream_chain_from(stream_id text, base bytea, first_version bigint) RETURNS bytea
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'es_stream_chain_from';

-- A mask applied to one event's data: each key a dotted path (segments are
-- object keys, or array indexes), each value what replaces the value found
-- there. Paths the data does not have are left alone (nothing is added).
CREATE FUNCTION es._mask(data jsonb, mask jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
    v jsonb;
    p text[];
BEGIN
    FOR k, v IN SELECT m.key, m.value FROM pg_catalog.jsonb_each(mask) m LOOP
        p := pg_catalog.string_to_array(k, '.');
        IF data #> p IS NOT NULL THEN
            data := pg_catalog.jsonb_set(data, p, v, false);
        END IF;
    END LOOP;
    RETURN data;
END
$$;

-- A truncated stream's state below its cut lives only in the snapshot
-- there (its base). A new revision of the aggregate (es.define_aggregate,
-- es.define_upcaster) makes older snapshots unused: the base is carried
-- over as it is, since nothing is left to fold it again from.
CREATE FUNCTION es._carry_base_snapshots() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO es.snapshots (stream_id, version, revision, stream_type, state)
    SELECT s.stream_id, s.version, NEW.revision, s.stream_type, s.state
      FROM es.stream_lifecycle l
      JOIN es.snapshots s ON s.stream_id = l.stream_id AND s.version = l.first_version - 1
                         AND s.revision = OLD.revision
     WHERE l.first_version > 1 AND s.stream_type = NEW.stream_type
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER aggregates_carry_base_snapshots
    AFTER UPDATE ON es.aggregates
    FOR EACH ROW WHEN (NEW.revision <> OLD.revision)
    EXECUTE FUNCTION es._carry_base_snapshots();

-- Locks a stream's row (appends to it wait, as it waits for them) and
-- returns what the functions below need; 42704 for an unknown stream,
-- 40001 for a wrong expected version (as for appends).
CREATE FUNCTION es._lock_stream(fn text, stream_id text, expected_version bigint DEFAULT NULL,
                                OUT version bigint, OUT stream_type text, OUT chain_hash bytea,
                                OUT first_version bigint, OUT chain_base bytea,
                                OUT deleted boolean, OUT archived boolean)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF stream_id IS NULL THEN
        RAISE EXCEPTION '%: stream_id must not be NULL', fn USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF expected_version < 0 THEN
        RAISE EXCEPTION '%: expected_version must not be negative, got %', fn, expected_version
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT s.version, s.stream_type, s.chain_hash INTO version, stream_type, chain_hash
      FROM es.streams s WHERE s.stream_id = _lock_stream.stream_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION '%: stream "%" does not exist', fn, stream_id USING ERRCODE = 'undefined_object';
    END IF;
    IF expected_version IS NOT NULL AND expected_version <> version THEN
        RAISE EXCEPTION 'wrong expected version for stream "%": expected %, actual %',
                        stream_id, expected_version, version
            USING ERRCODE = 'serialization_failure';
    END IF;
    SELECT COALESCE(l.first_version, 1), l.chain_base, COALESCE(l.deleted, false), COALESCE(l.archived, false)
      INTO first_version, chain_base, deleted, archived
      FROM (SELECT) d LEFT JOIN es.stream_lifecycle l ON l.stream_id = _lock_stream.stream_id;
END
$$;

-- The stream's snapshots at and above from_version go, whatever their
-- revision (they were folded from what is no longer there); those of the
-- current revision are folded again at the same versions from what is
-- stored now.
CREATE FUNCTION es._renew_snapshots(stream_id text, from_version bigint) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    versions bigint[];
    v bigint;
BEGIN
    WITH gone AS (
        DELETE FROM es.snapshots s WHERE s.stream_id = _renew_snapshots.stream_id AND s.version >= from_version
        RETURNING s.version, s.revision, s.stream_type)
    SELECT pg_catalog.array_agg(g.version ORDER BY g.version) INTO versions
      FROM gone g JOIN es.aggregates a ON a.stream_type = g.stream_type AND a.revision = g.revision;
    FOREACH v IN ARRAY COALESCE(versions, '{}') LOOP
        -- one statement each: every fold starts from the snapshot before it
        INSERT INTO es.snapshots (stream_id, version, revision, stream_type, state)
        SELECT l.stream_id, l.version, a.revision, l.stream_type, l.state
          FROM es.load(_renew_snapshots.stream_id, v) l
          JOIN es.aggregates a ON a.stream_type = l.stream_type
        ON CONFLICT ON CONSTRAINT snapshots_pkey DO NOTHING;
    END LOOP;
END
$$;

-- Inline read models fed from the stream's type reflect what is stored
-- now: materialized rows are folded again, handler projections rebuilt;
-- those without a reset function cannot be, and say so.
CREATE FUNCTION es._refresh_read_models(stream_id text, stream_type text) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    skipped text[];
BEGIN
    skipped := es._refresh_read_models_of(stream_id, stream_type);
    IF pg_catalog.cardinality(skipped) > 0 THEN
        RAISE WARNING 'inline projections % have no reset function and were not rebuilt: their read models may still hold what was removed or redacted',
                      pg_catalog.array_to_string(skipped, ', ')
            USING HINT = 'Handle "$StreamDeleted" and "$EventsRedacted" in their handlers, or give them a reset function.';
    END IF;
END
$$;

CREATE FUNCTION es.delete_stream(
    stream_id        text,
    expected_version bigint  DEFAULT NULL,
    hard             boolean DEFAULT false,
    reason           text    DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
    n bigint;
BEGIN
    IF hard IS NULL THEN
        RAISE EXCEPTION 'es.delete_stream: hard must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    s := es._lock_stream('es.delete_stream', stream_id, expected_version);
    IF s.deleted THEN
        RAISE EXCEPTION 'stream "%" is already deleted', stream_id USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF s.archived THEN
        RAISE EXCEPTION 'stream "%" is archived', stream_id
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'es.unarchive_stream it first.';
    END IF;
    n := es._remove_events(stream_id, s.version + 1, 'delete_stream', reason,
                           pg_catalog.jsonb_build_object('hard', hard));
    DELETE FROM es.snapshots x WHERE x.stream_id = delete_stream.stream_id;
    PERFORM es._append_marker(stream_id, '$StreamDeleted',
        pg_catalog.jsonb_build_object('reason', reason, 'versions', pg_catalog.jsonb_build_array(s.first_version, s.version),
                                      'events', n, 'hard', hard),
        s.version);
    IF hard THEN
        UPDATE es.stream_lifecycle l SET deleted = true, updated_at = pg_catalog.now()
         WHERE l.stream_id = delete_stream.stream_id;
        -- no position can follow it: every append is refused (55000)
        UPDATE es.streams x SET last_position = 9223372036854775807 WHERE x.stream_id = delete_stream.stream_id;
    END IF;
    PERFORM es._refresh_read_models(stream_id, s.stream_type);
    RETURN n;
END
$$;
COMMENT ON FUNCTION es.delete_stream(text, bigint, boolean, text) IS
    'Removes a stream''s events and snapshots and appends a "$StreamDeleted" event; soft: appends continue after it, hard: every later append fails (55000). Returns how many events were removed.';

CREATE FUNCTION es.truncate_stream(stream_id text, before_version bigint, reason text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
BEGIN
    IF before_version IS NULL THEN
        RAISE EXCEPTION 'es.truncate_stream: before_version must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    s := es._lock_stream('es.truncate_stream', stream_id);
    RETURN es._truncate_locked(stream_id, s.stream_type, s.version, s.first_version, s.archived,
                               before_version, 'truncate_stream', reason);
END
$$;
COMMENT ON FUNCTION es.truncate_stream(text, bigint, text) IS
    'Removes the stream''s events below before_version (its last event always stays); es.load gives the same state (a snapshot at before_version - 1 is kept). Returns how many events were removed.';

-- The truncation of a locked stream (es.truncate_stream, es.apply_retention).
CREATE FUNCTION es._truncate_locked(stream_id text, stream_type text, version bigint, first_version bigint,
                                    archived boolean, before_version bigint, operation text, reason text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF before_version < 1 OR before_version > version THEN
        RAISE EXCEPTION 'before_version % is beyond stream "%" (versions 1 to %; its last event always stays)',
                        before_version, stream_id, version
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF archived THEN
        RAISE EXCEPTION 'stream "%" is archived', stream_id
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'es.unarchive_stream it first.';
    END IF;
    IF before_version <= first_version THEN
        RETURN 0;
    END IF;
    -- es.load keeps its answer: a snapshot at the cut (the stream's base
    -- from now on) for every revision it may be read with
    IF EXISTS (SELECT FROM es.aggregates a WHERE a.stream_type = _truncate_locked.stream_type) THEN
        INSERT INTO es.snapshots (stream_id, version, revision, stream_type, state)
        SELECT l.stream_id, l.version, a.revision, l.stream_type, l.state
          FROM es.load(_truncate_locked.stream_id, before_version - 1) l
          JOIN es.aggregates a ON a.stream_type = l.stream_type
        ON CONFLICT ON CONSTRAINT snapshots_pkey DO NOTHING;
    END IF;
    DELETE FROM es.snapshots x WHERE x.stream_id = _truncate_locked.stream_id AND x.version < before_version - 1;
    RETURN es._remove_events(stream_id, before_version, operation, reason,
                             pg_catalog.jsonb_build_object('before_version', before_version));
END
$$;

CREATE FUNCTION es.set_retention(stream_type text, max_age interval DEFAULT NULL, max_count bigint DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF stream_type IS NULL THEN
        RAISE EXCEPTION 'es.set_retention: stream_type must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF max_age <= interval '0' THEN
        RAISE EXCEPTION 'max_age must be positive, got %', max_age USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_count < 1 THEN
        RAISE EXCEPTION 'max_count must be at least 1, got %', max_count USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_age IS NULL AND max_count IS NULL THEN
        DELETE FROM es.retention r WHERE r.stream_type = set_retention.stream_type;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'stream type "%" has no retention', stream_type
                USING ERRCODE = 'undefined_object', HINT = 'Give max_age, max_count or both to set one.';
        END IF;
        RETURN;
    END IF;
    INSERT INTO es.retention AS r (stream_type, max_age, max_count) VALUES (stream_type, max_age, max_count)
    ON CONFLICT ON CONSTRAINT retention_pkey DO UPDATE
       SET max_age = EXCLUDED.max_age, max_count = EXCLUDED.max_count, set_at = pg_catalog.now();
END
$$;
COMMENT ON FUNCTION es.set_retention(text, interval, bigint) IS
    'Keeps, per stream of the type, only events younger than max_age and the last max_count (the last event always stays); both NULL removes the retention. es.apply_retention (and the worker) enforces it.';

CREATE FUNCTION es.apply_retention(max_events bigint DEFAULT 10000) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c record;
    s record;
    cut bigint;
    total bigint := 0;
BEGIN
    IF max_events IS NULL OR max_events < 1 THEN
        RAISE EXCEPTION 'max_events must be a positive number, got %', COALESCE(max_events::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Candidates: streams with more events than max_count, or whose first
    -- stored event is older than max_age. Streams locked by an appender
    -- are skipped (the next run takes them).
    FOR c IN
        SELECT x.stream_id, x.cut
          FROM (SELECT st.stream_id,
                       GREATEST(CASE WHEN r.max_count IS NOT NULL THEN st.version - r.max_count + 1 END,
                                CASE WHEN r.max_age IS NOT NULL THEN
                                     COALESCE((SELECT pg_catalog.min(e.version) FROM es.events e
                                                WHERE e.stream_id = st.stream_id
                                                  AND e.recorded_at >= pg_catalog.now() - r.max_age),
                                              st.version) END) AS cut,
                       COALESCE(l.first_version, 1) AS first_version
                  FROM es.retention r
                  JOIN es.streams st ON st.stream_type = r.stream_type
                  LEFT JOIN es.stream_lifecycle l ON l.stream_id = st.stream_id
                 WHERE NOT COALESCE(l.archived, false)
                   AND (r.max_count IS NOT NULL AND st.version - r.max_count + 1 > COALESCE(l.first_version, 1)
                        OR r.max_age IS NOT NULL AND EXISTS (
                               SELECT FROM es.events e WHERE e.stream_id = st.stream_id
                                  AND e.version = COALESCE(l.first_version, 1)
                                  AND e.recorded_at < pg_catalog.now() - r.max_age))) x
         WHERE x.cut > x.first_version
         ORDER BY x.stream_id
    LOOP
        EXIT WHEN total >= max_events;
        BEGIN
            SELECT st.version, st.stream_type, COALESCE(l.first_version, 1) AS first_version,
                   COALESCE(l.archived, false) AS archived
              INTO s
              FROM es.streams st LEFT JOIN es.stream_lifecycle l ON l.stream_id = st.stream_id
             WHERE st.stream_id = c.stream_id
               FOR UPDATE OF st SKIP LOCKED;
        END;
        CONTINUE WHEN NOT FOUND OR s.archived;
        -- at most max_events in all: a stream may be cut part of the way
        cut := LEAST(c.cut, s.version, s.first_version + (max_events - total));
        CONTINUE WHEN cut <= s.first_version;
        total := total + es._truncate_locked(c.stream_id, s.stream_type, s.version, s.first_version, false,
                                             cut, 'apply_retention', 'retention');
    END LOOP;
    RETURN total;
END
$$;
COMMENT ON FUNCTION es.apply_retention(bigint) IS
    'Truncates every stream as its type''s retention allows, at most max_events events in all; returns how many were removed. The worker runs it; pg_cron can too.';

CREATE FUNCTION es.redact(stream_id text, mask jsonb, reason text, event_types text[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
    k text;
    changed int8range;
    n bigint;
BEGIN
    IF mask IS NULL THEN
        RAISE EXCEPTION 'es.redact: mask must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF reason IS NULL THEN
        RAISE EXCEPTION 'es.redact: reason must not be NULL' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'The audit records why data was erased.';
    END IF;
    IF pg_catalog.jsonb_typeof(mask) <> 'object' OR mask = '{}' THEN
        RAISE EXCEPTION 'es.redact: mask must be a non-empty JSON object, got %', mask
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Map dotted paths to what replaces them: {"email": "[redacted]", "address.street": null}.';
    END IF;
    FOR k IN SELECT pg_catalog.jsonb_object_keys(mask) LOOP
        IF k = '' OR '' = ANY (pg_catalog.string_to_array(k, '.')) THEN
            RAISE EXCEPTION 'es.redact: mask path "%" has an empty segment', k USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    IF event_types IS NOT NULL AND (pg_catalog.cardinality(event_types) = 0 OR NULL = ANY (event_types)) THEN
        RAISE EXCEPTION 'es.redact: event_types must be NULL (every type) or a non-empty array without NULLs'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    s := es._lock_stream('es.redact', stream_id);
    -- the chain is re-anchored on the redacted events: only a chain that
    -- still holds may be (else a change made past the guards would be blessed)
    IF s.chain_hash IS NOT NULL
       AND s.chain_hash IS DISTINCT FROM es._stream_chain_from(stream_id, s.chain_base, s.first_version) THEN
        RAISE EXCEPTION 'stream "%": its events do not give its recorded hash chain; nothing was redacted', stream_id
            USING ERRCODE = 'data_corrupted', HINT = 'es.verify() reports it; find out what changed the events first.';
    END IF;
    n := es._redact_events(stream_id, mask,
                                 CASE WHEN event_types IS NOT NULL THEN es._stored_types(event_types) END,
                                 reason,
                                 pg_catalog.jsonb_build_object('paths', (SELECT pg_catalog.jsonb_agg(m.key ORDER BY m.key) FROM pg_catalog.jsonb_object_keys(mask) m(key)),
                                                               'event_types', event_types));
    IF n = 0 THEN
        RETURN 0;
    END IF;
    changed := (SELECT a.versions FROM es.audit a WHERE a.id = pg_catalog.currval('es.audit_id_seq'));
    PERFORM es._renew_snapshots(stream_id, s.first_version);
    IF NOT s.deleted AND NOT s.archived THEN
        PERFORM es._append_marker(stream_id, '$EventsRedacted',
            pg_catalog.jsonb_build_object('reason', reason,
                'paths', (SELECT pg_catalog.jsonb_agg(m.key ORDER BY m.key) FROM pg_catalog.jsonb_object_keys(mask) m(key)),
                'versions', pg_catalog.jsonb_build_array(pg_catalog.lower(changed), pg_catalog.upper(changed) - 1),
                'events', n),
            s.version);
    END IF;
    PERFORM es._refresh_read_models(stream_id, s.stream_type);
    RETURN n;
END
$$;
COMMENT ON FUNCTION es.redact(text, jsonb, text, text[]) IS
    'Rewrites the data of the stream''s events (of event_types, NULL = all) with a mask {"path": replacement}; snapshots and inline read models are rebuilt; an "$EventsRedacted" event is appended. Returns how many events changed.';

CREATE FUNCTION es.archive_stream(stream_id text, reason text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
BEGIN
    s := es._lock_stream('es.archive_stream', stream_id);
    IF s.archived THEN
        RAISE EXCEPTION 'stream "%" is already archived', stream_id USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN es._move_events(stream_id, true, reason);
END
$$;
COMMENT ON FUNCTION es.archive_stream(text, text) IS
    'Moves a stream''s events to es.archived_events: they leave es.read_all and es.poll, es.read_stream and es.load still read them, appends fail (55000) until es.unarchive_stream. Returns how many events moved.';

CREATE FUNCTION es.unarchive_stream(stream_id text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
BEGIN
    s := es._lock_stream('es.unarchive_stream', stream_id);
    IF NOT s.archived THEN
        RAISE EXCEPTION 'stream "%" is not archived', stream_id USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN es._move_events(stream_id, false, NULL);
END
$$;
COMMENT ON FUNCTION es.unarchive_stream(text) IS
    'Moves an archived stream''s events back into es.events, at their positions; appends to it work again. Returns how many events moved.';

-- Admins: the lifecycle functions, on top of everything a writer has.
CREATE FUNCTION es._admin_functions() RETURNS text[]
LANGUAGE sql IMMUTABLE
RETURN ARRAY['es.delete_stream(text, bigint, boolean, text)',
             'es.truncate_stream(text, bigint, text)',
             'es.set_retention(text, interval, bigint)',
             'es.apply_retention(bigint)',
             'es.redact(text, jsonb, text, text[])',
             'es.archive_stream(text, text)',
             'es.unarchive_stream(text)'];

CREATE FUNCTION es.grant_admin(role regrole) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f text;
BEGIN
    PERFORM es.grant_writer(role);
    FOREACH f IN ARRAY es._admin_functions() LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', f::regprocedure, role);
    END LOOP;
END
$$;
COMMENT ON FUNCTION es.grant_admin(regrole) IS
    'Lets a role do what a writer does and also delete, truncate, redact, archive streams and set retention (each audited in es.audit).';

CREATE FUNCTION es.revoke_admin(role regrole) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f text;
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'role must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM es._require_extension_owner();
    FOREACH f IN ARRAY es._admin_functions() LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM %s', f::regprocedure, role);
    END LOOP;
END
$$;
COMMENT ON FUNCTION es.revoke_admin(regrole) IS
    'Takes back what es.grant_admin gave beyond writing: the role stays a writer.';

-- es.load_at reads archived events, and knows what truncation removed.
-- States kept in snapshots are compressed with lz4 where the server was built
-- with it (Debian's and most packages are): a large state reads back in about a
-- fifth of pglz's time, and es.load reads it on every command.
DO $$
BEGIN
    ALTER TABLE es.snapshots ALTER COLUMN state SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    NULL; -- no lz4 in this server: the default (pglz) stays
END
$$;

CREATE FUNCTION es._version_at(stream_id text, at_time timestamptz) RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target bigint;
    first bigint;
BEGIN
    SELECT pg_catalog.min(e.version) - 1 INTO target
      FROM (SELECT x.version, x.recorded_at FROM es.events x WHERE x.stream_id = _version_at.stream_id
            UNION ALL
            SELECT a.version, a.recorded_at FROM es.archived_events a WHERE a.stream_id = _version_at.stream_id) e
     WHERE e.recorded_at > at_time;
    first := COALESCE((SELECT l.first_version FROM es.stream_lifecycle l WHERE l.stream_id = _version_at.stream_id), 1);
    IF first > 1 AND target < first THEN
        RAISE EXCEPTION 'stream "%" no longer stores its events below version %: the state at % is not known',
                        stream_id, first, at_time
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'es.truncate_stream, es.delete_stream and retention remove events (see es.audit); es.load_at answers from the first stored event''s time on.';
    END IF;
    RETURN target;
END
$$;

CREATE OR REPLACE FUNCTION es.load_at(stream_id text, at_time timestamptz)
RETURNS TABLE (stream_id text, stream_type text, version bigint, state jsonb)
LANGUAGE sql STABLE ROWS 1
BEGIN ATOMIC
    -- the longest prefix of the stream recorded at or before at_time
    SELECT l.stream_id, l.stream_type, l.version, l.state
      FROM es._load(load_at.stream_id, es._version_at(load_at.stream_id, es._check_time('at_time', at_time))) l;
END;

-- es.fold's column form.
CREATE FUNCTION es._fold_columns_transition(internal, text, text, bigint, text, jsonb, jsonb, integer)
RETURNS internal
LANGUAGE c CALLED ON NULL INPUT
AS 'MODULE_PATHNAME', 'es_fold_columns_transition';

CREATE FUNCTION es._fold_columns_final(internal) RETURNS jsonb
LANGUAGE c CALLED ON NULL INPUT
AS 'MODULE_PATHNAME', 'es_fold_columns_final';

CREATE AGGREGATE es.fold(stream_id text, stream_type text, version bigint, event_type text,
                         data jsonb, metadata jsonb, schema_version integer) (
    SFUNC = es._fold_columns_transition,
    STYPE = internal,
    FINALFUNC = es._fold_columns_final
);

COMMENT ON AGGREGATE es.fold(text, text, bigint, text, jsonb, jsonb, integer) IS
    'es.fold over es.events'' columns instead of whole rows: es.fold(stream_id, stream_type, version, event_type, data, metadata, schema_version); without ORDER BY, one stream''s events in any order.';


-- Inline projections and snapshots run in the append path (the library), no
-- longer in an AFTER INSERT trigger.
DROP TRIGGER events_after_insert ON es.events;
DROP FUNCTION es._after_insert();
DROP FUNCTION es._after_insert_due(text, bigint, text);

-- es.verify accepts exactly the holes es.audit explains.
CREATE OR REPLACE FUNCTION es.verify(mode text DEFAULT 'full')
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

    -- Versions 1..n, no gap (duplicates are ruled out by a unique key),
    -- but the versions es.audit says were removed (es.delete_stream,
    -- es.truncate_stream, retention): exactly those are missing. An
    -- archived stream's events count where they are.
    RETURN QUERY
        SELECT 'stream_versions', g.stream_id,
               format('versions %s..%s in %s events', g.lo, g.hi, g.n)
               || CASE WHEN r.removed IS NULL THEN ''
                       ELSE format('; es.audit explains versions %s as removed', r.removed) END
          FROM (SELECT e.stream_id, min(e.version) AS lo, max(e.version) AS hi, count(*) AS n
                  FROM (SELECT x.stream_id, x.version FROM es.events x
                        UNION ALL SELECT a.stream_id, a.version FROM es.archived_events a) e
                 GROUP BY e.stream_id) g
          LEFT JOIN (SELECT a.stream_id, range_agg(a.versions) AS removed FROM es.audit a
                      WHERE a.operation IN ('delete_stream', 'truncate_stream', 'apply_retention')
                      GROUP BY a.stream_id) r ON r.stream_id = g.stream_id
         WHERE g.lo < 1
            OR g.hi - g.n <> COALESCE((SELECT sum(upper(x) - lower(x))
                                         FROM unnest(r.removed * int8multirange(int8range(1, g.hi + 1))) x), 0)
            OR (r.removed IS NOT NULL
                AND EXISTS (SELECT FROM es.events e WHERE e.stream_id = g.stream_id AND r.removed @> e.version));

    -- es.streams agrees with the events: one row per stream, its version
    -- and type those of its last event, its last_position that event's
    -- (or the largest there is, for a stream es.stream_lifecycle says is
    -- hard-deleted or archived: nothing may follow).
    RETURN QUERY
        SELECT 'stream_row', COALESCE(s.stream_id, g.stream_id),
               CASE WHEN s.stream_id IS NULL THEN 'events without a row in es.streams'
                    WHEN g.stream_id IS NULL THEN 'row in es.streams without events'
                    ELSE format('es.streams has version %s, type %s, last_position %s; the events end at version %s, type %s, position %s',
                                s.version, s.stream_type, s.last_position, g.hi, g.stream_type, g.last_pos)
               END
          FROM es.streams s
          LEFT JOIN es.stream_lifecycle l ON l.stream_id = s.stream_id
          FULL JOIN (SELECT e.stream_id, max(e.version) AS hi, max(e.global_position) AS last_pos,
                            min(e.stream_type) AS stream_type, count(DISTINCT e.stream_type) AS types
                       FROM (SELECT x.stream_id, x.version, x.global_position, x.stream_type FROM es.events x
                             UNION ALL
                             SELECT a.stream_id, a.version, a.global_position, a.stream_type FROM es.archived_events a) e
                      GROUP BY e.stream_id) g ON g.stream_id = s.stream_id
         WHERE s.stream_id IS NULL OR g.stream_id IS NULL
            OR s.version <> g.hi OR s.stream_type <> g.stream_type OR g.types <> 1
            OR (s.last_position = 9223372036854775807 AND NOT COALESCE(l.deleted OR l.archived, false))
            OR (s.last_position NOT IN (0, 9223372036854775807) AND s.last_position <> g.last_pos);

    -- The stored events still give each stream's hash chain: an event
    -- changed, removed or added past the guards (a superuser who disabled
    -- them, an edited dump) breaks it. A stream whose first versions were
    -- removed is checked from the chain recorded at the cut. Streams without
    -- a chain (older than it) are skipped.
    RETURN QUERY
        SELECT 'stream_hash', s.stream_id,
               'the stream''s events do not give its recorded hash chain: an event was changed, removed or added outside the extension''s functions'
          FROM es.streams s
          LEFT JOIN es.stream_lifecycle l ON l.stream_id = s.stream_id
         WHERE s.chain_hash IS NOT NULL
           AND s.chain_hash IS DISTINCT FROM es._stream_chain_from(s.stream_id, l.chain_base, COALESCE(l.first_version, 1));

    -- Each stream's versions in position order (what readers of the global order rely on).
    RETURN QUERY
        SELECT 'stream_order', o.stream_id,
               format('version %s has position %s, below version %s''s', o.version, o.global_position, o.version - 1)
          FROM (SELECT e.stream_id, e.version, e.global_position,
                       lag(e.global_position) OVER (PARTITION BY e.stream_id ORDER BY e.version) AS prev
                  FROM (SELECT x.stream_id, x.version, x.global_position FROM es.events x
                        UNION ALL
                        SELECT a.stream_id, a.version, a.global_position FROM es.archived_events a) e) o
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
          -- a stream whose first versions were removed keeps the state
          -- there in a snapshot: nothing to fold it from
          LEFT JOIN es.stream_lifecycle l ON l.stream_id = s.stream_id
          CROSS JOIN LATERAL (SELECT es.fold(e ORDER BY e.version) AS state FROM es.events e
                               WHERE e.stream_id = s.stream_id AND e.version <= s.version) f
         WHERE COALESCE(l.first_version, 1) = 1 AND NOT COALESCE(l.archived, false)
           AND f.state IS DISTINCT FROM s.state;

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

CREATE TRIGGER archived_events_no_update_delete
    BEFORE UPDATE OR DELETE ON es.archived_events
    FOR EACH STATEMENT EXECUTE FUNCTION es._forbid_change();
CREATE TRIGGER archived_events_no_truncate
    BEFORE TRUNCATE ON es.archived_events
    FOR EACH STATEMENT EXECUTE FUNCTION es._forbid_change();
ALTER TABLE es.archived_events ENABLE ALWAYS TRIGGER archived_events_no_update_delete;
ALTER TABLE es.archived_events ENABLE ALWAYS TRIGGER archived_events_no_truncate;

CREATE TRIGGER audit_no_update_delete
    BEFORE UPDATE OR DELETE ON es.audit
    FOR EACH STATEMENT EXECUTE FUNCTION es._forbid_change('never');
CREATE TRIGGER audit_no_truncate
    BEFORE TRUNCATE ON es.audit
    FOR EACH STATEMENT EXECUTE FUNCTION es._forbid_change('never');
ALTER TABLE es.audit ENABLE ALWAYS TRIGGER audit_no_update_delete;
ALTER TABLE es.audit ENABLE ALWAYS TRIGGER audit_no_truncate;

-- the deliberate exceptions to append-only: es.grant_admin opens them
REVOKE ALL ON FUNCTION es.delete_stream(text, bigint, boolean, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es.truncate_stream(text, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es.set_retention(text, interval, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION es.apply_retention(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION es.redact(text, jsonb, text, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION es.archive_stream(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es.unarchive_stream(text) FROM PUBLIC;

REVOKE ALL ON FUNCTION es._remove_events(text, bigint, text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION es._redact_events(text, jsonb, text[], text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION es._move_events(text, boolean, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es._append_marker(text, text, jsonb, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION es._refresh_read_models_of(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es._lock_stream(text, text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION es._truncate_locked(text, text, bigint, bigint, boolean, bigint, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es._renew_snapshots(text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION es._refresh_read_models(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es._carry_base_snapshots() FROM PUBLIC;

-- sql/13_cdc.sql
-- Change data capture: es.events inserts published for logical decoding
-- (a PostgreSQL subscriber, pgoutput consumers such as Debezium, wal2json).
-- Logical decoding hands out committed transactions only, each once, in
-- commit order: events of one stream arrive in version order (appends to a
-- stream commit one after another), and a consumer checkpoints by LSN, never
-- by global_position (a transaction that took its positions early and
-- committed late arrives after events with higher positions).
--
-- Only inserts are published: the deliberate changes of sql/12_lifecycle.sql
-- (deletes, redactions, archiving) are not replayed downstream; their
-- markers ("$StreamDeleted", "$EventsRedacted") are events and are.
--
-- The caller's own rights: creating a publication of es.events takes what
-- PostgreSQL asks for it (CREATE on the database and ownership of the table:
-- the extension's owner or a superuser).
CREATE FUNCTION es.create_publication(name text DEFAULT 'es_events') RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p pg_catalog.pg_publication;
    tables text[];
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF name = '' OR pg_catalog.length(name) > 63 THEN
        RAISE EXCEPTION 'invalid publication name "%"', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A publication name is 1 to 63 characters.';
    END IF;
    SELECT * INTO p FROM pg_catalog.pg_publication x WHERE x.pubname = create_publication.name;
    IF FOUND THEN
        SELECT pg_catalog.array_agg(pg_catalog.format('%I.%I', t.schemaname, t.tablename) ORDER BY 1)
          INTO tables
          FROM pg_catalog.pg_publication_tables t WHERE t.pubname = create_publication.name;
        -- the same publication again: nothing to do
        IF tables = ARRAY['es.events'] AND NOT p.puballtables AND p.pubinsert
           AND NOT (p.pubupdate OR p.pubdelete OR p.pubtruncate) THEN
            RAISE NOTICE 'publication "%" already publishes the inserts of es.events', name;
            RETURN;
        END IF;
        RAISE EXCEPTION 'publication "%" already exists and publishes something else', name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Choose another name, or drop that publication first.';
    END IF;
    EXECUTE pg_catalog.format('CREATE PUBLICATION %I FOR TABLE es.events WITH (publish = %L)',
                              name, 'insert');
END
$$;

COMMENT ON FUNCTION es.create_publication(text) IS
    'Publishes every committed event (es.events inserts) for logical decoding: CREATE SUBSCRIPTION, pgoutput (Debezium), wal2json. Delivery is in commit order; checkpoint by LSN, not global_position.';
-- Publishing every event is the owner's decision (PostgreSQL would refuse
-- others anyway: they do not own es.events).
REVOKE ALL ON FUNCTION es.create_publication(text) FROM PUBLIC;

-- Batch handlers (es.events[]) are accepted by es.create_projection.
COMMENT ON FUNCTION es.create_projection(text, regprocedure, text, text[], text[], regprocedure) IS
    'Registers a projection: handler(es.events) is called for every matching event, or handler(es.events[]) once per batch of them, inline (in the appending transaction) or async (by es.run_projection or the background worker).';

-- The projection registry has no CHECK constraints (sql/07_projections.sql):
-- every catch-up writes its row, and PostgreSQL parses a table's CHECK
-- constraints again for every statement that writes it.
ALTER TABLE es.projection_registry
    DROP CONSTRAINT projection_registry_kind_check,
    DROP CONSTRAINT projection_registry_mode_check,
    DROP CONSTRAINT projection_registry_status_check,
    DROP CONSTRAINT projection_registry_check,
    DROP CONSTRAINT projection_registry_check1;
