--
-- aggregates: es.define_aggregate (native reducers or a fold function),
-- es.load / es.load_at, the es.fold aggregate, snapshots, redefinition, and
-- every bad definition or call with its SQLSTATE.
--
\set SHOW_CONTEXT never
\set VERBOSITY default
-- Stream types of this file only: bankacct, member, visits, basket, fragile,
-- badfold, nodef, wrong.
\set snapshots 'SELECT stream_id, version, revision, state FROM es.snapshots WHERE stream_id IN (''bankacct-1'', ''bankacct-2'') ORDER BY revision, stream_id, version'

-- ---------------------------------------------------------------------
-- The bank account, with native reducers and a snapshot every 3 events.
SELECT es.define_aggregate('bankacct', reducers => '{
  "AccountOpened":  [{"set": "owner", "from": "$.owner"}, {"set": "balance", "from": "$.initialBalance"},
                     {"set": "isActive", "value": true}],
  "MoneyDeposited": [{"add": "balance", "from": "$.amount"}, {"inc": "transactionCount"}],
  "MoneyWithdrawn": [{"sub": "balance", "from": "$.amount"}, {"inc": "transactionCount"}],
  "AccountClosed":  [{"set": "isActive", "value": false}]
}', snapshot_every => 3);
SELECT stream_type, fold, reducers IS NOT NULL AS has_reducers, initial_state, snapshot_every, revision
  FROM es.aggregates WHERE stream_type = 'bankacct';

-- A stream with no events yet: version 0 and the initial state.
SELECT * FROM es.load('bankacct-1');

SELECT es.append_event('bankacct-1', 'AccountOpened', '{"owner": "Ada", "initialBalance": 100}', 0);
SELECT es.append_event('bankacct-1', 'MoneyDeposited', '{"amount": 25.50}', 1,
                       metadata => '{"correlation_id": "c-1"}');
SELECT es.append_events('bankacct-1', '[{"type": "MoneyWithdrawn", "data": {"amount": 10}},
                                        {"type": "MoneyDeposited", "data": {"amount": 0.25}}]', 2);
SELECT * FROM es.load('bankacct-1');
-- At earlier versions; a version above the current one gives the current state.
SELECT v AS at_version, l.version, l.state
  FROM generate_series(0, 6) v, es.load('bankacct-1', v) l ORDER BY v;
SELECT state FROM es.load('bankacct-1', at_version => 2);
SELECT version, state FROM es.load('bankacct-1', NULL);
-- The batch that went from version 2 to 4 took the snapshot at version 3.
:snapshots;

-- A batch crossing several multiples of 3 gets a snapshot at each (6 and 9).
SELECT es.append_events('bankacct-1', '[
    {"type": "MoneyDeposited", "data": {"amount": 1}},
    {"type": "MoneyDeposited", "data": {"amount": 2}},
    {"type": "MoneyWithdrawn", "data": {"amount": 3.5}},
    {"type": "MoneyDeposited", "data": {"amount": 4}},
    {"type": "MoneyDeposited", "data": {"amount": 5}},
    {"type": "MoneyWithdrawn", "data": {"amount": 6}}
]', 4);
:snapshots;
SELECT version, state FROM es.load('bankacct-1');
-- Each snapshot holds exactly the state at its version.
SELECT s.version, s.state = l.state AS snapshot_matches_load
  FROM es.snapshots s, es.load(s.stream_id, s.version) l
 WHERE s.stream_id = 'bankacct-1' ORDER BY s.version;

-- es.load starts from the newest snapshot at or below the wanted version:
-- a doctored snapshot at version 6 shows up in versions 6 to 8, not below,
-- and not from 9 on (the snapshot at 9 is newer).
BEGIN;
UPDATE es.snapshots SET state = state || '{"doctored": true}'
 WHERE stream_id = 'bankacct-1' AND version = 6;
SELECT v AS at_version, l.version, l.state ? 'doctored' AS from_doctored_snapshot
  FROM generate_series(4, 10) v, es.load('bankacct-1', v) l ORDER BY v;
ROLLBACK;

