-- Reading one stream. es.read_stream is a SQL function with a standard-SQL
-- body (BEGIN ATOMIC): every name in it is bound when the extension is
-- created, so a caller's search_path cannot redirect it, and the planner
-- inlines it into the calling query (an index scan, as fast as the plain
-- SELECT). Reading every stream in global order: sql/05_horizon.sql.

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
      FROM (SELECT x.* FROM es.events x
             WHERE x.stream_id = es._check_stream_id(read_stream.stream_id)
               AND x.version >= COALESCE(from_version, 1)
            UNION ALL
            -- an archived stream's events (es.archive_stream): an index
            -- probe that finds nothing for every other stream
            SELECT a.* FROM es.archived_events a
             WHERE a.stream_id = read_stream.stream_id
               AND a.version >= COALESCE(from_version, 1)) e
     ORDER BY e.version
     LIMIT max_count;
END;

COMMENT ON FUNCTION es.read_stream(text, bigint, bigint, boolean) IS
    'Events of one stream from from_version on, in version order, upcast to their type''s current version (raw => true: as stored); max_count NULL = all.';

-- In C (src/store/stream_version.rs): called before every optimistic write, and a SQL
-- body here would be planned on every call. It reads with the caller's
-- rights and pins its own search_path.
CREATE FUNCTION es.stream_version(stream_id text) RETURNS bigint
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'es_stream_version';

COMMENT ON FUNCTION es.stream_version(text) IS 'The stream''s current version; 0 when it has no events.';
