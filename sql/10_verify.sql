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

COMMENT ON FUNCTION es.verify(text) IS
    'Checks the store''s invariants; one row per violation, none when all hold. ''quick'' skips the fold checks.';
