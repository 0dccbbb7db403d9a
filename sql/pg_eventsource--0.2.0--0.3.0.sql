-- pg_eventsource 0.2.0 -> 0.3.0 (assembled by tests/upgrade/assemble-0.2.0--0.3.0.sh
-- from the SQL files a fresh install runs; do not edit by hand).
\echo Use "ALTER EXTENSION pg_eventsource UPDATE TO '0.3.0'" to load this file. \quit

-- The shape each event was written in. A constant default: PostgreSQL
-- records it in the catalog and rewrites nothing, whatever the table's size.
ALTER TABLE es.events ADD COLUMN schema_version integer NOT NULL DEFAULT 1;

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
    -- Upcast column by column (sql/03_evolution.sql). Whether to is asked
    -- once per query (an uncorrelated subquery: an InitPlan, run at the
    -- first row, after the statement's snapshot): with no upcaster (or
    -- raw => true) each row costs a test of its result, and no call.
    SELECT e.global_position, e.stream_id, e.stream_type, e.version,
           CASE WHEN (SELECT raw OR NOT es._upcasting()) THEN e.event_type
                ELSE es._upcast_type(e.event_type, e.schema_version) END,
           CASE WHEN (SELECT raw OR NOT es._upcasting()) THEN e.data
                ELSE es._upcast_data(e.event_type, e.schema_version, e.data, e.metadata) END,
           e.metadata, e.event_id, e.recorded_at,
           CASE WHEN (SELECT raw OR NOT es._upcasting()) THEN e.schema_version
                ELSE es._upcast_version(e.event_type, e.schema_version) END
      FROM es.events e
     WHERE e.stream_id = es._check_stream_id(read_stream.stream_id)
       AND e.version >= COALESCE(from_version, 1)
     ORDER BY e.version
     LIMIT max_count;
END;

COMMENT ON FUNCTION es.read_stream(text, bigint, bigint, boolean) IS
    'Events of one stream from from_version on, in version order, upcast to their type''s current version (raw => true: as stored); max_count NULL = all.';

DROP FUNCTION es.read_all(bigint, integer, text[], text[]);
CREATE FUNCTION es.read_all(
    after_position bigint  DEFAULT 0,
    max_count      integer DEFAULT 1000,
    event_types    text[]  DEFAULT NULL,
    stream_types   text[]  DEFAULT NULL,
    raw            boolean DEFAULT false
) RETURNS SETOF es.events
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    horizon constant bigint := es._next_read_horizon();
BEGIN
    IF raw OR NOT es._upcasting() THEN
        RETURN QUERY
        SELECT e.* FROM es.events e
        WHERE e.global_position > COALESCE(after_position, 0)
          AND e.global_position < horizon
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
          AND e.global_position < horizon
          AND (event_types IS NULL OR e.event_type = ANY (es._stored_types(event_types)))
          AND (stream_types IS NULL OR e.stream_type = ANY (stream_types))
        ORDER BY e.global_position
        LIMIT max_count;
    END IF;
END
$$;

COMMENT ON FUNCTION es.read_all(bigint, integer, text[], text[], boolean) IS
    'Events of every stream after after_position, in global order, never skipping one that commits later. Page with the last global_position returned.';

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

REVOKE ALL ON FUNCTION es.define_event_schema(text, jsonb, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es.define_upcaster(text, integer, jsonb, regprocedure, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es._evolution_changed() FROM PUBLIC;
