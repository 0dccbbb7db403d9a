--
-- append: es.append_event / es.append_events, expected-version modes,
-- stream types, idempotent retries by event_id.
--
\set SHOW_CONTEXT never
\set VERBOSITY default
-- What the store holds, one line per event (no positions, ids or times: they vary).
\set show_events 'SELECT stream_id, stream_type, version, event_type, data, metadata FROM es.events ORDER BY stream_id, version'
\set counts 'SELECT (SELECT count(*) FROM es.events) AS events, (SELECT count(*) FROM es.streams) AS streams'

-- ---------------------------------------------------------------------
-- Single appends, expected_version NULL (any): returns the new version.
SELECT es.append_event('order-1', 'OrderPlaced', '{"total": 10}');
SELECT es.append_event('order-1', 'ItemAdded', '{"sku": "A", "qty": 2}');
SELECT es.append_event('order-1', 'ItemAdded', '{"sku": "B", "qty": 1}', NULL);
SELECT es.stream_version('order-1');

-- expected_version 0: the stream must be new.
SELECT es.append_event('order-2', 'OrderPlaced', '{"total": 5}', 0);
SELECT es.append_event('order-2', 'OrderPlaced', '{"total": 5}', 0);
\echo :LAST_ERROR_SQLSTATE
:counts;