-- A missing "from" field skips its step: no amount, balance unchanged, but
-- the step without "from" (inc) still runs.
SELECT es.append_event('bankacct-1', 'MoneyDeposited', '{"note": "amount forgotten"}');
SELECT version, state FROM es.load('bankacct-1');
-- An event type with no reducers leaves the state as it is.
SELECT es.append_event('bankacct-1', 'StatementPrinted', '{}');
SELECT version, state FROM es.load('bankacct-1');

-- A second and a third account; closing one.
SELECT es.append_events('bankacct-2', '[
    {"type": "AccountOpened",  "data": {"owner": "Bob", "initialBalance": 0}},
    {"type": "MoneyDeposited", "data": {"amount": 40}},
    {"type": "MoneyWithdrawn", "data": {"amount": 40}},
    {"type": "AccountClosed",  "data": {}}
]', 0);
SELECT * FROM es.load('bankacct-2');

-- ---------------------------------------------------------------------
-- Exact decimals: 0.1 + 0.2 is 0.3, not 0.30000000000000004.
SELECT es.append_events('bankacct-3', '[
    {"type": "AccountOpened",  "data": {"owner": "Cy", "initialBalance": 0}},
    {"type": "MoneyDeposited", "data": {"amount": 0.1}},
    {"type": "MoneyDeposited", "data": {"amount": 0.2}}
]', 0);
SELECT state->'balance' AS balance, state->'balance' = '0.3' AS exactly_0_3,
       0.1::float8 + 0.2::float8 AS as_float8
  FROM es.load('bankacct-3');
-- the snapshot at version 3 holds the exact value too
SELECT version, state->'balance' AS balance FROM es.snapshots WHERE stream_id = 'bankacct-3';
-- a thousand deposits of 0.01, then a withdrawal taking it below zero
SELECT es.append_events('bankacct-3',
       (SELECT jsonb_agg(jsonb_build_object('type', 'MoneyDeposited', 'data', jsonb_build_object('amount', 0.01)))
          FROM generate_series(1, 1000)), 3);
SELECT version, state->'balance' AS balance FROM es.load('bankacct-3');
SELECT es.append_event('bankacct-3', 'MoneyWithdrawn', '{"amount": 20.3}');
SELECT version, state->'balance' AS balance FROM es.load('bankacct-3');
-- numbers beyond 38 digits and tiny fractions stay exact (PostgreSQL numeric)
SELECT es.append_events('bankacct-3', '[
    {"type": "MoneyDeposited", "data": {"amount": 123456789012345678901234567890123456789012345678901}},
    {"type": "MoneyDeposited", "data": {"amount": 0.000000000000000000000000000000000000000000000001}},
    {"type": "MoneyWithdrawn", "data": {"amount": 123456789012345678901234567890123456789012345678901}},
    {"type": "MoneyDeposited", "data": {"amount": 1e3}}
]');
SELECT v AS at_version, l.state->'balance' AS balance
  FROM generate_series(1005, 1008) v, es.load('bankacct-3', v) l ORDER BY v;
SELECT (state->>'balance')::numeric = 990.000000000000000000000000000000000000000000000001 AS exact
  FROM es.load('bankacct-3');

-- ---------------------------------------------------------------------
-- es.fold: every account's state in one query, the same as es.load's.
SELECT stream_id, es.fold(e ORDER BY version) AS state
  FROM es.events e WHERE stream_type = 'bankacct' AND stream_id <> 'bankacct-3'
 GROUP BY stream_id ORDER BY stream_id;
SELECT count(*) AS accounts, count(*) FILTER (WHERE f.state = l.state) AS same_as_load
  FROM (SELECT stream_id, es.fold(e ORDER BY version) AS state
          FROM es.events e WHERE stream_type = 'bankacct' GROUP BY stream_id) f,
       es.load(f.stream_id) l;
-- any prefix of a stream folds to the state at that version
SELECT es.fold(e ORDER BY version) AS state
  FROM es.events e WHERE stream_id = 'bankacct-1' AND version <= 2;
SELECT es.fold(e ORDER BY version) = (SELECT state FROM es.load('bankacct-1', 7)) AS same_as_load_at_7
  FROM es.events e WHERE stream_id = 'bankacct-1' AND version <= 7;
-- no events: NULL
SELECT es.fold(e ORDER BY version) IS NULL AS no_events_is_null
  FROM es.events e WHERE stream_id = 'bankacct-999';
