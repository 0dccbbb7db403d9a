--
-- operations: es.stats() and es.verify().
--
\set SHOW_CONTEXT never
\set VERBOSITY default

SELECT es.append_events('crate-1', '[{"type": "Packed", "data": {"items": 3}},
                                     {"type": "Shipped", "data": {}}]');
SELECT es.append_event('crate-2', 'Packed', '{"items": 1}');

-- The store at a glance (positions and the horizon change from run to run).
SELECT key, value FROM jsonb_each(es.stats()) WHERE key LIKE 'total%' ORDER BY key;
SELECT es.stats()->'events_by_type'->'Packed' AS packed, es.stats()->'streams_by_type'->'crate' AS crates,
       jsonb_array_length(es.stats()->'aggregates') AS aggregates;
SELECT (es.stats()->>'last_position')::bigint = (SELECT max(global_position) FROM es.events) AS last_position_ok,
       (es.stats()->>'horizon')::bigint = es.read_horizon() AS horizon_ok;

-- Nothing wrong: no rows.
SELECT * FROM es.verify();
SELECT * FROM es.verify('quick');

-- Damage done around the extension's functions is reported.
UPDATE es.streams SET version = 5 WHERE stream_id = 'crate-2';
SELECT check_name, object, detail ~ 'es.streams has version 5' AS says_why FROM es.verify();
UPDATE es.streams SET version = 1 WHERE stream_id = 'crate-2';
SELECT count(*) FROM es.verify();

SELECT * FROM es.verify('thorough');
