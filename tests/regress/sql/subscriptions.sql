--
-- subscriptions: es.subscribe, es.poll, es.ack, es.unsubscribe, consumer
-- groups, es.subscription_status, row-level security, bad input.
--
\set SHOW_CONTEXT never
\set VERBOSITY default

-- Wait (at most 60 s) until the read horizon has passed every event written
-- so far: another session of the cluster may hold it back for a moment.
\set wait_for_horizon 'DO $$ BEGIN FOR i IN 1..600 LOOP EXIT WHEN es.read_horizon() > (SELECT coalesce(max(global_position), 0) FROM es.events); PERFORM pg_sleep(0.1); END LOOP; END $$;'

-- Earlier tests left events; this file's subscriptions start after them.
:wait_for_horizon
SELECT coalesce(max(global_position), 0) AS start FROM es.events \gset

-- A shop: six carts and a payment, events interleaved across streams.
SELECT es.append_event('cart-' || i, 'CartOpened', jsonb_build_object('cart', i)) FROM generate_series(1, 6) i;
SELECT es.append_event('cart-' || i, 'ItemAdded', jsonb_build_object('sku', 'sku-' || i)) FROM generate_series(1, 6) i;
SELECT es.append_event('payment-1', 'PaymentReceived', '{"amount": 10}');
SELECT es.append_event('cart-' || i, 'CartCheckedOut', '{}') FROM generate_series(1, 3) i;
:wait_for_horizon

-- ---------------------------------------------------------------------
-- Subscribe: one consumer for every cart event, one for check-outs only.
SELECT es.subscribe('cart-projector', stream_types => ARRAY['cart'], from_position => :start);
SELECT es.subscribe('mailer', ARRAY['CartCheckedOut', 'PaymentReceived'], from_position => :start);
-- a service restarting subscribes again: nothing changes
SELECT es.subscribe('mailer', ARRAY['PaymentReceived', 'CartCheckedOut']);
SELECT consumer, event_types, stream_types, position = :start AS at_start, owner
  FROM es.subscriptions ORDER BY consumer;

-- Poll: the next events after the checkpoint, in global order.
SELECT stream_id, version, event_type FROM es.poll('cart-projector', 4);
-- polling does not move the checkpoint: the same events again
SELECT stream_id, version, event_type FROM es.poll('cart-projector', 4);
-- acknowledge the last one processed
SELECT max(global_position) AS last FROM es.poll('cart-projector', 4) \gset
SELECT es.ack('cart-projector', :last);
SELECT position = :last AS checkpoint_moved FROM es.subscriptions WHERE consumer = 'cart-projector';
SELECT stream_id, version, event_type FROM es.poll('cart-projector', 4);
-- acking an earlier position changes nothing
SELECT es.ack('cart-projector', :start);
SELECT position = :last AS checkpoint_kept FROM es.subscriptions WHERE consumer = 'cart-projector';
-- the filtered consumer
SELECT stream_id, version, event_type FROM es.poll('mailer');

-- A consumer loop: poll a page, process it, ack its last position, until empty.
DO $$
DECLARE
    last_pos bigint;
    n bigint;
    pages int := 0;
    seen bigint := 0;
BEGIN
    LOOP
        SELECT count(*), max(global_position) INTO n, last_pos FROM es.poll('cart-projector', 5);
        EXIT WHEN n = 0;
        pages := pages + 1;
        seen := seen + n;
        PERFORM es.ack('cart-projector', last_pos);
    END LOOP;
    RAISE NOTICE 'pages: %, events: %', pages, seen;
END
$$;
SELECT count(*) AS left_to_poll FROM es.poll('cart-projector');

-- Events are handed out once their transaction has committed, never before,
-- not even to that transaction: a consumer never skips one that commits late.
BEGIN;
SELECT es.append_event('cart-4', 'CartCheckedOut', '{}');
SELECT count(*) AS polled_before_commit FROM es.poll('mailer') WHERE stream_id = 'cart-4';
COMMIT;
:wait_for_horizon
SELECT stream_id, version, event_type FROM es.poll('mailer');