-- the column form: no row per event; without ORDER BY, each stream's events
-- in whatever order the table gives them
SELECT stream_id, es.fold(stream_id, stream_type, version, event_type, data, metadata, schema_version) AS state
  FROM es.events WHERE stream_type = 'bankacct' AND stream_id <> 'bankacct-3'
 GROUP BY stream_id ORDER BY stream_id;
-- backwards too: the fold puts them in version order
SELECT es.fold(stream_id, stream_type, version, event_type, data, metadata, schema_version)
       = (SELECT state FROM es.load('bankacct-1')) AS backwards_same_as_load
  FROM (SELECT * FROM es.events WHERE stream_id = 'bankacct-1' ORDER BY version DESC) e;
-- an ORDER BY is the order folded in: backwards is refused, not folded wrongly
SELECT es.fold(stream_id, stream_type, version, event_type, data, metadata, schema_version ORDER BY version DESC)
  FROM es.events WHERE stream_id = 'bankacct-1';
-- several streams in one fold: only in an order given
SELECT es.fold(stream_id, stream_type, version, event_type, data, metadata, schema_version)
  FROM es.events WHERE stream_id IN ('bankacct-1', 'bankacct-2');

-- ---------------------------------------------------------------------
-- es.load_at: the events recorded at or before a time. Each append above
-- ran in its own transaction, so each has its own recorded_at.
SELECT version, state FROM es.load_at('bankacct-1', now());
SELECT version, state FROM es.load_at('bankacct-1', now() - interval '1 hour');
-- at the time of version 1 (its own transaction)
SELECT version, state FROM es.load_at('bankacct-1',
       (SELECT recorded_at FROM es.events WHERE stream_id = 'bankacct-1' AND version = 1));
-- at the time of version 3: the whole batch 3..4 has that time
SELECT version, state FROM es.load_at('bankacct-1',
       (SELECT recorded_at FROM es.events WHERE stream_id = 'bankacct-1' AND version = 3));
-- a stream with no events
SELECT * FROM es.load_at('bankacct-4', now());
-- inside a transaction: its own events, all with the transaction's time
BEGIN;
SELECT es.append_event('bankacct-4', 'AccountOpened', '{"owner": "Dee", "initialBalance": 5}');
SELECT es.append_event('bankacct-4', 'MoneyDeposited', '{"amount": 5}');
SELECT version, state FROM es.load_at('bankacct-4', now());
SELECT version, state FROM es.load_at('bankacct-4', now() - interval '1 hour');
COMMIT;
SELECT version, state FROM es.load_at('bankacct-4', now());

-- ---------------------------------------------------------------------
-- Redefinition: revision 2, a new state shape. The revision 1 snapshots are
-- never used again; loads fold from the events until revision 2 snapshots
-- exist.
SELECT es.define_aggregate('bankacct', reducers => '{
  "AccountOpened":  [{"set": "holder", "from": "$.owner"}, {"add": "balance", "from": "$.initialBalance"}],
  "MoneyDeposited": [{"add": "balance", "from": "$.amount"}],
  "MoneyWithdrawn": [{"sub": "balance", "from": "$.amount"}],
  "FeeCharged":     [{"sub": "balance", "value": 2.5}],
  "*":              [{"set": "lastEvent", "from": "$event_type"}, {"set": "lastVersion", "from": "$version"}]
}', initial_state => '{"currency": "EUR"}', snapshot_every => 3);
SELECT stream_type, initial_state, snapshot_every, revision FROM es.aggregates WHERE stream_type = 'bankacct';
SELECT version, state FROM es.load('bankacct-1');
SELECT v AS at_version, l.version, l.state
  FROM generate_series(2, 3) v, es.load('bankacct-1', v) l ORDER BY v;
-- still equal to a fold of the events with the new definition
SELECT count(*) AS accounts, count(*) FILTER (WHERE f.state = l.state) AS same_as_load
  FROM (SELECT stream_id, es.fold(e ORDER BY version) AS state
          FROM es.events e WHERE stream_type = 'bankacct' GROUP BY stream_id) f,
       es.load(f.stream_id) l;