-- expected_version n: the stream must be exactly at n.
SELECT es.append_event('order-1', 'OrderPaid', '{"amount": 10}', 3);
SELECT es.append_event('order-1', 'OrderPaid', '{"amount": 10}', 3);
\echo :LAST_ERROR_SQLSTATE
SELECT es.append_event('order-1', 'OrderPaid', '{"amount": 10}', 7);
\echo :LAST_ERROR_SQLSTATE
-- a stream that does not exist is at version 0
SELECT es.append_event('order-404', 'OrderPlaced', '{}', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT es.stream_version('order-404');
:counts;

-- metadata, named arguments; data may be any JSON value.
SELECT es.append_event('order-1', 'NoteAdded', '"gift wrap, please"',
                       metadata => '{"user": "alice", "ip": "10.0.0.1"}');
SELECT es.append_event(stream_id => 'order-2', event_type => 'Cancelled',
                       data => 'null', expected_version => 1);
SELECT es.append_event('order-2', 'Counted', '42', 2, '{}');
SELECT es.append_event('order-2', 'Tagged', '["x", "y"]', metadata => NULL);

:show_events;

-- A transaction that is rolled back leaves nothing behind.
BEGIN;
SELECT es.append_event('order-3', 'OrderPlaced', '{}');
SELECT es.append_event('order-3', 'ItemAdded', '{}');
SELECT es.stream_version('order-3');
ROLLBACK;
SELECT es.stream_version('order-3');
-- several appends in one transaction, committed
BEGIN;
SELECT es.append_event('order-3', 'OrderPlaced', '{"total": 1}', 0);
SELECT es.append_event('order-3', 'ItemAdded', '{"sku": "C"}', 1);
COMMIT;
SELECT stream_id, version, event_type, data FROM es.events WHERE stream_id = 'order-3' ORDER BY version;

-- es.streams holds one row per stream with its current version.
SELECT stream_id, stream_type, version FROM es.streams ORDER BY stream_id;
SELECT bool_and(s.version = (SELECT max(e.version) FROM es.events e WHERE e.stream_id = s.stream_id))
       AS streams_match_events
  FROM es.streams s;

-- ---------------------------------------------------------------------
-- Stream types.
-- By default: the part of stream_id before the first '-' ...
SELECT es.append_event('user-42-profile', 'Registered', '{}');
-- ... or the whole id when it has no '-'.
SELECT es.append_event('inventory', 'Counted', '{"n": 3}');
-- Given explicitly for a new stream:
SELECT es.append_event('cart-7', 'CartOpened', '{}', stream_type => 'shopping_cart');
-- Later appends keep the recorded type whether or not they name it.
SELECT es.append_event('cart-7', 'ItemAdded', '{"sku": "A"}');
SELECT es.append_event('cart-7', 'ItemAdded', '{"sku": "B"}', 2, stream_type => 'shopping_cart');
-- A different type for an existing stream is refused, in every mode, and writes nothing.
SELECT es.append_event('cart-7', 'ItemAdded', '{"sku": "C"}', stream_type => 'cart');
\echo :LAST_ERROR_SQLSTATE
SELECT es.append_event('cart-7', 'ItemAdded', '{"sku": "C"}', 3, stream_type => 'cart');
\echo :LAST_ERROR_SQLSTATE
SELECT es.append_events('cart-7', '[{"type": "ItemAdded", "data": {"sku": "C"}}]', stream_type => 'cart');
\echo :LAST_ERROR_SQLSTATE
SELECT es.append_event('order-1', 'OrderShipped', '{}', stream_type => 'shopping_cart');
\echo :LAST_ERROR_SQLSTATE
SELECT es.stream_version('cart-7'), es.stream_version('order-1');
-- Every event carries its stream's type.
SELECT stream_id, stream_type, version, event_type
  FROM es.events WHERE stream_id IN ('user-42-profile', 'inventory', 'cart-7')
 ORDER BY stream_id, version;
SELECT stream_id, stream_type, version FROM es.streams
 WHERE stream_id IN ('user-42-profile', 'inventory', 'cart-7') ORDER BY stream_id;
SELECT count(*) AS events_with_other_type_than_stream
  FROM es.events e JOIN es.streams s USING (stream_id)
 WHERE e.stream_type <> s.stream_type;

-- ---------------------------------------------------------------------
-- Batches: es.append_events, all events in one stream, returns the last version.
SELECT es.append_events('account-1', '[
    {"type": "Opened",    "data": {"owner": "bob"}},
    {"type": "Deposited", "data": {"amount": 100}, "metadata": {"teller": 7}},
    {"type": "Withdrawn", "data": {"amount": 30}}
]');
SELECT es.append_events('account-1', '[{"type": "Deposited", "data": {"amount": 5}}]', 3);
-- wrong expected version: nothing of the batch is written
SELECT es.append_events('account-1', '[
    {"type": "Deposited", "data": {"amount": 1}},
    {"type": "Deposited", "data": {"amount": 2}}
]', 3);
\echo :LAST_ERROR_SQLSTATE
SELECT es.append_events('account-1', '[{"type": "Opened", "data": {}}]', 0);
\echo :LAST_ERROR_SQLSTATE
SELECT es.stream_version('account-1');
-- a new stream with expected_version 0 and an explicit stream type
SELECT es.append_events('acct-2', '[
    {"type": "Opened", "data": {"owner": "carol"}},
    {"type": "Closed", "data": null, "metadata": {"reason": "test"}}
]', 0, 'account');
SELECT es.append_events('acct-2', '[{"type": "Reopened", "data": {}}]', 2);
SELECT stream_id, stream_type, version, event_type, data, metadata
  FROM es.events WHERE stream_id IN ('account-1', 'acct-2') ORDER BY stream_id, version;
-- the events of one batch have consecutive versions and increasing positions
SELECT bool_and(global_position > prev) AS positions_increase
  FROM (SELECT global_position, lag(global_position) OVER (ORDER BY version) AS prev
          FROM es.events WHERE stream_id = 'account-1') x
 WHERE prev IS NOT NULL;
:counts;

-- ---------------------------------------------------------------------
-- Idempotent retries by event_id.
SELECT es.append_event('pay-1', 'PaymentTaken', '{"amount": 3}',
                       event_id => '0190a5b0-0000-7000-8000-000000000001');
-- the same call again: returns that event's version, writes nothing
SELECT es.append_event('pay-1', 'PaymentTaken', '{"amount": 3}',
                       event_id => '0190a5b0-0000-7000-8000-000000000001');
SELECT count(*) AS pay_1_events FROM es.events WHERE stream_id = 'pay-1';
SELECT es.append_event('pay-1', 'PaymentRefunded', '{"amount": 3}',
                       event_id => '0190a5b0-0000-7000-8000-000000000002');
-- a retry of the first event after others were appended still returns version 1,
-- even with the expected_version of the original call
SELECT es.append_event('pay-1', 'PaymentTaken', '{"amount": 3}', 0,
                       event_id => '0190a5b0-0000-7000-8000-000000000001');
SELECT es.append_event('pay-1', 'PaymentTaken', '{"amount": 3}',
                       event_id => '0190a5b0-0000-7000-8000-000000000001');
SELECT stream_id, version, event_type, data, event_id FROM es.events
 WHERE stream_id = 'pay-1' ORDER BY version;
-- the same id with other content is a different event: 23505, nothing written
SELECT es.append_event('pay-1', 'PaymentTaken', '{"amount": 4}',
                       event_id => '0190a5b0-0000-7000-8000-000000000001');
\echo :LAST_ERROR_SQLSTATE
SELECT es.append_event('pay-1', 'PaymentFailed', '{"amount": 3}',
                       event_id => '0190a5b0-0000-7000-8000-000000000001');
\echo :LAST_ERROR_SQLSTATE
SELECT es.append_event('pay-2', 'PaymentTaken', '{"amount": 3}',
                       event_id => '0190a5b0-0000-7000-8000-000000000001');
\echo :LAST_ERROR_SQLSTATE
SELECT es.stream_version('pay-1') AS pay_1, es.stream_version('pay-2') AS pay_2;
:counts;
-- batches with ids: a retry of the whole batch returns the stream's version after it
SELECT es.append_events('pay-3', '[
    {"type": "PaymentTaken",    "data": {"amount": 1}, "id": "0190a5b0-0000-7000-8000-000000000031"},
    {"type": "PaymentRefunded", "data": {"amount": 1}, "id": "0190a5b0-0000-7000-8000-000000000032"}
]', 0);
SELECT es.append_events('pay-3', '[
    {"type": "PaymentTaken",    "data": {"amount": 1}, "id": "0190a5b0-0000-7000-8000-000000000031"},
    {"type": "PaymentRefunded", "data": {"amount": 1}, "id": "0190a5b0-0000-7000-8000-000000000032"}
]', 0);
-- a batch reusing one of those ids for other content: 23505, nothing written
SELECT es.append_events('pay-3', '[
    {"type": "PaymentTaken", "data": {"amount": 9}, "id": "0190a5b0-0000-7000-8000-000000000033"},
    {"type": "PaymentTaken", "data": {"amount": 9}, "id": "0190a5b0-0000-7000-8000-000000000031"}
]');
\echo :LAST_ERROR_SQLSTATE
-- the same batch in another stream: 23505
SELECT es.append_events('pay-4', '[
    {"type": "PaymentTaken",    "data": {"amount": 1}, "id": "0190a5b0-0000-7000-8000-000000000031"},
    {"type": "PaymentRefunded", "data": {"amount": 1}, "id": "0190a5b0-0000-7000-8000-000000000032"}
]');
\echo :LAST_ERROR_SQLSTATE
SELECT es.stream_version('pay-3') AS pay_3, es.stream_version('pay-4') AS pay_4;
-- ids in any form the uuid type accepts (braces, upper case, no hyphens)
SELECT es.append_events('pay-3', '[
    {"type": "PaymentTaken", "data": {"amount": 2}, "id": "{0190A5B0-0000-7000-8000-000000000034}"},
    {"type": "PaymentTaken", "data": {"amount": 3}, "id": "0190a5b0000070008000000000000035"}
]', 2);
SELECT es.append_event('pay-3', 'PaymentTaken', '{"amount": 2}', event_id => '0190a5b0-0000-7000-8000-000000000034');
SELECT stream_id, version, event_type, data, event_id FROM es.events
 WHERE stream_id = 'pay-3' ORDER BY version;

-- Ids the store makes are version-7 UUIDs, all distinct.
SELECT count(*) AS events,
       count(DISTINCT event_id) AS distinct_ids,
       count(*) FILTER (WHERE event_id::text ~ '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$')
           AS v7_ids
  FROM es.events WHERE stream_id NOT LIKE 'pay-%';
SELECT es.uuid_generate_v7()::text ~ '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' AS is_v7,
       es.uuid_generate_v7() <> es.uuid_generate_v7() AS differ;

-- recorded_at is the time of the appending transaction, and each stream's
-- positions increase with its versions.
SELECT bool_and(recorded_at <= now()) AS recorded_in_past FROM es.events;
SELECT count(*) AS out_of_order
  FROM (SELECT global_position, lag(global_position) OVER (PARTITION BY stream_id ORDER BY version) AS prev
          FROM es.events) x
 WHERE global_position <= prev;

:counts;

-- ---------------------------------------------------------------------
-- Several streams in one call, all or nothing: one row per event, in the
-- order given, with the version and the global_position it got.
CREATE TEMP TABLE multi AS
SELECT m.stream_id, m.version, m.global_position, ord
  FROM es.append_multi('[
         {"stream_id": "cart-7", "events": [{"type": "CartOpened", "data": {}},
                                            {"type": "ItemAdded", "data": {"sku": "A"}}]},
         {"stream_id": "stock-A", "expected_version": 0, "stream_type": "stock",
          "events": [{"type": "Reserved", "data": {"qty": 1}}]},
         {"stream_id": "cart-7", "events": [{"type": "CheckedOut", "data": {}}]}]')
       WITH ORDINALITY AS m(stream_id, version, global_position, ord);
SELECT m.stream_id, m.version, e.event_type
  FROM multi m JOIN es.events e USING (global_position) ORDER BY m.ord;
-- a wrong expected version anywhere: nothing of the call is written
SELECT * FROM es.append_multi('[{"stream_id": "cart-8", "events": [{"type": "CartOpened", "data": {}}]},
                                {"stream_id": "stock-A", "expected_version": 0,
                                 "events": [{"type": "Reserved", "data": {"qty": 2}}]}]');
\echo :LAST_ERROR_SQLSTATE
SELECT es.stream_version('cart-8') AS cart_8, es.stream_version('stock-A') AS stock_a;

-- Where a consumer that skips history starts, and reading up to a bound.
SELECT es.last_position() = (SELECT max(global_position) FROM es.events) AS last_is_newest;
SELECT es.last_position(ARRAY['Reserved']) = (SELECT global_position FROM multi WHERE stream_id = 'stock-A')
       AS last_reserved;
SELECT es.last_position(ARRAY['CartOpened', 'ItemAdded'], ARRAY['shopping_cart'])
       = (SELECT global_position FROM multi WHERE ord = 2) AS last_cart_item;
SELECT es.last_position(ARRAY['NoSuchType']) AS none;
SELECT event_type FROM es.read_all((SELECT min(global_position) - 1 FROM multi),
                                   up_to_position => (SELECT global_position FROM multi WHERE ord = 3))
 ORDER BY global_position;
