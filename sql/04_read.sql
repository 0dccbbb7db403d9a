-- Reading one stream. es.read_stream is a SQL function with a standard-SQL
-- body (BEGIN ATOMIC): every name in it is bound when the extension is
-- created, so a caller's search_path cannot redirect it, and the planner
-- inlines it into the calling query (the plain SELECT's scan; about 0.9x its
-- speed, bench/results/). Reading every stream in global order:
-- sql/05_horizon.sql.

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

-- In C (src/store/stream_version.rs): called before every optimistic write, and a SQL
-- body here would be planned on every call. It reads with the caller's
-- rights and pins its own search_path.
CREATE FUNCTION es.stream_version(stream_id text) RETURNS bigint
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'es_stream_version';

COMMENT ON FUNCTION es.stream_version(text) IS 'The stream''s current version; 0 when it has no events.';
