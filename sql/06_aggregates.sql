-- Aggregates: definitions, snapshots, loading and folding (Rust: src/aggregates/fold.rs,
-- src/aggregates/reducer.rs, src/aggregates/snapshot.rs, src/aggregates/definitions.rs).

-- One row per stream type. revision grows with every redefinition; a
-- snapshot records the revision that produced it and is used only while
-- that revision is current.
CREATE TABLE es.aggregates (
    stream_type    text         NOT NULL PRIMARY KEY,
    -- the fold function's signature, schema-qualified ('public.f(jsonb,es.events)'):
    -- text, not regprocedure, because pg_upgrade refuses clusters whose
    -- tables have regprocedure columns
    fold           text,
    reducers       jsonb,
    initial_state  jsonb        NOT NULL DEFAULT '{}',
    snapshot_every integer      NOT NULL DEFAULT 100 CHECK (snapshot_every >= 0),
    revision       bigint       NOT NULL DEFAULT 1,
    defined_at     timestamptz  NOT NULL DEFAULT now(),
    CHECK ((fold IS NULL) <> (reducers IS NULL))
);

CREATE TABLE es.snapshots (
    stream_id   text        NOT NULL,
    version     bigint      NOT NULL CHECK (version > 0),
    revision    bigint      NOT NULL,
    stream_type text        NOT NULL,
    state       jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_id, revision, version)
);
COMMENT ON TABLE es.snapshots IS
    'Aggregate state at a version, written by the snapshot trigger. Used by es.load only while its revision is the stream type''s current one.';

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

SELECT pg_catalog.pg_extension_config_dump('es.aggregates', '');
SELECT pg_catalog.pg_extension_config_dump('es.snapshots', '');

-- What es.load, es.load_at return.
CREATE TYPE es.aggregate_state AS (
    stream_id   text,
    stream_type text,
    version     bigint,
    state       jsonb
);

CREATE FUNCTION es._check_reducers(reducers jsonb) RETURNS void
LANGUAGE c STRICT IMMUTABLE
AS 'MODULE_PATHNAME', 'es_check_reducers';

CREATE FUNCTION es.define_aggregate(
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

COMMENT ON FUNCTION es.define_aggregate(text, regprocedure, jsonb, jsonb, integer) IS
    'Defines (or redefines) how streams of a type fold into state: a fold function or native reducers, an initial state, and a snapshot every N events.';

CREATE FUNCTION es._load(stream_id text, at_version bigint) RETURNS es.aggregate_state
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'es_load';

CREATE FUNCTION es.load(stream_id text, at_version bigint DEFAULT NULL)
RETURNS TABLE (stream_id text, stream_type text, version bigint, state jsonb)
LANGUAGE sql STABLE ROWS 1
BEGIN ATOMIC
    SELECT l.stream_id, l.stream_type, l.version, l.state FROM es._load(load.stream_id, at_version) l;
END;

COMMENT ON FUNCTION es.load(text, bigint) IS
    'The stream''s state at at_version (NULL: now), folded from its newest usable snapshot.';

-- The version es.load_at folds to: the longest prefix of the stream
-- recorded at or before at_time, wherever its events are stored. When the
-- events below the stream's first stored one were removed
-- (sql/12_lifecycle.sql) and at_time falls before that one, nothing tells
-- which of the removed versions was the last by then: 55000.
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

CREATE FUNCTION es.load_at(stream_id text, at_time timestamptz)
RETURNS TABLE (stream_id text, stream_type text, version bigint, state jsonb)
LANGUAGE sql STABLE ROWS 1
BEGIN ATOMIC
    -- the longest prefix of the stream recorded at or before at_time
    SELECT l.stream_id, l.stream_type, l.version, l.state
      FROM es._load(load_at.stream_id, es._version_at(load_at.stream_id, es._check_time('at_time', at_time))) l;
END;

COMMENT ON FUNCTION es.load_at(text, timestamptz) IS
    'The stream''s state as of at_time: every event recorded at or before it.';

-- es.fold(e ORDER BY version): fold any set of events with their type's definition.
CREATE FUNCTION es._fold_transition(internal, es.events) RETURNS internal
LANGUAGE c CALLED ON NULL INPUT
AS 'MODULE_PATHNAME', 'es_fold_transition';

CREATE FUNCTION es._fold_final(internal) RETURNS jsonb
LANGUAGE c CALLED ON NULL INPUT
AS 'MODULE_PATHNAME', 'es_fold_final';

CREATE AGGREGATE es.fold(es.events) (
    SFUNC = es._fold_transition,
    STYPE = internal,
    FINALFUNC = es._fold_final
);

COMMENT ON AGGREGATE es.fold(es.events) IS
    'Folds events with their stream type''s definition: es.fold(e ORDER BY version).';

-- The column form: no row is formed per event (native reducers that read
-- none of global_position, event_id, recorded_at). With ORDER BY it folds in
-- that order, as the row form does (rows out of version order fail, 22000).
-- Without, it takes one stream's events in any order (a sequential scan's,
-- a hash aggregate's) and folds them in version order itself: each run of
-- consecutive versions becomes a segment that says what it does to any
-- state, and the final function applies them in order
-- (src/aggregates/unordered.rs).
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

-- Snapshots are taken by the AFTER INSERT trigger on es.events that
-- sql/07_projections.sql creates (one trigger for snapshots and inline
-- projections, src/projections/trigger.rs).
