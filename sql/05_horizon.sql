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
LANGUAGE c STABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'es_horizon_position';

CREATE FUNCTION es.read_horizon() RETURNS bigint
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

-- Partitions behind a router (the pg_eventsource_router extension, over
-- PL/Proxy): a stream belongs to logical partition hashtext(stream_id) &
-- (partition_count - 1), PL/Proxy's own rule, and a partition database may
-- hold several logical partitions. es.read_partition is es.read_all for one
-- of them: the same horizon, the same order, positions of this database.
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

-- The position of the newest event es.read_all would hand out now (0 when
-- there is none): one backward index scan per type named.
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
