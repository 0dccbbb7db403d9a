-- Checks after ALTER EXTENSION pg_eventsource UPDATE (scripts/test_upgrade.sh,
-- run with -v version=<the new version>): the backfill, es.verify(), appends
-- on the upgraded streams, what 0.2.0 added (projections: inline, async,
-- materialized; subscriptions and consumer groups, es.stats(), the privilege
-- helpers) and what 0.3.0 adds: schema evolution over the upgraded events
-- (es.events.schema_version, es.event_types, an upcaster, a schema). Prints one
-- "ok - ..." or "FAILED - ..." line per check.
\set ON_ERROR_STOP 1
\pset tuples_only on
\pset format unaligned
SET client_min_messages = warning;
SET search_path = public, pg_catalog;

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

SELECT pg_temp.check('extension is at ' || :'version', extversion = :'version', extversion)
  FROM pg_extension WHERE extname = 'pg_eventsource';

SELECT pg_temp.check('es.verify() finds nothing after the upgrade', NOT EXISTS (SELECT FROM es.verify()),
    (SELECT string_agg(format('%s %s: %s', check_name, object, detail), '; ') FROM es.verify()));

SELECT pg_temp.check('es.streams.last_position is each stream''s largest global_position',
    NOT EXISTS (SELECT FROM es.streams s
                 WHERE s.last_position IS DISTINCT FROM
                       (SELECT max(e.global_position) FROM es.events e WHERE e.stream_id = s.stream_id)),
    (SELECT string_agg(s.stream_id || ' ' || s.last_position, ', ') FROM es.streams s
      WHERE s.last_position IS DISTINCT FROM
            (SELECT max(e.global_position) FROM es.events e WHERE e.stream_id = s.stream_id)));

-- ---------------------------------------------------------------------
-- Appends on upgraded streams.
CREATE TEMP TABLE before_append AS
SELECT s.stream_id, s.version, s.last_position, l.state
  FROM es.streams s, es.load(s.stream_id) l WHERE s.stream_id = 'account-1';

SELECT pg_temp.check('append_event at the expected version of an upgraded stream',
    es.append_event('account-1', 'MoneyDeposited', '{"amount": 5}',
                    (SELECT version FROM before_append), '{"after": "upgrade"}')
    = (SELECT version + 1 FROM before_append));
SELECT pg_temp.check('the append moved last_position to its event, past the old one',
    s.last_position = (SELECT max(global_position) FROM es.events WHERE stream_id = 'account-1')
    AND s.last_position > b.last_position, format('%s -> %s', b.last_position, s.last_position))
  FROM es.streams s, before_append b WHERE s.stream_id = 'account-1';
SELECT pg_temp.check('es.load folds the new event onto the upgraded state',
    l.state->'balance' = to_jsonb((b.state->>'balance')::numeric + 5)
    AND l.version = b.version + 1, format('%s -> %s', b.state, l.state))
  FROM es.load('account-1') l, before_append b;
SELECT es.stream_version('account-2') AS v2 \gset
SELECT pg_temp.check('append_events to an upgraded stream at its version',
    es.append_events('account-2', '[{"type": "MoneyDeposited", "data": {"amount": 1}},
                                    {"type": "MoneyDeposited", "data": {"amount": 2}, "id": "01900000-0000-7000-8000-0000000000a1"}]',
                     :v2) = :v2 + 2);
