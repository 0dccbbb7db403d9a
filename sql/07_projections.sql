-- Projections: read models kept current from the events (Rust: src/projections/,
-- src/projections/inline.rs, src/projections/materialize.rs).
--
-- The registry is written only by the functions below, which run its writes
-- as the extension's owner and each handler as the role that created its
-- projection: a role can never make a handler run with more rights than
-- its own.

-- No CHECK constraints: PostgreSQL parses and plans a table's CHECK
-- constraints again for every statement that writes it, and every catch-up
-- writes its projection's row (they were about 100,000 CPU instructions of
-- each es.run_projection call, 14% of a one-event one). The functions below
-- are its only writers (no role is granted a write on it, sql/11_privileges.sql)
-- and write only these values:
-- kind 'handler' with a handler, 'materializer' with a target; mode 'inline'
-- or 'async'; status 'running' or 'failed'.
CREATE TABLE es.projection_registry (
    name            text        NOT NULL PRIMARY KEY,
    -- 'handler': a user function called once per event (or per batch);
    -- 'materializer': es.materialize_aggregate's table of states
    kind            text        NOT NULL,
    mode            text        NOT NULL,
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
    status          text        NOT NULL DEFAULT 'running',
    last_error      text,
    failed_position bigint,
    events_handled  bigint      NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
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
    'Registers a projection: handler(es.events) is called for every matching event, or handler(es.events[]) once per batch of them, inline (in the appending transaction) or async (by es.run_projection or the background worker).';

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

-- Inline projections and snapshots run in the append path itself, after
-- each append (src/projections/after_append.rs), not in a trigger:
-- PostgreSQL compiled a trigger's WHEN clause for every statement, i.e. for
-- every append, whether anything was due or not.

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
