-- es.stats(): the store at a glance, as one jsonb document. It counts the
-- tables (a scan of es.events for the per-type counts), so call it for
-- dashboards and checks, not on a hot path.
CREATE FUNCTION es.stats() RETURNS jsonb
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT pg_catalog.jsonb_build_object(
        'total_events',    (SELECT count(*) FROM es.events),
        'total_streams',   (SELECT count(*) FROM es.streams),
        'total_snapshots', (SELECT count(*) FROM es.snapshots),
        'events_by_type',  COALESCE((SELECT pg_catalog.jsonb_object_agg(t.event_type, t.n ORDER BY t.event_type)
                                       FROM (SELECT e.event_type, count(*) AS n FROM es.events e
                                              GROUP BY e.event_type) t), '{}'::jsonb),
        'streams_by_type', COALESCE((SELECT pg_catalog.jsonb_object_agg(t.stream_type, t.n ORDER BY t.stream_type)
                                       FROM (SELECT s.stream_type, count(*) AS n FROM es.streams s
                                              GROUP BY s.stream_type) t), '{}'::jsonb),
        'aggregates',      COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                            'stream_type', a.stream_type,
                                            'kind', CASE WHEN a.fold IS NULL THEN 'reducers' ELSE 'fold' END,
                                            'revision', a.revision,
                                            'snapshot_every', a.snapshot_every) ORDER BY a.stream_type)
                                       FROM es.aggregates a), '[]'::jsonb),
        'projections',     COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                            'name', p.name, 'mode', p.mode, 'kind', p.kind,
                                            'position', p.position, 'lag', p.lag,
                                            'status', p.status, 'last_error', p.last_error) ORDER BY p.name)
                                       FROM es.projections p), '[]'::jsonb),
        'subscriptions',   COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                            'consumer', s.consumer, 'position', s.position,
                                            'lag', s.lag) ORDER BY s.consumer)
                                       FROM es.subscription_status s), '[]'::jsonb),
        'last_position',   (SELECT max(e.global_position) FROM es.events e),
        'horizon',         es.read_horizon()
    );
END;

COMMENT ON FUNCTION es.stats() IS
    'Counts of events, streams and snapshots (total and by type), aggregate definitions, projections and subscriptions with their positions and lag, the last position and the read horizon.';
