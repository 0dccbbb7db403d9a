-- Aggregate costs: es.load of a long stream against a short one (snapshot_every 100), and
-- what the snapshot trigger adds to appending. Run in a scratch database:
--   psql -X -v ON_ERROR_STOP=1 -d scratch -f bench/aggregates.sql
-- Each figure is the mean of a loop inside one backend (no commit in the loop), so it
-- measures the functions' own cost.
DROP EXTENSION IF EXISTS pg_eventsource CASCADE;
CREATE EXTENSION pg_eventsource;
SELECT es.define_aggregate('acct', reducers => '{
  "Opened":    [{"set": "owner", "from": "$.owner"}, {"set": "balance", "value": 0}],
  "Deposited": [{"add": "balance", "from": "$.amount"}, {"inc": "n"}]
}', snapshot_every => 100);
SELECT es.define_aggregate('plain', reducers => '{"Deposited": [{"add": "balance", "from": "$.amount"}, {"inc": "n"}]}',
                           snapshot_every => 0);
-- a 100,000-event stream (appended in batches of 1,000, snapshots every 100) and a 100-event one
DO $$
BEGIN
  FOR i IN 1..100 LOOP
    PERFORM es.append_events('acct-long', (SELECT jsonb_agg(jsonb_build_object('type', 'Deposited', 'data', jsonb_build_object('amount', 1.25))) FROM generate_series(1, 1000)));
  END LOOP;
  PERFORM es.append_events('acct-short', (SELECT jsonb_agg(jsonb_build_object('type', 'Deposited', 'data', jsonb_build_object('amount', 1.25))) FROM generate_series(1, 100)));
END $$;
-- make the newest snapshot 50 events behind in both streams, as for a stream between snapshots
SELECT es.append_events('acct-long', (SELECT jsonb_agg(jsonb_build_object('type', 'Deposited', 'data', jsonb_build_object('amount', 1))) FROM generate_series(1, 50)));
SELECT es.append_events('acct-short', (SELECT jsonb_agg(jsonb_build_object('type', 'Deposited', 'data', jsonb_build_object('amount', 1))) FROM generate_series(1, 50)));
VACUUM ANALYZE es.events;
VACUUM ANALYZE es.snapshots;

CREATE TEMP TABLE results (what text, micros numeric);
DO $$
DECLARE t timestamptz; n int := 3000;
BEGIN
  FOR round IN 1..2 LOOP
    t := clock_timestamp();
    FOR i IN 1..n LOOP PERFORM * FROM es.load('acct-long'); END LOOP;
    INSERT INTO results VALUES ('load, 100,050-event stream', extract(epoch FROM clock_timestamp() - t) * 1e6 / n);
    t := clock_timestamp();
    FOR i IN 1..n LOOP PERFORM * FROM es.load('acct-short'); END LOOP;
    INSERT INTO results VALUES ('load, 150-event stream', extract(epoch FROM clock_timestamp() - t) * 1e6 / n);
  END LOOP;
END $$;
DO $$
DECLARE t timestamptz; n int := 20000;
BEGIN
  FOR round IN 1..2 LOOP
    t := clock_timestamp();
    FOR i IN 1..n LOOP PERFORM es.append_event('acct-t' || round, 'Deposited', '{"amount": 2.5}'); END LOOP;
    INSERT INTO results VALUES ('append, snapshot every 100', extract(epoch FROM clock_timestamp() - t) * 1e6 / n);
    t := clock_timestamp();
    FOR i IN 1..n LOOP PERFORM es.append_event('plain-t' || round, 'Deposited', '{"amount": 2.5}'); END LOOP;
    INSERT INTO results VALUES ('append, no snapshots', extract(epoch FROM clock_timestamp() - t) * 1e6 / n);
  END LOOP;
END $$;
SELECT what, round(min(micros), 1) AS best_us, round(max(micros), 1) AS worst_us FROM results GROUP BY what ORDER BY what;
SELECT round((SELECT min(micros) FROM results WHERE what LIKE 'load, 100%') / (SELECT min(micros) FROM results WHERE what LIKE 'load, 150%'), 2) AS load_long_over_short,
       round((SELECT min(micros) FROM results WHERE what = 'append, snapshot every 100') / (SELECT min(micros) FROM results WHERE what = 'append, no snapshots'), 3) AS append_with_snapshots_over_without;