-- es.subscription_status: checkpoint and lag (events es.poll can hand out now).
SELECT consumer, lag FROM es.subscription_status ORDER BY consumer;

-- ---------------------------------------------------------------------
-- Consumer groups: member m of a group of n gets the streams whose id hashes
-- to m, so every stream belongs to one member and keeps its order there.
SELECT es.subscribe('search-indexer', stream_types => ARRAY['cart'], from_position => :start);
SELECT count(*) AS cart_events FROM es.poll('search-indexer', 1000);

-- Two members: which streams each gets.
SELECT m AS member, string_agg(DISTINCT p.stream_id, ' ' ORDER BY p.stream_id) AS streams, count(*) AS events
  FROM generate_series(0, 1) m, es.poll('search-indexer', 1000, m, 2) p
 GROUP BY m ORDER BY m;
-- Three members.
SELECT m AS member, string_agg(DISTINCT p.stream_id, ' ' ORDER BY p.stream_id) AS streams, count(*) AS events
  FROM generate_series(0, 2) m, es.poll('search-indexer', 1000, m, 3) p
 GROUP BY m ORDER BY m;
-- Together the members get every event exactly once, each stream in one member.
SELECT n AS size,
       count(*) AS events,
       count(DISTINCT p.global_position) AS distinct_events,
       count(*) = (SELECT count(*) FROM es.poll('search-indexer', 1000)) AS covers_all
  FROM generate_series(1, 3) n, generate_series(0, n - 1) m, es.poll('search-indexer', 1000, m, n) p
 GROUP BY n ORDER BY n;
SELECT count(*) AS streams_in_two_members
  FROM (SELECT p.stream_id FROM generate_series(0, 2) m, es.poll('search-indexer', 1000, m, 3) p
         GROUP BY p.stream_id HAVING count(DISTINCT m) > 1) x;

-- Member 0 of 2 processes two events and acks; member 1 has not acked yet,
-- so the subscription's own checkpoint stays where it was.
SELECT max(global_position) AS m0 FROM es.poll('search-indexer', 2, 0, 2) \gset
SELECT es.ack('search-indexer', :m0, 0, 2);
SELECT count(*) AS member_0_left FROM es.poll('search-indexer', 1000, 0, 2);
SELECT position = :start AS subscription_unchanged FROM es.subscriptions WHERE consumer = 'search-indexer';
-- Member 1 processes everything it has and acks.
SELECT max(global_position) AS m1 FROM es.poll('search-indexer', 1000, 1, 2) \gset
SELECT es.ack('search-indexer', :m1, 1, 2);
SELECT count(*) AS member_1_left FROM es.poll('search-indexer', 1000, 1, 2);
SELECT group_size, member, position = :m0 AS at_m0, position = :m1 AS at_m1
  FROM es.subscription_members WHERE consumer = 'search-indexer' ORDER BY group_size, member;
-- Both members have a checkpoint: the subscription's is the lower of them.
SELECT position = least(:m0, :m1) AS low_water_mark FROM es.subscriptions WHERE consumer = 'search-indexer';
-- Regrouping to three members starts from that mark: nothing is lost (events
-- after it that a member had processed come again: at-least-once).
SELECT count(*) = (SELECT count(*) FROM es.poll('search-indexer', 1000)) AS three_members_resume_at_mark,
       count(*) > 0 AS some_left
  FROM generate_series(0, 2) m, es.poll('search-indexer', 1000, m, 3) p;

