-- Fold speed: 1,000,000 bank events in 1,000 streams, native reducers against the same
-- fold in plpgsql. Run in a scratch database (it drops and recreates the extension):
--   psql -X -v ON_ERROR_STOP=1 -d scratch -f bench/fold.sql
\timing on
DROP EXTENSION IF EXISTS pg_eventsource CASCADE;
CREATE EXTENSION pg_eventsource;
SELECT es.define_aggregate('account', reducers => '{
  "AccountOpened":  [{"set": "owner", "from": "$.owner"}, {"set": "balance", "from": "$.initialBalance"}, {"set": "isActive", "value": true}],
  "MoneyDeposited": [{"add": "balance", "from": "$.amount"}, {"inc": "transactionCount"}],
  "MoneyWithdrawn": [{"sub": "balance", "from": "$.amount"}, {"inc": "transactionCount"}],
  "AccountClosed":  [{"set": "isActive", "value": false}]
}', snapshot_every => 0);
-- 1000 accounts x 1000 events
DO $$
DECLARE i int;
BEGIN
  FOR i IN 1..1000 LOOP
    PERFORM es.append_events('account-' || i, (
      SELECT jsonb_agg(CASE WHEN v = 1 THEN jsonb_build_object('type', 'AccountOpened', 'data', jsonb_build_object('owner', 'o' || i, 'initialBalance', 100))
                            WHEN v % 3 = 0 THEN jsonb_build_object('type', 'MoneyWithdrawn', 'data', jsonb_build_object('amount', 0.5))
                            ELSE jsonb_build_object('type', 'MoneyDeposited', 'data', jsonb_build_object('amount', 1.25)) END ORDER BY v)
      FROM generate_series(1, 1000) v));
  END LOOP;
END $$;
VACUUM ANALYZE es.events;
SELECT count(*) FROM es.events;
CREATE OR REPLACE FUNCTION bank_fold(s jsonb, e es.events) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  CASE e.event_type
    WHEN 'AccountOpened' THEN RETURN s || jsonb_build_object('owner', e.data->'owner', 'balance', (e.data->>'initialBalance')::numeric, 'isActive', true);
    WHEN 'MoneyDeposited' THEN RETURN s || jsonb_build_object('balance', coalesce((s->>'balance')::numeric, 0) + (e.data->>'amount')::numeric, 'transactionCount', coalesce((s->>'transactionCount')::int, 0) + 1);
    WHEN 'MoneyWithdrawn' THEN RETURN s || jsonb_build_object('balance', coalesce((s->>'balance')::numeric, 0) - (e.data->>'amount')::numeric, 'transactionCount', coalesce((s->>'transactionCount')::int, 0) + 1);
    WHEN 'AccountClosed' THEN RETURN s || '{"isActive": false}';
    ELSE RETURN s;
  END CASE;
END $$;
SET work_mem = '64MB';
CREATE OR REPLACE AGGREGATE bank_fold_agg(es.events) (sfunc = bank_fold, stype = jsonb, initcond = '{}');
\echo native ordered
SELECT count(*), count(f) FROM (SELECT stream_id, es.fold(e ORDER BY version) f FROM es.events e GROUP BY stream_id) s;
\echo native unordered
SELECT count(*), count(f) FROM (SELECT stream_id, es.fold(e) f FROM es.events e GROUP BY stream_id) s;
\echo count ordered
SELECT count(*), count(f) FROM (SELECT stream_id, count(e ORDER BY version) f FROM es.events e GROUP BY stream_id) s;
\echo count unordered
SELECT count(*), count(f) FROM (SELECT stream_id, count(e) f FROM es.events e GROUP BY stream_id) s;
\echo plpgsql ordered
SELECT count(*), count(f) FROM (SELECT stream_id, bank_fold_agg(e ORDER BY version) f FROM es.events e GROUP BY stream_id) s;
\echo plpgsql unordered
SELECT count(*), count(f) FROM (SELECT stream_id, bank_fold_agg(e) f FROM es.events e GROUP BY stream_id) s;
\echo single group native
SELECT es.fold(e ORDER BY version) IS NOT NULL FROM es.events e WHERE stream_id = 'account-7';
