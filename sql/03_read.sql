-- Reading. These are SQL functions with standard-SQL bodies (BEGIN ATOMIC):
-- every name in them is bound when the extension is created, so a caller's
-- search_path cannot redirect them, and the planner inlines them into the
-- calling query (an index scan, as fast as the plain SELECT).

-- The first position es.read_all may not hand out yet. Every transaction whose
-- id is below the snapshot's xmin has ended, so every event below this bound
-- that will ever exist is already visible; see src/store/position.rs.
CREATE FUNCTION es.read_horizon() RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT CASE
        WHEN b.restored_foreign IS false
            THEN (pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text::bigint
                  + b.xid_offset) << 20
        -- events restored from another cluster, nothing appended here since:
        -- the next append here starts after all of them
        ELSE COALESCE((SELECT max(e.global_position) FROM es.events e), 0) + 1
    END
    FROM (SELECT (SELECT p.restored_foreign FROM es.position_base p
                  WHERE p.system_identifier = es._system_identifier()) AS restored_foreign,
                 (SELECT p.xid_offset FROM es.position_base p
                  WHERE p.system_identifier = es._system_identifier()) AS xid_offset) b;
END;

COMMENT ON FUNCTION es.read_horizon() IS
    'es.read_all hands out only events below this position: those of transactions older than the oldest one still running.';

CREATE FUNCTION es.read_stream(
    stream_id    text,
    from_version bigint DEFAULT 1,
    max_count    bigint DEFAULT NULL
) RETURNS SETOF es.events
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT e.* FROM es.events e
    WHERE e.stream_id = es._check_stream_id(read_stream.stream_id)
      AND e.version >= COALESCE(from_version, 1)
    ORDER BY e.version
    LIMIT max_count;
END;

COMMENT ON FUNCTION es.read_stream(text, bigint, bigint) IS
    'Events of one stream from from_version on, in version order; max_count NULL = all.';

CREATE FUNCTION es.read_all(
    after_position bigint  DEFAULT 0,
    max_count      integer DEFAULT 1000,
    event_types    text[]  DEFAULT NULL,
    stream_types   text[]  DEFAULT NULL
) RETURNS SETOF es.events
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT e.* FROM es.events e
    WHERE e.global_position > COALESCE(after_position, 0)
      AND e.global_position < es.read_horizon()
      AND (event_types IS NULL OR e.event_type = ANY (event_types))
      AND (stream_types IS NULL OR e.stream_type = ANY (stream_types))
    ORDER BY e.global_position
    LIMIT max_count;
END;

COMMENT ON FUNCTION es.read_all(bigint, integer, text[], text[]) IS
    'Events of every stream after after_position, in global order, never skipping one that commits later. Page with the last global_position returned.';

-- In C (src/store/stream_version.rs): called before every optimistic write, and a SQL
-- body here would be planned on every call. It reads with the caller's
-- rights and pins its own search_path.
CREATE FUNCTION es.stream_version(stream_id text) RETURNS bigint
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'es_stream_version';

COMMENT ON FUNCTION es.stream_version(text) IS 'The stream''s current version; 0 when it has no events.';

-- How far behind readers are held, and by whom: the oldest transaction still
-- running in the cluster (any database) holds the horizon at its id.
CREATE FUNCTION es.horizon(
    OUT horizon_position  bigint,
    OUT held_back_events  bigint,
    OUT oldest_xid        xid,
    OUT oldest_pid        integer,
    OUT oldest_xact_start timestamptz,
    OUT oldest_database   name
) RETURNS record
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT h.pos,
           (SELECT count(*) FROM es.events e WHERE e.global_position >= h.pos),
           o.backend_xid, o.pid, o.xact_start, o.datname
    FROM (SELECT es.read_horizon() AS pos) h
    LEFT JOIN LATERAL (
        SELECT a.backend_xid, a.pid, a.xact_start, a.datname
        FROM pg_catalog.pg_stat_activity a
        WHERE a.backend_xid IS NOT NULL AND a.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()
        ORDER BY pg_catalog.age(a.backend_xid) DESC
        LIMIT 1) o ON true;
END;

COMMENT ON FUNCTION es.horizon() IS
    'The read horizon, how many committed events it holds back, and the oldest running transaction that holds it.';
