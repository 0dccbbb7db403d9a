-- The bank data set: :streams accounts x 1,000 events (1,000 accounts =
-- 1,000,000 events in the full run), with native reducers for the "account"
-- stream type (as bench/fold.sql has them). Appended 100 events per call in
-- 10 rounds over all accounts, one transaction per round, so each stream's
-- events lie in 10 separate runs of the table, as when streams are written
-- at the same time.
--   psql -v streams=1000 -f bench/sql/data_bank.sql
SELECT es.define_aggregate('account', reducers => '{
  "AccountOpened":  [{"set": "owner", "from": "$.owner"}, {"set": "balance", "from": "$.initialBalance"}, {"set": "isActive", "value": true}],
  "MoneyDeposited": [{"add": "balance", "from": "$.amount"}, {"inc": "transactionCount"}],
  "MoneyWithdrawn": [{"sub": "balance", "from": "$.amount"}, {"inc": "transactionCount"}],
  "AccountClosed":  [{"set": "isActive", "value": false}]
}', snapshot_every => 0);

SELECT set_config('bench.streams', :'streams', false);
DO $$
DECLARE n int := current_setting('bench.streams')::int;
BEGIN
  FOR r IN 0..9 LOOP
    FOR i IN 1..n LOOP
      PERFORM es.append_events('account-' || i, (
        SELECT jsonb_agg(CASE WHEN v = 1 THEN jsonb_build_object('type', 'AccountOpened', 'data', jsonb_build_object('owner', 'o' || i, 'initialBalance', 100))
                              WHEN v % 3 = 0 THEN jsonb_build_object('type', 'MoneyWithdrawn', 'data', jsonb_build_object('amount', 0.5))
                              ELSE jsonb_build_object('type', 'MoneyDeposited', 'data', jsonb_build_object('amount', 1.25)) END ORDER BY v)
        FROM generate_series(r * 100 + 1, r * 100 + 100) v));
    END LOOP;
    COMMIT;
  END LOOP;
END $$;
VACUUM ANALYZE es.events;
VACUUM ANALYZE es.streams;