-- Doctoring every revision 1 snapshot changes nothing: they are not used.
BEGIN;
UPDATE es.snapshots SET state = '{"doctored": true}' WHERE stream_type = 'bankacct' AND revision = 1;
SELECT count(*) AS loads, count(*) FILTER (WHERE l.state ? 'doctored') AS loads_from_old_snapshots
  FROM es.snapshots s, es.load(s.stream_id, s.version) l
 WHERE s.stream_id IN ('bankacct-1', 'bankacct-2');
SELECT version, state FROM es.load('bankacct-1');
ROLLBACK;
-- bankacct-1 is at version 12; a batch to 15 takes a revision 2 snapshot at 15.
SELECT es.append_events('bankacct-1', '[{"type": "FeeCharged", "data": {}},
                                        {"type": "MoneyDeposited", "data": {"amount": 10}},
                                        {"type": "FeeCharged", "data": {}}]', 12);
SELECT revision, stream_id, count(*) AS snapshots, min(version), max(version)
  FROM es.snapshots WHERE stream_type = 'bankacct' GROUP BY revision, stream_id ORDER BY revision, stream_id;
SELECT version, revision, state FROM es.snapshots WHERE stream_type = 'bankacct' AND revision = 2;
SELECT version, state FROM es.load('bankacct-1');
-- a redefinition that is rolled back changes nothing
BEGIN;
SELECT es.define_aggregate('bankacct', reducers => '{"*": [{"inc": "n"}]}');
SELECT version, state FROM es.load('bankacct-2');
ROLLBACK;
SELECT revision FROM es.aggregates WHERE stream_type = 'bankacct';
SELECT version, state FROM es.load('bankacct-2');

-- ---------------------------------------------------------------------
-- Every reducer step and source.
SELECT es.define_aggregate('member', reducers => '{
  "Joined":    [{"set": "name", "from": "$.name"},
                {"set": "address.city", "from": "$.address.city"},
                {"set": "joinedBy", "from": "$metadata.user"},
                {"set": "id", "from": "$stream_id"},
                {"set": "kind", "from": "$stream_type"}],
  "Tagged":    [{"append": "tags", "from": "$.tag"}, {"set": "lastEvent", "value": "overwritten by *"}],
  "Flagged":   [{"append": "tags", "value": {"flag": true}}, {"set": "flags.flagged", "value": true}],
  "Moved":     [{"merge": "address", "from": "$.address"}],
  "Scored":    [{"add": "score", "from": "$.points"}],
  "Penalised": [{"sub": "score", "value": 0.25}],
  "Unflagged": [{"unset": "flags.flagged"}, {"unset": "no.such.place"}],
  "Noted":     [{"set": "lastMetadata", "from": "$metadata"}, {"set": "lastData", "from": "$"}],
  "Stamped":   [{"set": "stamp.at", "from": "$recorded_at"}, {"set": "stamp.position", "from": "$global_position"},
                {"set": "stamp.id", "from": "$event_id"}],
  "Reset":     [{"merge": "", "value": {"address": null, "tags": [], "name": "anonymous"}}],
  "*":         [{"set": "lastEvent", "from": "$event_type"}, {"set": "version", "from": "$version"}, {"inc": "events"}]
}', snapshot_every => 0);
SELECT es.append_event('member-1', 'Joined', '{"name": "Ann", "address": {"city": "Oslo", "zip": "0150"}}',
                       metadata => '{"user": "admin"}');
