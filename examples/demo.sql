-- A short tour of the low-level API (appends, reads, aggregates): `bash scripts/run.sh demo`
-- runs it in a fresh database. The bank (examples/bank.sql) is the main demo.
\echo '--- install'
CREATE EXTENSION pg_eventsource;

\echo '--- append to a new stream (expected version 0), then with the version we know'
SELECT es.append_event('account-42', 'AccountOpened', '{"owner": "Ada", "initialBalance": 100}', 0) AS version;
SELECT es.append_event('account-42', 'MoneyDeposited', '{"amount": 25.50}', 1,
                       metadata => '{"correlation_id": "c-1", "user": "ada"}') AS version;

\echo '--- several events at once, all or nothing'
SELECT es.append_events('account-42', '[
  {"type": "MoneyWithdrawn", "data": {"amount": 10}},
  {"type": "MoneyDeposited", "data": {"amount": 0.25}}
]', 2) AS version;

\echo '--- a stale expected version loses with SQLSTATE 40001 and writes nothing'
DO $$
BEGIN
  PERFORM es.append_event('account-42', 'MoneyWithdrawn', '{"amount": 999}', 1);
EXCEPTION WHEN serialization_failure THEN
  RAISE NOTICE 'rejected (%): %', SQLSTATE, SQLERRM;
END $$;

\echo '--- a retry with the same event id is a no-op that returns the original version'
SELECT es.append_event('order-7', 'OrderPlaced', '{"total": 12}', event_id => '0190a8c2-0000-7000-8000-000000000001') AS first_try,
       es.append_event('order-7', 'OrderPlaced', '{"total": 12}', event_id => '0190a8c2-0000-7000-8000-000000000001') AS retry;

\echo '--- read one stream'
SELECT version, event_type, data, metadata FROM es.read_stream('account-42');

\echo '--- read everything in global order (gap-free), and the current versions'
SELECT stream_id, stream_type, version, event_type FROM es.read_all(0, 10);
SELECT es.stream_version('account-42') AS account_42, es.stream_version('nobody-1') AS unknown;
SELECT stream_id, stream_type, version FROM es.streams ORDER BY stream_id;

\echo '--- events are immutable'
DO $$
BEGIN
  DELETE FROM es.events;
EXCEPTION WHEN object_not_in_prerequisite_state THEN
  RAISE NOTICE 'rejected (%): %', SQLSTATE, SQLERRM;
END $$;

\echo '--- an aggregate type: native reducers fold the account events into state, with a snapshot every 2 events'
SELECT es.define_aggregate('account', reducers => '{
  "AccountOpened":  [{"set": "owner", "from": "$.owner"}, {"set": "balance", "from": "$.initialBalance"}, {"set": "isActive", "value": true}],
  "MoneyDeposited": [{"add": "balance", "from": "$.amount"}, {"inc": "transactionCount"}],
  "MoneyWithdrawn": [{"sub": "balance", "from": "$.amount"}, {"inc": "transactionCount"}],
  "AccountClosed":  [{"set": "isActive", "value": false}]
}', snapshot_every => 2);
SELECT es.append_event('account-42', 'MoneyDeposited', '{"amount": 0.1}') AS version;
SELECT es.append_event('account-42', 'MoneyDeposited', '{"amount": 0.2}') AS version;
SELECT * FROM es.load('account-42');
\echo '--- time travel: the state at version 2'
SELECT version, state FROM es.load('account-42', 2);
\echo '--- snapshots taken as the appends go'
SELECT stream_id, version, revision, state->>'balance' AS balance FROM es.snapshots ORDER BY version;
\echo '--- every account at once, with the es.fold aggregate'
SELECT stream_id, es.fold(e ORDER BY version) AS state FROM es.events e WHERE stream_type = 'account' GROUP BY stream_id;
