-- Data written with the previous release's API, before ALTER EXTENSION pg_eventsource UPDATE
-- (scripts/test_upgrade.sh). Uses only what 0.1.0 already had (0.2.0 kept it): es.append_event and
-- es.append_events with expected versions, metadata, event ids and explicit
-- stream types; aggregate definitions with native reducers and a fold
-- function, a redefinition; snapshots (the trigger takes them). Statements
-- run in autocommit, so most appends are transactions of their own.
-- Prints one "ok - ..." or "FAILED - ..." line per check.
\set ON_ERROR_STOP 1
\pset tuples_only on
\pset format unaligned
SET client_min_messages = warning;

CREATE FUNCTION pg_temp.check(name text, cond boolean, detail text DEFAULT NULL) RETURNS text
LANGUAGE sql AS $$
    SELECT CASE WHEN cond THEN 'ok - ' || name
                ELSE 'FAILED - ' || name || COALESCE(': ' || detail, '') END
$$;

CREATE FUNCTION pg_temp.sqlstate_of(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;

SELECT pg_temp.check('extension is at 0.2.0', extversion = '0.2.0', extversion)
  FROM pg_extension WHERE extname = 'pg_eventsource';

-- Aggregates: native reducers (snapshot every 3 events) and a fold function
-- (snapshot every 2).
SELECT es.define_aggregate('account', reducers => '{
  "AccountOpened":  [{"set": "owner", "from": "$.owner"}, {"set": "balance", "from": "$.initialBalance"},
                     {"set": "isActive", "value": true}],
  "MoneyDeposited": [{"add": "balance", "from": "$.amount"}, {"inc": "transactionCount"}],
  "MoneyWithdrawn": [{"sub": "balance", "from": "$.amount"}, {"inc": "transactionCount"}],
  "AccountClosed":  [{"set": "isActive", "value": false}]
}', initial_state => '{"balance": 0, "transactionCount": 0}', snapshot_every => 3);

CREATE FUNCTION public.cart_fold(state jsonb, e es.events) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE e.event_type
             WHEN 'ItemAdded'   THEN jsonb_set(state, '{items}', (state->'items') || (e.data->'sku'))
             WHEN 'CartCleared' THEN jsonb_set(state, '{items}', '[]')
             ELSE state END
$$;
SELECT es.define_aggregate('cart', fold => 'public.cart_fold(jsonb, es.events)',
                           initial_state => '{"items": []}', snapshot_every => 2);

-- Single appends: a new stream (expected version 0) with metadata and an id,
-- then expected version n, then any version (NULL).
SELECT pg_temp.check('append_event to a new stream returns 1',
    es.append_event('account-1', 'AccountOpened', '{"owner": "ann", "initialBalance": 100}', 0,
                    '{"by": "upgrade-test", "correlation": "c-1"}',
                    '01900000-0000-7000-8000-000000000001') = 1);
SELECT pg_temp.check('append_event at expected version 1 returns 2',
    es.append_event('account-1', 'MoneyDeposited', '{"amount": 25.50}', 1) = 2);
SELECT pg_temp.check('append_event with any version returns 3',
    es.append_event('account-1', 'MoneyWithdrawn', '{"amount": 10}') = 3);

-- Batch: ids and metadata on some events.
SELECT pg_temp.check('append_events of 3 at expected version 3 returns 6',
    es.append_events('account-1', '[
        {"type": "MoneyDeposited", "data": {"amount": 0.01}, "metadata": {"batch": 1},
         "id": "01900000-0000-7000-8000-000000000002"},
        {"type": "MoneyDeposited", "data": {"amount": 1000000.99}},
        {"type": "MoneyWithdrawn", "data": {"amount": 0.5}, "id": "01900000-0000-7000-8000-000000000003"}
    ]', 3) = 6);

-- A stale expected version fails with 40001 and writes nothing.
SELECT pg_temp.check('a stale expected version fails with 40001',
    pg_temp.sqlstate_of($$SELECT es.append_event('account-1', 'MoneyDeposited', '{"amount": 1}', 2)$$) = '40001'
    AND es.stream_version('account-1') = 6);

-- Many accounts, each in its own transactions.
\o /dev/null
SELECT format($f$SELECT es.append_event('account-%s', 'AccountOpened', '{"owner": "o%s", "initialBalance": %s}', 0)$f$, i, i, i)
  FROM generate_series(2, 40) i \gexec
SELECT format($f$SELECT es.append_events('account-%s', '[{"type": "MoneyDeposited", "data": {"amount": %s}}, {"type": "MoneyWithdrawn", "data": {"amount": 1}, "metadata": {"n": %s}}]', 1)$f$, i, i * 3, i)
  FROM generate_series(2, 40) i \gexec
SELECT format($f$SELECT es.append_event('account-%s', 'AccountClosed', '{}', 3)$f$, i)
  FROM generate_series(2, 40, 7) i \gexec
\o

-- Two streams in one transaction, interleaved.
BEGIN;
SELECT es.append_event('cart-1', 'ItemAdded', '{"sku": "apple"}', 0) IS NOT NULL \g /dev/null
SELECT es.append_event('account-1', 'MoneyWithdrawn', '{"amount": 3}', 6) IS NOT NULL \g /dev/null
SELECT es.append_event('cart-1', 'ItemAdded', '{"sku": "pear"}', 1) IS NOT NULL \g /dev/null
COMMIT;
SELECT es.append_events('cart-1', '[{"type": "ItemAdded", "data": {"sku": "fig"}}, {"type": "CartCleared", "data": {}}, {"type": "ItemAdded", "data": {"sku": "kiwi"}}]', 2) IS NOT NULL \g /dev/null
SELECT es.append_event('cart-2', 'ItemAdded', format('{"sku": "s%s"}', i)::jsonb) IS NOT NULL
  FROM generate_series(1, 5) i \g /dev/null

-- An explicit stream type, and a type without an aggregate definition.
SELECT es.append_event('order-7', 'OrderPlaced', '{"total": 12}', 0, NULL, NULL, 'shop_order') IS NOT NULL \g /dev/null
\o /dev/null
SELECT format($f$SELECT es.append_event('log-%s', 'Logged', '{"line": %s}')$f$, i % 3, i)
  FROM generate_series(1, 12) i \gexec
\o

-- Redefine account (revision 2: snapshots of revision 1 are no longer used),
-- then append past a multiple of 3 so revision 2 gets snapshots too.
SELECT es.define_aggregate('account', reducers => '{
  "AccountOpened":  [{"set": "owner", "from": "$.owner"}, {"set": "balance", "from": "$.initialBalance"},
                     {"set": "isActive", "value": true}],
  "MoneyDeposited": [{"add": "balance", "from": "$.amount"}, {"inc": "transactionCount"}, {"inc": "deposits"}],
  "MoneyWithdrawn": [{"sub": "balance", "from": "$.amount"}, {"inc": "transactionCount"}],
  "AccountClosed":  [{"set": "isActive", "value": false}]
}', initial_state => '{"balance": 0, "transactionCount": 0}', snapshot_every => 3);
SELECT es.append_events('account-1', '[{"type": "MoneyDeposited", "data": {"amount": 7}}, {"type": "MoneyDeposited", "data": {"amount": 8}}]', 7) IS NOT NULL \g /dev/null

SELECT pg_temp.check('snapshots of both account revisions and of carts exist',
    (SELECT count(DISTINCT (stream_type, revision)) FROM es.snapshots) = 3,
    (SELECT string_agg(DISTINCT stream_type || ' r' || revision, ', ') FROM es.snapshots));
SELECT pg_temp.check('events written', (SELECT count(*) FROM es.events) > 150, (SELECT count(*) FROM es.events)::text);