SELECT state FROM es.load('member-1');
-- no address, no metadata user: those steps are skipped
SELECT es.append_event('member-2', 'Joined', '{"name": "Bo"}');
SELECT state FROM es.load('member-2');
-- append from the event (skipped when the event has no tag); "*" runs after
-- the type's own steps, so its lastEvent wins
SELECT es.append_event('member-1', 'Tagged', '{"tag": "vip"}');
SELECT es.append_event('member-1', 'Tagged', '{"no_tag": true}');
SELECT state->'tags' AS tags, state->'lastEvent' AS last_event, state->'events' AS events FROM es.load('member-1');
-- append a value; set creates the objects on its path
SELECT es.append_event('member-1', 'Flagged', '{}');
SELECT state->'tags' AS tags, state->'flags' AS flags FROM es.load('member-1');
-- merge patch: a null removes, other keys are added
SELECT es.append_event('member-1', 'Moved', '{"address": {"zip": null, "street": "Storgata 1"}}');
SELECT state->'address' AS address FROM es.load('member-1');
-- add to a missing place counts from 0; sub with a value
SELECT es.append_event('member-1', 'Scored', '{"points": 0.5}');
SELECT es.append_event('member-1', 'Scored', '{"points": 1.25}');
SELECT es.append_event('member-1', 'Penalised', '{}');
SELECT state->'score' AS score FROM es.load('member-1');
-- unset, also of a place that does not exist
SELECT es.append_event('member-1', 'Unflagged', '{}');
SELECT state->'flags' AS flags FROM es.load('member-1');
-- $metadata and $ (the whole data)
SELECT es.append_event('member-1', 'Noted', '{"text": "hello"}', metadata => '{"by": {"id": 7}}');
SELECT state->'lastMetadata' AS last_metadata, state->'lastData' AS last_data FROM es.load('member-1');
-- $recorded_at, $global_position, $event_id are the event's own values
SELECT es.append_event('member-1', 'Stamped', '{}');
SELECT l.state#>'{stamp,at}' = to_jsonb(e.recorded_at) AS recorded_at_matches,
       (l.state#>>'{stamp,position}')::bigint = e.global_position AS position_matches,
       (l.state#>>'{stamp,id}')::uuid = e.event_id AS event_id_matches
  FROM es.load('member-1') l JOIN es.events e ON e.stream_id = l.stream_id AND e.version = l.version;
-- merge into the whole state
SELECT es.append_event('member-1', 'Reset', '{}');
SELECT state - 'stamp' AS state FROM es.load('member-1');
-- snapshot_every 0: never a snapshot
SELECT count(*) AS member_snapshots FROM es.snapshots WHERE stream_type = 'member';

-- ---------------------------------------------------------------------
-- A fold function in SQL.
CREATE FUNCTION public.visits_fold(state jsonb, e es.events) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE e.event_type
             WHEN 'Visited' THEN state || jsonb_build_object('count', (state->>'count')::int + 1,
                                                             'lastPage', e.data->'page')
             WHEN 'Reset'   THEN state || '{"count": 0}'
             ELSE state END
$$;
SELECT es.define_aggregate('visits', fold => 'public.visits_fold(jsonb, es.events)',
                           initial_state => '{"count": 0}', snapshot_every => 2);
SELECT stream_type, fold, reducers, initial_state, snapshot_every, revision
  FROM es.aggregates WHERE stream_type = 'visits';
SELECT * FROM es.load('visits-1');
SELECT es.append_events('visits-1', '[
    {"type": "Visited", "data": {"page": "/"}},
    {"type": "Visited", "data": {"page": "/a"}},
    {"type": "Visited", "data": {"page": "/b"}},
    {"type": "Reset",   "data": {}},
    {"type": "Visited", "data": {"page": "/c"}}
]');
SELECT * FROM es.load('visits-1');
SELECT v AS at_version, l.version, l.state
  FROM generate_series(0, 5) v, es.load('visits-1', v) l ORDER BY v;
SELECT stream_id, version, revision, state FROM es.snapshots WHERE stream_type = 'visits' ORDER BY version;
SELECT stream_id, es.fold(e ORDER BY version) AS state
  FROM es.events e WHERE stream_type = 'visits' GROUP BY stream_id;

-- A fold function in PL/pgSQL, using data, version and metadata.
CREATE FUNCTION public.basket_fold(state jsonb, e es.events) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    sku text := e.data->>'sku';
BEGIN
    CASE e.event_type
        WHEN 'ItemAdded' THEN
            RETURN jsonb_set(state, ARRAY['items', sku],
                             to_jsonb(coalesce((state->'items'->>sku)::int, 0) + (e.data->>'qty')::int));
        WHEN 'ItemRemoved' THEN
            RETURN state #- ARRAY['items', sku];
        WHEN 'CheckedOut' THEN
            RETURN state || jsonb_build_object('checkedOutAt', e.version, 'by', e.metadata->'user');
        ELSE
            RETURN state;
    END CASE;
END
$$;
SELECT es.define_aggregate('basket', fold => 'public.basket_fold(jsonb, es.events)',
                           initial_state => '{"items": {}}', snapshot_every => 2);
SELECT es.append_event('basket-1', 'ItemAdded', '{"sku": "apple", "qty": 2}');
SELECT es.append_event('basket-1', 'ItemAdded', '{"sku": "pear", "qty": 1}');
SELECT es.append_event('basket-1', 'ItemAdded', '{"sku": "apple", "qty": 3}');
SELECT es.append_event('basket-1', 'ItemRemoved', '{"sku": "pear"}');
SELECT es.append_event('basket-1', 'CheckedOut', '{}', metadata => '{"user": "zoe"}');
SELECT * FROM es.load('basket-1');
SELECT v AS at_version, l.version, l.state
  FROM generate_series(0, 5) v, es.load('basket-1', v) l ORDER BY v;
SELECT stream_id, version, revision, state FROM es.snapshots WHERE stream_type = 'basket' ORDER BY version;
SELECT es.append_events('basket-2', '[{"type": "ItemAdded", "data": {"sku": "fig", "qty": 4}}]');
SELECT stream_id, es.fold(e ORDER BY version) AS state
  FROM es.events e WHERE stream_type = 'basket' GROUP BY stream_id ORDER BY stream_id;
SELECT version, state FROM es.load_at('basket-1', now());
SELECT version, state FROM es.load_at('basket-1', now() - interval '1 hour');

-- ---------------------------------------------------------------------
-- A fold that fails fails the append that needs a snapshot, and nothing is
-- written: no event, no stream, no snapshot.
CREATE FUNCTION public.fragile_fold(state jsonb, e es.events) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    IF e.event_type = 'Boom' THEN
        RAISE EXCEPTION 'cannot fold % at version %', e.event_type, e.version
            USING ERRCODE = 'check_violation';
    END IF;
    IF e.event_type = 'Nothing' THEN
        RETURN NULL;
    END IF;
    RETURN state || jsonb_build_object('n', coalesce((state->>'n')::int, 0) + 1);
END
$$;
SELECT es.define_aggregate('fragile', fold => 'public.fragile_fold(jsonb, es.events)', snapshot_every => 1);
SELECT es.append_event('fragile-1', 'Fine', '{}');
SELECT es.append_event('fragile-1', 'Boom', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.append_events('fragile-1', '[{"type": "Fine", "data": {}}, {"type": "Boom", "data": {}}]');
\echo :LAST_ERROR_SQLSTATE
SELECT es.append_event('fragile-2', 'Boom', '{}', 0);
\echo :LAST_ERROR_SQLSTATE
-- a fold that returns NULL: 22004
SELECT es.append_event('fragile-1', 'Nothing', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.stream_version('fragile-1') AS fragile_1, es.stream_version('fragile-2') AS fragile_2;
SELECT stream_id, version, event_type FROM es.events WHERE stream_type = 'fragile' ORDER BY stream_id, version;
SELECT stream_id, version FROM es.streams WHERE stream_type = 'fragile' ORDER BY stream_id;
SELECT stream_id, version, state FROM es.snapshots WHERE stream_type = 'fragile' ORDER BY stream_id, version;
SELECT version, state FROM es.load('fragile-1');
SELECT es.append_event('fragile-1', 'Fine', '{}');
SELECT stream_id, version, state FROM es.snapshots WHERE stream_type = 'fragile' ORDER BY stream_id, version;

-- Native reducers that fail at fold time (a non-number to add, a place that is
-- not an object or not an array): 22000, naming the stream, version and type.
SELECT es.define_aggregate('badfold', reducers => '{
  "Added":    [{"add": "total", "from": "$.amount"}],
  "Nested":   [{"set": "total.cents", "value": 1}],
  "Appended": [{"append": "total", "value": 1}]
}', snapshot_every => 1);
SELECT es.append_event('badfold-1', 'Added', '{"amount": 1.5}');
SELECT es.append_event('badfold-1', 'Added', '{"amount": "2"}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.append_event('badfold-1', 'Nested', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.append_event('badfold-1', 'Appended', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.stream_version('badfold-1');
SELECT version, state FROM es.snapshots WHERE stream_type = 'badfold';
-- the same failure from es.fold, which takes no snapshots
SELECT es.fold(x ORDER BY (x).version)
  FROM (SELECT e AS x FROM es.events e WHERE stream_id = 'badfold-1'
        UNION ALL
        SELECT ROW(e.global_position, e.stream_id, e.stream_type, 2, 'Added', '{"amount": true}',
                   e.metadata, e.event_id, e.recorded_at, e.schema_version)::es.events
          FROM es.events e WHERE stream_id = 'badfold-1') s;
\echo :LAST_ERROR_SQLSTATE

-- ---------------------------------------------------------------------
-- Bad definitions: each is refused and changes nothing.
CREATE TEMP TABLE aggregates_before AS SELECT * FROM es.aggregates;
-- neither or both of fold and reducers: 22023
SELECT es.define_aggregate('wrong');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('bankacct');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', fold => 'public.visits_fold(jsonb, es.events)', reducers => '{}');
\echo :LAST_ERROR_SQLSTATE
-- stream_type NULL: 22004; empty: 22023
SELECT es.define_aggregate(NULL, reducers => '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('', reducers => '{}');
\echo :LAST_ERROR_SQLSTATE
-- snapshot_every negative or NULL: 22023; initial_state NULL: 22004
SELECT es.define_aggregate('wrong', reducers => '{}', snapshot_every => -1);
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', reducers => '{}', snapshot_every => NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', reducers => '{}', initial_state => NULL);
\echo :LAST_ERROR_SQLSTATE
-- fold functions of the wrong signature: 42P13
CREATE FUNCTION public.fold_wrong_args(jsonb, jsonb) RETURNS jsonb LANGUAGE sql AS 'SELECT $1';
CREATE FUNCTION public.fold_wrong_result(jsonb, es.events) RETURNS text LANGUAGE sql AS 'SELECT $1::text';
CREATE FUNCTION public.fold_set(jsonb, es.events) RETURNS SETOF jsonb LANGUAGE sql AS 'SELECT $1';
CREATE FUNCTION public.fold_one_arg(jsonb) RETURNS jsonb LANGUAGE sql AS 'SELECT $1';
CREATE PROCEDURE public.fold_procedure(jsonb, es.events) LANGUAGE sql AS 'SELECT 1';
SELECT es.define_aggregate('wrong', fold => 'public.fold_wrong_args(jsonb, jsonb)');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', fold => 'public.fold_wrong_result(jsonb, es.events)');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', fold => 'public.fold_set(jsonb, es.events)');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', fold => 'public.fold_one_arg(jsonb)');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', fold => 'public.fold_procedure(jsonb, es.events)');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', fold => 'es.fold(es.events)');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('bankacct', fold => 'public.fold_wrong_args(jsonb, jsonb)');
\echo :LAST_ERROR_SQLSTATE
-- a function that does not exist: 42883 (from regprocedure)
SELECT es.define_aggregate('wrong', fold => 'public.no_such_fold(jsonb, es.events)');
\echo :LAST_ERROR_SQLSTATE
-- Bad reducers: 22023, the message names the place.
SELECT es.define_aggregate('wrong', reducers => 'null');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', reducers => '[{"set": "a", "value": 1}]');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', reducers => '{"": []}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', reducers => '{"MoneyDeposited": {"add": "balance", "from": "$.amount"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', reducers => '{"MoneyDeposited": ["add"]}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('bankacct', reducers => '{"MoneyDeposited": [{"ad": "balance", "from": "$.amount"}]}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', reducers => '{"A": [{"set": "a", "value": 1}], "B": [{"inc": "n"}, {}]}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', reducers => '{"A": [{"from": "$.x"}]}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', reducers => '{"A": [{"set": "a", "add": "b", "value": 1}]}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', reducers => '{"A": [{"set": 1, "value": 1}]}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', reducers => '{"A": [{"set": "", "value": 1}]}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', reducers => '{"A": [{"set": "a.", "value": 1}]}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', reducers => '{"A": [{"unset": "a..b"}]}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', reducers => '{"A": [{"set": "a", "from": "amount"}]}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', reducers => '{"A": [{"set": "a", "from": "$versions"}]}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', reducers => '{"A": [{"set": "a", "from": "$."}]}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', reducers => '{"A": [{"set": "a", "from": "$metadata."}]}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', reducers => '{"A": [{"set": "a", "from": 1}]}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', reducers => '{"A": [{"set": "a", "from": "$.x", "value": 1}]}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', reducers => '{"A": [{"set": "a"}]}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', reducers => '{"A": [{"add": "a"}]}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', reducers => '{"A": [{"inc": "a", "value": 2}]}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', reducers => '{"A": [{"unset": "a", "from": "$.x"}]}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', reducers => '{"A": [{"add": "a", "value": "1"}]}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', reducers => '{"A": [{"sub": "a", "value": null}]}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', reducers => '{"A": [{"merge": "a", "value": [1]}]}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_aggregate('wrong', reducers => '{"*": [{"append": "", "value": 1}]}');
\echo :LAST_ERROR_SQLSTATE
-- nothing was defined or redefined
SELECT count(*) AS changed_definitions
  FROM (SELECT * FROM es.aggregates EXCEPT SELECT * FROM aggregates_before) x;
SELECT count(*) AS definitions_of_wrong FROM es.aggregates WHERE stream_type = 'wrong';
SELECT revision FROM es.aggregates WHERE stream_type = 'bankacct';

-- ---------------------------------------------------------------------
-- Bad loads.
-- a stream type with no definition: 42704, with or without events
SELECT * FROM es.load('nodef-1');
\echo :LAST_ERROR_SQLSTATE
SELECT es.append_event('nodef-2', 'Happened', '{}');
SELECT * FROM es.load('nodef-2');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM es.load('nodef-2', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM es.load_at('nodef-2', now());
\echo :LAST_ERROR_SQLSTATE
SELECT es.fold(e ORDER BY version) FROM es.events e WHERE stream_id = 'nodef-2';
\echo :LAST_ERROR_SQLSTATE
-- negative at_version: 22023
SELECT * FROM es.load('bankacct-1', -1);
\echo :LAST_ERROR_SQLSTATE
-- NULL stream_id: 22004; empty: 22023; over 1000 bytes: 22001
SELECT * FROM es.load(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM es.load('');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM es.load(repeat('x', 1001));
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM es.load_at(NULL, now());
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM es.load_at('', now());
\echo :LAST_ERROR_SQLSTATE
-- NULL at_time: 22004
SELECT * FROM es.load_at('bankacct-1', NULL);
\echo :LAST_ERROR_SQLSTATE
-- es.fold over two stream types: 22023
SELECT es.fold(e ORDER BY version) FROM es.events e WHERE stream_type IN ('bankacct', 'basket');
\echo :LAST_ERROR_SQLSTATE
-- es.fold out of version order (or a stream's event twice): 22000
SELECT es.fold(e ORDER BY version DESC) FROM es.events e WHERE stream_id = 'bankacct-2';
\echo :LAST_ERROR_SQLSTATE
SELECT es.fold(e ORDER BY version) FROM es.events e, generate_series(1, 2) WHERE e.stream_id = 'bankacct-2';
\echo :LAST_ERROR_SQLSTATE
-- the failed calls wrote nothing: nodef-2 still has its one event, and no
-- snapshot exists for a type without a definition
SELECT count(*) AS nodef_events FROM es.events WHERE stream_type = 'nodef';
SELECT count(*) AS snapshots_of_undefined_types
  FROM es.snapshots s WHERE NOT EXISTS (SELECT 1 FROM es.aggregates a WHERE a.stream_type = s.stream_type);

-- ---------------------------------------------------------------------
-- Clean up the functions that take es.events (they would block the DROP
-- EXTENSION of the uninstall test); the types that fold with them switch to
-- reducers first.
SELECT es.define_aggregate(t, reducers => '{"*": [{"inc": "events"}]}')
  FROM unnest(ARRAY['visits', 'basket', 'fragile']) t;
SELECT stream_type, fold, reducers, revision FROM es.aggregates
 WHERE stream_type IN ('visits', 'basket', 'fragile') ORDER BY stream_type;
SELECT version, state FROM es.load('basket-1');
DROP FUNCTION public.visits_fold(jsonb, es.events), public.basket_fold(jsonb, es.events),
              public.fragile_fold(jsonb, es.events), public.fold_wrong_args(jsonb, jsonb),
              public.fold_wrong_result(jsonb, es.events), public.fold_set(jsonb, es.events),
              public.fold_one_arg(jsonb);
DROP PROCEDURE public.fold_procedure(jsonb, es.events);
DROP TABLE aggregates_before;
SELECT es.append_event('basket-1', 'ItemAdded', '{"sku": "kiwi", "qty": 1}');
SELECT version, state FROM es.load('basket-1');
