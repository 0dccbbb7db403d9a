-- Data for the schema-evolution scenarios (bench/run.sh: schema_append,
-- read_all_noup, read_all_upcast, load_upcast), in database es_evo.
--
-- * 100,000 events of type Credited stored at version 1 ({"amt": n}), read
--   through one upcaster that renames the field (every event needs it);
-- * two 100-event streams with snapshots off: chain-1 of type Old whose
--   events all need a two-step chain (v1 -> v2 -> v3), and plain-1 of type
--   New, written in the v3 shape (no upcaster applies);
-- * the 0.2.0 body of es.read_all as bl.read_all_020, to compare today's
--   es.read_all (which first asks whether any upcaster exists) with it.
\set ON_ERROR_STOP 1

SELECT count(*) FROM (
    SELECT es.append_events('credit-' || s, (SELECT jsonb_agg(jsonb_build_object('type', 'Credited',
                                                   'data', jsonb_build_object('amt', s * 1000 + i, 'note', 'salary')))
                                              FROM generate_series(1, 1000) i))
      FROM generate_series(1, 100) s) x;

SELECT es.define_aggregate('chain', reducers => '{"Old": [{"add": "balance", "from": "$.money.amount"}, {"inc": "n"}]}',
                           snapshot_every => 0);
SELECT es.define_aggregate('plain', reducers => '{"New": [{"add": "balance", "from": "$.money.amount"}, {"inc": "n"}]}',
                           snapshot_every => 0);
SELECT count(es.append_event('chain-1', 'Old', jsonb_build_object('amt', i, 'cur', 'EUR'))) FROM generate_series(1, 100) i;
SELECT count(es.append_event('plain-1', 'New', jsonb_build_object('money', jsonb_build_object('amount', i, 'currency', 'EUR'))))
  FROM generate_series(1, 100) i;

SELECT es.define_upcaster('Credited', 1, steps => '[{"rename": "amt", "to": "amount"}]');
SELECT es.define_upcaster('Old', 1, steps => '[{"rename": "amt", "to": "amount"}, {"rename": "cur", "to": "currency"}]');
SELECT es.define_upcaster('Old', 2, steps => '[{"rename": "amount", "to": "money.amount"}, {"rename": "currency", "to": "money.currency"}]');

CREATE FUNCTION bl.read_all_020(after_position bigint DEFAULT 0, max_count integer DEFAULT 1000,
                                event_types text[] DEFAULT NULL, stream_types text[] DEFAULT NULL)
RETURNS SETOF es.events
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    horizon constant bigint := es._next_read_horizon();
BEGIN
    RETURN QUERY
    SELECT e.* FROM es.events e
    WHERE e.global_position > COALESCE(after_position, 0)
      AND e.global_position < horizon
      AND (event_types IS NULL OR e.event_type = ANY (event_types))
      AND (stream_types IS NULL OR e.stream_type = ANY (stream_types))
    ORDER BY e.global_position
    LIMIT max_count;
END
$$;
VACUUM ANALYZE;
