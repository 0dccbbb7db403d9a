-- es.load: a 100,050-event stream against a 150-event one, snapshot_every 100
-- (as bench/aggregates.sql had it). Both end 50 events after their newest
-- snapshot, the average position between snapshots, so es.load folds 50
-- events on top of a snapshot in both and the ratio shows what the stream's
-- length adds.
SELECT es.define_aggregate('acct', reducers => '{
  "Opened":    [{"set": "owner", "from": "$.owner"}, {"set": "balance", "value": 0}],
  "Deposited": [{"add": "balance", "from": "$.amount"}, {"inc": "n"}]
}', snapshot_every => 100);

DO $$
BEGIN
  FOR i IN 1..100 LOOP
    PERFORM es.append_events('acct-long', (SELECT jsonb_agg(jsonb_build_object('type', 'Deposited', 'data', jsonb_build_object('amount', 1.25)))
                                           FROM generate_series(1, 1000)));
    COMMIT;
  END LOOP;
END $$;
SELECT es.append_events('acct-short', (SELECT jsonb_agg(jsonb_build_object('type', 'Deposited', 'data', jsonb_build_object('amount', 1.25)))
                                       FROM generate_series(1, 100)));
SELECT es.append_events(s, (SELECT jsonb_agg(jsonb_build_object('type', 'Deposited', 'data', jsonb_build_object('amount', 1)))
                            FROM generate_series(1, 50)))
FROM unnest(ARRAY['acct-long', 'acct-short']) s;
VACUUM ANALYZE es.events;
VACUUM ANALYZE es.snapshots;