SELECT pg_temp.check('append_events to a new stream',
    es.append_events('account-100', '[{"type": "AccountOpened", "data": {"owner": "new", "initialBalance": 1}},
                                      {"type": "MoneyDeposited", "data": {"amount": 2}}]', 0) = 2);
SELECT pg_temp.check('a stale expected version still fails with 40001, writing nothing',
    pg_temp.sqlstate_of($$SELECT es.append_event('account-2', 'MoneyDeposited', '{"amount": 1}', 1)$$) = '40001'
    AND es.stream_version('account-2') = :v2 + 2);
SELECT pg_temp.check('a snapshot of the current revision was taken by the new appends',
    EXISTS (SELECT FROM es.snapshots sn JOIN es.aggregates a USING (stream_type)
             WHERE sn.stream_id IN ('account-1', 'account-2') AND sn.revision = a.revision
               AND sn.created_at >= (SELECT max(recorded_at) FROM es.events WHERE metadata ? 'after')));

-- ---------------------------------------------------------------------
-- Projections.
CREATE TABLE public.deposits (stream_id text PRIMARY KEY, total numeric NOT NULL);
CREATE FUNCTION public.on_deposit(e es.events) RETURNS void LANGUAGE sql AS $$
    INSERT INTO public.deposits VALUES (e.stream_id, (e.data->>'amount')::numeric)
    ON CONFLICT (stream_id) DO UPDATE SET total = deposits.total + EXCLUDED.total
$$;
CREATE FUNCTION public.reset_deposits() RETURNS void LANGUAGE sql AS $$ DELETE FROM public.deposits $$;
CREATE VIEW pg_temp.deposits_expected AS
SELECT stream_id, sum((data->>'amount')::numeric) AS total
  FROM es.events WHERE event_type = 'MoneyDeposited' GROUP BY stream_id;

SELECT es.create_projection('deposits', 'public.on_deposit(es.events)', 'inline',
                            event_types => ARRAY['MoneyDeposited'], reset => 'public.reset_deposits()') \g /dev/null
SELECT pg_temp.check('an inline projection created after the upgrade gets the old events',
    NOT EXISTS (SELECT * FROM public.deposits EXCEPT SELECT * FROM pg_temp.deposits_expected)
    AND NOT EXISTS (SELECT * FROM pg_temp.deposits_expected EXCEPT SELECT * FROM public.deposits));
SELECT es.append_event('account-3', 'MoneyDeposited', '{"amount": 4.25}') \g /dev/null
SELECT pg_temp.check('an inline projection handles a new append',
    NOT EXISTS (SELECT * FROM public.deposits EXCEPT SELECT * FROM pg_temp.deposits_expected)
    AND NOT EXISTS (SELECT * FROM pg_temp.deposits_expected EXCEPT SELECT * FROM public.deposits));
UPDATE public.deposits SET total = 0;
SELECT es.rebuild_projection('deposits') AS replayed \gset
SELECT pg_temp.check('es.rebuild_projection replays every matching event',
    :replayed = (SELECT count(*) FROM es.events WHERE event_type = 'MoneyDeposited')
    AND NOT EXISTS (SELECT * FROM public.deposits EXCEPT SELECT * FROM pg_temp.deposits_expected)
    AND NOT EXISTS (SELECT * FROM pg_temp.deposits_expected EXCEPT SELECT * FROM public.deposits),
    format('replayed %s', :replayed));

SELECT es.materialize_aggregate('account', 'public.account_states') \g /dev/null
SELECT pg_temp.check('es.materialize_aggregate: the table equals es.load of every account',
    NOT EXISTS (SELECT m.stream_id, m.version, m.state FROM public.account_states m
                EXCEPT SELECT l.stream_id, l.version, l.state FROM es.streams s, es.load(s.stream_id) l
                        WHERE s.stream_type = 'account')
    AND (SELECT count(*) FROM public.account_states) = (SELECT count(*) FROM es.streams WHERE stream_type = 'account'));
SELECT es.append_event('account-4', 'MoneyWithdrawn', '{"amount": 2}') \g /dev/null
SELECT pg_temp.check('the materialized table follows a new append',
    (SELECT m.state = l.state AND m.version = l.version FROM public.account_states m, es.load('account-4') l
      WHERE m.stream_id = 'account-4'));

-- An async projection, for the background worker to catch up (the script waits for it).
CREATE TABLE public.type_counts (event_type text PRIMARY KEY, n bigint NOT NULL);
CREATE FUNCTION public.count_type(e es.events) RETURNS void LANGUAGE sql AS $$
    INSERT INTO public.type_counts VALUES (e.event_type, 1)
    ON CONFLICT (event_type) DO UPDATE SET n = type_counts.n + 1
$$;
SELECT es.create_projection('type_counts', 'public.count_type(es.events)', 'async') \g /dev/null
SELECT pg_temp.check('es.projections lists the three projections',
    (SELECT array_agg(mode || ':' || kind ORDER BY mode, kind) FROM es.projections)
    = ARRAY['async:handler', 'inline:handler', 'inline:materializer'],
    (SELECT array_agg(name || ':' || mode || ':' || kind ORDER BY name) FROM es.projections)::text);

-- ---------------------------------------------------------------------
-- Subscriptions: the old events in global order, checkpoints, a group.
SELECT es.subscribe('upgrade-svc') \g /dev/null
SELECT es.subscribe('upgrade-accounts', stream_types => ARRAY['account']) \g /dev/null
SELECT pg_temp.check('es.poll from 0 hands out the events es.read_all does, in order',
    ARRAY(SELECT global_position FROM es.poll('upgrade-svc', 100000))
    = ARRAY(SELECT global_position FROM es.read_all(0, 100000))
    AND cardinality(ARRAY(SELECT global_position FROM es.poll('upgrade-svc', 100000))) > 150);
SELECT es.ack('upgrade-svc', (SELECT global_position FROM es.events ORDER BY global_position OFFSET 9 LIMIT 1)) \g /dev/null
SELECT pg_temp.check('es.ack moves the checkpoint; es.poll continues after it',
    ARRAY(SELECT global_position FROM es.poll('upgrade-svc', 5))
    = ARRAY(SELECT global_position FROM es.read_all(0, 15) OFFSET 10));
SELECT pg_temp.check('a consumer group of 2 splits the account streams between its members',
    ARRAY(SELECT global_position FROM (SELECT global_position FROM es.poll('upgrade-accounts', 100000, 0, 2)
                                       UNION ALL
                                       SELECT global_position FROM es.poll('upgrade-accounts', 100000, 1, 2)) g
           ORDER BY 1)
    = ARRAY(SELECT global_position FROM es.read_all(0, 100000, stream_types => ARRAY['account'])));
SELECT pg_temp.check('es.subscription_status shows both consumers',
    (SELECT count(*) FROM es.subscription_status WHERE consumer LIKE 'upgrade-%') = 2);

-- ---------------------------------------------------------------------
-- es.stats(), es.horizon().
SELECT pg_temp.check('es.stats() counts what the tables hold',
    (s->>'total_events')::bigint = (SELECT count(*) FROM es.events)
    AND (s->>'total_streams')::bigint = (SELECT count(*) FROM es.streams)
    AND (s->>'total_snapshots')::bigint = (SELECT count(*) FROM es.snapshots)
    AND jsonb_array_length(s->'aggregates') = 2 AND jsonb_array_length(s->'projections') = 3
    AND (s->>'last_position')::bigint = (SELECT max(global_position) FROM es.events), s::text)
  FROM es.stats() s;
SELECT pg_temp.check('es.horizon() answers', horizon_position IS NOT NULL) FROM es.horizon();

-- ---------------------------------------------------------------------
-- Privileges: a reader reads and cannot append; a writer appends.
DROP ROLE IF EXISTS es_upgrade_reader;
DROP ROLE IF EXISTS es_upgrade_writer;
CREATE ROLE es_upgrade_reader;
CREATE ROLE es_upgrade_writer;
SELECT es.grant_reader('es_upgrade_reader') \g /dev/null
SELECT es.grant_writer('es_upgrade_writer') \g /dev/null
SET ROLE es_upgrade_reader;
SELECT pg_temp.check('a reader reads the upgraded store',
    (SELECT count(*) FROM es.read_stream('account-1')) = es.stream_version('account-1'));
SELECT pg_temp.check('a reader cannot append (42501)',
    pg_temp.sqlstate_of($$SELECT es.append_event('account-1', 'MoneyDeposited', '{"amount": 1}')$$) = '42501');
RESET ROLE;
SELECT es.stream_version('account-5') AS v5 \gset
SET ROLE es_upgrade_writer;
SELECT pg_temp.check('a writer appends to an upgraded stream',
    es.append_event('account-5', 'MoneyDeposited', '{"amount": 9}', :v5) = :v5 + 1);
RESET ROLE;
SELECT es.revoke_reader('es_upgrade_reader') \g /dev/null
SELECT es.revoke_reader('es_upgrade_writer') \g /dev/null
DROP ROLE es_upgrade_reader;
DROP ROLE es_upgrade_writer;

-- A fold function's definition converted by the upgrade is what
-- es.define_aggregate stores for the same function now.
SELECT fold::text AS converted_fold FROM es.aggregates WHERE stream_type = 'cart' \gset
SELECT es.define_aggregate('cart', fold => 'public.cart_fold(jsonb, es.events)',
                           initial_state => '{"items": []}', snapshot_every => 2) \g /dev/null
SELECT pg_temp.check('the upgraded fold definition equals what es.define_aggregate writes now',
    fold::text = :'converted_fold', format('upgraded %s, redefined %s', :'converted_fold', fold))
  FROM es.aggregates WHERE stream_type = 'cart';
SELECT pg_temp.check('es.load of a fold-function stream after the redefinition',
    (SELECT state FROM es.load('cart-1')) = '{"items": ["kiwi"]}');


-- ---------------------------------------------------------------------
-- 0.3.0: schema evolution over the upgraded events.
SELECT pg_temp.check('every upgraded event is at schema version 1',
    NOT EXISTS (SELECT FROM es.events WHERE schema_version <> 1));
SELECT pg_temp.check('es.event_types lists every stored type at version 1 with its count',
    NOT EXISTS (SELECT event_type, count(*) FROM es.events GROUP BY 1
                EXCEPT SELECT event_type, events FROM es.event_types WHERE current_version = 1));
SELECT revision AS rev_before FROM es.aggregates WHERE stream_type = 'account' \gset
SELECT pg_temp.check('es.define_upcaster on an upgraded type returns version 2',
    es.define_upcaster('MoneyDeposited', 1, steps => '[{"set": "currency", "value": "EUR"}]') = 2);
SELECT pg_temp.check('the upcaster retired the account snapshots (a new revision)',
    (SELECT revision FROM es.aggregates WHERE stream_type = 'account') = :rev_before + 1);
SELECT pg_temp.check('es.read_stream hands out the old deposits upcast; raw => true as stored',
    (SELECT bool_and(data->>'currency' = 'EUR' AND schema_version = 2) FROM es.read_stream('account-1')
      WHERE event_type = 'MoneyDeposited')
    AND (SELECT bool_and(NOT data ? 'currency' AND schema_version = 1) FROM es.read_stream('account-1', raw => true)
      WHERE event_type = 'MoneyDeposited'));
SELECT pg_temp.check('es.load still equals es.fold of the upcast events',
    (SELECT state FROM es.load('account-1'))
    = (SELECT es.fold(e ORDER BY e.version) FROM es.events e WHERE e.stream_id = 'account-1'));
SELECT es.define_event_schema('MoneyDeposited', '{"type": "object", "required": ["amount", "currency"],
    "properties": {"amount": {"type": "number", "exclusiveMinimum": 0}, "currency": {"type": "string"}}}') \g /dev/null
SELECT pg_temp.check('the schema refuses an old-shape deposit (23514)',
    pg_temp.sqlstate_of($$SELECT es.append_event('account-1', 'MoneyDeposited', '{"amount": 1}')$$) = '23514');
SELECT es.append_event('account-1', 'MoneyDeposited', '{"amount": 1, "currency": "USD"}') \g /dev/null
SELECT pg_temp.check('a new-shape deposit is stored at version 2',
    (SELECT schema_version FROM es.events WHERE stream_id = 'account-1' ORDER BY version DESC LIMIT 1) = 2);

SELECT pg_temp.check('es.verify() finds nothing after the new appends and projections',
    NOT EXISTS (SELECT FROM es.verify()),
    (SELECT string_agg(format('%s %s: %s', check_name, object, detail), '; ') FROM es.verify()));