-- ---------------------------------------------------------------------
-- Bad input: a SQLSTATE and a message, nothing written.
CREATE TEMP TABLE before AS SELECT consumer, position FROM es.subscriptions;
SELECT es.poll('nobody');
\echo :LAST_ERROR_SQLSTATE
SELECT es.ack('nobody', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT es.unsubscribe('nobody');
\echo :LAST_ERROR_SQLSTATE
SELECT es.subscribe(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT es.subscribe('');
\echo :LAST_ERROR_SQLSTATE
SELECT es.subscribe(repeat('x', 201));
\echo :LAST_ERROR_SQLSTATE
SELECT es.subscribe('bad', from_position => -1);
\echo :LAST_ERROR_SQLSTATE
SELECT es.subscribe('bad', ARRAY[]::text[]);
\echo :LAST_ERROR_SQLSTATE
SELECT es.subscribe('bad', ARRAY['A', NULL]);
\echo :LAST_ERROR_SQLSTATE
SELECT es.subscribe('bad', stream_types => ARRAY['']);
\echo :LAST_ERROR_SQLSTATE
-- the same consumer with other filters
SELECT es.subscribe('mailer', ARRAY['CartCheckedOut']);
\echo :LAST_ERROR_SQLSTATE
SELECT es.poll('mailer', 0);
\echo :LAST_ERROR_SQLSTATE
SELECT es.poll('mailer', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT es.ack('mailer', -5);
\echo :LAST_ERROR_SQLSTATE
-- a position no reader can have been handed yet (the message names positions,
-- which differ from run to run: only the SQLSTATE is shown)
\set VERBOSITY sqlstate
SELECT es.ack('mailer', es.read_horizon() + (1::bigint << 40));
\set VERBOSITY default
SELECT es.poll('search-indexer', 10, 2, 2);
\echo :LAST_ERROR_SQLSTATE
SELECT es.poll('search-indexer', 10, 0, 0);
\echo :LAST_ERROR_SQLSTATE
SELECT es.ack('search-indexer', :m0, -1, 2);
\echo :LAST_ERROR_SQLSTATE
SELECT es.ack('search-indexer', :m0, NULL, 2);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS changed
  FROM (SELECT consumer, position FROM es.subscriptions
        EXCEPT SELECT consumer, position FROM before) x;
SELECT count(*) AS subscriptions FROM es.subscriptions;

-- ---------------------------------------------------------------------
-- Roles: each sees and uses only the subscriptions of roles it acts for.
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_es_alice;
DROP ROLE IF EXISTS regress_es_bob;
RESET client_min_messages;
CREATE ROLE regress_es_alice;
CREATE ROLE regress_es_bob;
-- what a role needs: the schema, and reading events (as for es.read_all)
GRANT USAGE ON SCHEMA es TO regress_es_alice, regress_es_bob;
GRANT SELECT ON es.events, es.position_base TO regress_es_alice, regress_es_bob;
SET ROLE regress_es_alice;
SELECT es.subscribe('alice-audit', ARRAY['PaymentReceived'], from_position => :start);
SELECT stream_id, version, event_type FROM es.poll('alice-audit');
SELECT consumer, owner FROM es.subscriptions;
RESET ROLE;
SET ROLE regress_es_bob;
SELECT count(*) AS visible_to_bob FROM es.subscriptions;
SELECT es.poll('alice-audit');
\echo :LAST_ERROR_SQLSTATE
SELECT es.subscribe('alice-audit');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT consumer, owner FROM es.subscriptions WHERE consumer LIKE 'alice%';
SELECT es.unsubscribe('alice-audit');
DROP OWNED BY regress_es_alice, regress_es_bob;
DROP ROLE regress_es_alice;
DROP ROLE regress_es_bob;

-- ---------------------------------------------------------------------
-- Unsubscribe: the subscription and its member checkpoints go.
SELECT es.unsubscribe('search-indexer');
SELECT count(*) AS members_left FROM es.subscription_members WHERE consumer = 'search-indexer';
SELECT es.poll('search-indexer');
\echo :LAST_ERROR_SQLSTATE
-- subscribing again starts afresh
SELECT es.subscribe('search-indexer', ARRAY['CartCheckedOut'], from_position => :start);
SELECT stream_id, version, event_type FROM es.poll('search-indexer');
SELECT consumer FROM es.subscriptions ORDER BY consumer;
