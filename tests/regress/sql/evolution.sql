--
-- evolution: event schemas checked on append (es.define_event_schema),
-- upcasters chained v1 -> v2 -> v3 with a rename (es.define_upcaster), every
-- read path handing out upcast events, raw reads, es.event_types, and every
-- bad definition with its SQLSTATE.
--
\set SHOW_CONTEXT never
\set VERBOSITY default
-- Event types of this file only: PurseOpened, FundsAdded, FundsDeposited,
-- FundsSpent. Stream type: purse.

-- ---------------------------------------------------------------------
-- A purse whose deposits were first written as {"amt": n}.
SELECT es.append_event('purse-1', 'PurseOpened', '{"owner": "Ada"}', 0);
SELECT es.append_event('purse-1', 'FundsAdded', '{"amt": 10}', 1);
SELECT es.append_event('purse-1', 'FundsSpent', '{"amount": 3}', 2);

-- v1 -> v2: the field is renamed, and deposits gained a currency.
SELECT es.define_upcaster('FundsAdded', 1, steps => '[{"rename": "amt", "to": "amount"},
                                                     {"set": "currency", "value": "EUR"}]');
-- From now on the type's data is checked on append, against the v2 shape.
SELECT es.define_event_schema('FundsAdded', '{
  "type": "object",
  "required": ["amount", "currency"],
  "additionalProperties": false,
  "properties": {
    "amount":   {"type": "number", "exclusiveMinimum": 0, "maximum": 10000.00},
    "currency": {"type": "string", "enum": ["EUR", "USD"]},
    "ref":      {"type": "string", "format": "uuid"}
  }
}');
SELECT es.append_event('purse-1', 'FundsAdded', '{"amount": 5, "currency": "USD"}', 3);

-- Violations are refused with the failing place; nothing is written.
SELECT es.append_event('purse-1', 'FundsAdded', '{"amount": "5", "currency": "USD"}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.append_event('purse-1', 'FundsAdded', '{"amount": 5}');
SELECT es.append_event('purse-1', 'FundsAdded', '{"amount": 10000.001, "currency": "EUR"}');
SELECT es.append_event('purse-1', 'FundsAdded', '{"amount": 1, "currency": "EUR", "ref": "not-a-uuid"}');
SELECT es.append_event('purse-1', 'FundsAdded', '{"amount": 1, "currency": "EUR", "extra": true}');
-- a batch is all or nothing
SELECT es.append_events('purse-1', '[
  {"type": "FundsAdded", "data": {"amount": 1, "currency": "EUR"}},
  {"type": "FundsAdded", "data": {"amount": 2, "currency": "GBP"}}]');
SELECT es.stream_version('purse-1');
-- es.check_event: the same check, without appending
SELECT es.check_event('FundsAdded', '{"amount": 0, "currency": "EUR"}');
SELECT es.check_event('FundsAdded', '{"amount": 1, "currency": "EUR"}') IS NULL AS valid;

-- v2 -> v3, by a function, renamed to FundsDeposited with the money nested.
CREATE FUNCTION funds_v3(data jsonb, metadata jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE
RETURN jsonb_build_object('money', jsonb_build_object('amount', data->'amount', 'currency', data->'currency'));
SELECT es.define_upcaster('FundsAdded', 2, fn => 'funds_v3(jsonb, jsonb)', to_event_type => 'FundsDeposited');
SELECT es.append_event('purse-1', 'FundsDeposited', '{"money": {"amount": 7, "currency": "EUR"}}', 4);

-- Readers see the newest shape; raw => true shows what is stored.
SELECT version, event_type, schema_version, data FROM es.read_stream('purse-1');
SELECT version, event_type, schema_version, data FROM es.read_stream('purse-1', raw => true);
SELECT version, event_type, data FROM es.read_all(0, 100, event_types => ARRAY['FundsDeposited']);
SELECT version, event_type, data FROM es.read_all(0, 100, event_types => ARRAY['FundsAdded'], raw => true);
SELECT (es.upcast(e)).data FROM es.events e WHERE e.stream_id = 'purse-1' AND e.version = 2;

-- Subscriptions, and aggregates: folded from upcast events.
SELECT es.subscribe('purse-feed', event_types => ARRAY['FundsDeposited']);
SELECT version, event_type, data FROM es.poll('purse-feed');
SELECT es.define_aggregate('purse', reducers => '{
  "PurseOpened":   [{"set": "owner", "from": "$.owner"}, {"set": "balance", "value": 0}],
  "FundsDeposited": [{"add": "balance", "from": "$.money.amount"}],
  "FundsSpent":     [{"sub": "balance", "from": "$.amount"}]
}');
SELECT version, state FROM es.load('purse-1');
SELECT es.fold(e ORDER BY e.version) FROM es.events e WHERE e.stream_id = 'purse-1';

SELECT event_type, current_version, renamed_to, schema_mode, jsonb_array_length(upcasters) AS upcasters, events
  FROM es.event_types WHERE event_type IN ('PurseOpened', 'FundsAdded', 'FundsDeposited', 'FundsSpent')
 ORDER BY event_type;

-- warn: written, with a WARNING; off: not checked.
SELECT es.define_event_schema('FundsSpent', '{"type": "object", "required": ["amount"]}', 'warn');
SELECT es.append_event('purse-1', 'FundsSpent', '{"amt": 1}');
SELECT es.define_event_schema('FundsSpent', '{"type": "object", "required": ["amount"]}', 'off');
SELECT es.append_event('purse-1', 'FundsSpent', '{"amt": 1}');

-- ---------------------------------------------------------------------
-- Bad definitions: 22023 (22004 for NULL), nothing changes.
SELECT es.define_event_schema('FundsSpent', '{"type": "money"}');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_event_schema('FundsSpent', '{"dependentRequired": {"a": ["b"]}}');
SELECT es.define_event_schema('FundsSpent', '{"$ref": "https://example.com/s.json"}');
SELECT es.define_event_schema('FundsSpent', '{"pattern": "("}');
SELECT es.define_event_schema('FundsSpent', '{}', 'strict');
SELECT es.define_event_schema('FundsSpent', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_upcaster('FundsSpent', 1);
SELECT es.define_upcaster('FundsSpent', 3, steps => '[{"unset": "x"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT es.define_upcaster('FundsSpent', 1, steps => '[{"move": "x"}]');
SELECT es.define_upcaster('FundsSpent', 1, fn => 'jsonb_strip_nulls(jsonb)');
SELECT es.define_upcaster('FundsAdded', 3, steps => '[{"unset": "x"}]');
SELECT es.define_upcaster('FundsDeposited', 1, steps => '[{"unset": "x"}]', to_event_type => 'FundsAdded');
SELECT count(*) AS upcasters FROM es.upcasters WHERE event_type LIKE 'Funds%';
