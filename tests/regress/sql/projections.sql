--
-- projections: read models kept current from the events, inline (in the
-- appending transaction) or async (es.run_projection), rebuilt, watched in
-- es.projections; the built-in materializer.
--
\set SHOW_CONTEXT never
\set VERBOSITY default

-- A read model: balance per account, and one row per day and type.
CREATE TABLE balances (account text PRIMARY KEY, balance numeric NOT NULL);
CREATE FUNCTION apply_money(e es.events) RETURNS void LANGUAGE sql AS $$
    INSERT INTO balances VALUES (e.stream_id,
        CASE e.event_type WHEN 'Deposited' THEN 1 ELSE -1 END * (e.data->>'amount')::numeric)
    ON CONFLICT (account) DO UPDATE SET balance = balances.balance + EXCLUDED.balance
$$;
CREATE FUNCTION reset_balances() RETURNS void LANGUAGE sql AS $$ DELETE FROM balances $$;

SELECT es.append_event('wallet-1', 'Opened', '{"owner": "ann"}');
SELECT es.append_event('wallet-1', 'Deposited', '{"amount": 100}');

-- ---------------------------------------------------------------------
-- Inline: the handler runs in the appending transaction. Creating it hands
-- over the events already there.
SELECT es.create_projection('balances', 'apply_money(es.events)', 'inline',
                            event_types => ARRAY['Deposited', 'Withdrawn'],
                            stream_types => ARRAY['wallet'],
                            reset => 'reset_balances()');
SELECT * FROM balances;
SELECT es.append_event('wallet-1', 'Withdrawn', '{"amount": 30}');
SELECT es.append_events('wallet-2', '[
    {"type": "Opened",    "data": {"owner": "bob"}},
    {"type": "Deposited", "data": {"amount": 5.50}},
    {"type": "Deposited", "data": {"amount": 4.50}}
]');
SELECT * FROM balances ORDER BY account;

-- A handler that fails fails the append: nothing is written.
CREATE FUNCTION no_overdraft(e es.events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT balance FROM balances WHERE account = e.stream_id) < 0 THEN
        RAISE EXCEPTION 'account % would be overdrawn', e.stream_id;
    END IF;
END
$$;
SELECT es.create_projection('zz_no_overdraft', 'no_overdraft(es.events)', event_types => ARRAY['Withdrawn']);
SELECT es.append_event('wallet-2', 'Withdrawn', '{"amount": 11}');
SELECT es.stream_version('wallet-2'), (SELECT balance FROM balances WHERE account = 'wallet-2');
SELECT es.drop_projection('zz_no_overdraft');

-- Rebuild: reset, then replay every event.
UPDATE balances SET balance = 0;
SELECT es.rebuild_projection('balances');
SELECT * FROM balances ORDER BY account;

-- ---------------------------------------------------------------------
-- Async: caught up by es.run_projection (or the background worker), in
-- global order, its position moving in the same transaction as its writes.
CREATE TABLE daily (day date, event_type text, n int NOT NULL, PRIMARY KEY (day, event_type));
CREATE FUNCTION count_daily(e es.events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF e.data ? 'poison' THEN
        RAISE EXCEPTION 'cannot count event % of %', e.version, e.stream_id;
    END IF;
    INSERT INTO daily VALUES (e.recorded_at::date, e.event_type, 1)
    ON CONFLICT (day, event_type) DO UPDATE SET n = daily.n + 1;
END
$$;
CREATE FUNCTION reset_daily() RETURNS void LANGUAGE sql AS $$ DELETE FROM daily $$;
SELECT es.create_projection('daily', 'count_daily(es.events)', 'async',
                            stream_types => ARRAY['wallet'], reset => 'reset_daily()');
SELECT name, mode, position, lag, status FROM es.projections ORDER BY name;
SELECT es.run_projection('daily', 2);
SELECT es.run_projection('daily');
SELECT es.run_projection('daily');
SELECT event_type, n FROM daily ORDER BY event_type;
SELECT name, lag, status, position = (SELECT max(global_position) FROM es.events WHERE stream_type = 'wallet') AS at_last_event
FROM es.projections WHERE name = 'daily';

-- A failing handler marks the projection failed and keeps its position
-- before the failing event; the events before it are handled.
SELECT es.append_event('wallet-3', 'Opened', '{}');
SELECT es.append_event('wallet-3', 'Deposited', '{"amount": 1, "poison": true}');
SELECT es.append_event('wallet-3', 'Deposited', '{"amount": 2}');
SELECT es.run_projection('daily');
SELECT status, last_error, lag,
       failed_position = (SELECT global_position FROM es.events WHERE stream_id = 'wallet-3' AND version = 2) AS failed_at_v2
FROM es.projections WHERE name = 'daily';
SELECT event_type, n FROM daily ORDER BY event_type;
-- After the fix, es.run_projection resumes at the failing event.
CREATE OR REPLACE FUNCTION count_daily(e es.events) RETURNS void LANGUAGE sql AS $$
    INSERT INTO daily VALUES (e.recorded_at::date, e.event_type, 1)
    ON CONFLICT (day, event_type) DO UPDATE SET n = daily.n + 1
$$;
SELECT es.run_projection('daily');
SELECT status, last_error, lag FROM es.projections WHERE name = 'daily';
SELECT event_type, n FROM daily ORDER BY event_type;
-- Nothing new: 0.
SELECT es.run_projection('daily');
-- Rebuild replays the same events into the reset read model.
SELECT es.rebuild_projection('daily');
SELECT event_type, n FROM daily ORDER BY event_type;

-- ---------------------------------------------------------------------
-- A batch handler takes es.events[]: one call per batch, events in global
-- order, one set-based statement for all of them.
CREATE TABLE daily_calls (seq serial, events int);
CREATE TABLE daily_batched (day date, event_type text, n int NOT NULL, PRIMARY KEY (day, event_type));
CREATE FUNCTION count_daily_batched(events es.events[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    bad es.events;
BEGIN
    SELECT * INTO bad FROM unnest(events) e WHERE e.data ? 'poison2' ORDER BY e.global_position LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'cannot count event % of %', bad.version, bad.stream_id;
    END IF;
    INSERT INTO daily_calls (events) VALUES (cardinality(events));
    INSERT INTO daily_batched AS d
    SELECT e.recorded_at::date, e.event_type, count(*) FROM unnest(events) e GROUP BY 1, 2
    ON CONFLICT (day, event_type) DO UPDATE SET n = d.n + EXCLUDED.n;
END
$$;
CREATE FUNCTION reset_daily_batched() RETURNS void LANGUAGE sql AS $$ DELETE FROM daily_batched $$;
SELECT es.create_projection('daily_batched', 'count_daily_batched(es.events[])', 'async',
                            stream_types => ARRAY['wallet'], reset => 'reset_daily_batched()');
SELECT es.run_projection('daily_batched');
-- one call for all of them, and the same counts as the per-event handler
SELECT events FROM daily_calls ORDER BY seq;
SELECT (SELECT count(*) FROM daily_batched) AS rows,
       (SELECT count(*) FROM (SELECT event_type, n FROM daily_batched
                              EXCEPT SELECT event_type, n FROM daily) d) AS differing;
-- A failing batch is handed over again one event at a time: the events
-- before the failing one are kept, the projection is failed at it.
TRUNCATE daily_calls;
SELECT es.append_event('wallet-5', 'Opened', '{}');
SELECT es.append_event('wallet-5', 'Deposited', '{"amount": 1, "poison2": true}');
SELECT es.append_event('wallet-5', 'Deposited', '{"amount": 2}');
SELECT es.run_projection('daily_batched');
SELECT status, last_error, lag,
       failed_position = (SELECT global_position FROM es.events WHERE stream_id = 'wallet-5' AND version = 2) AS failed_at_v2
FROM es.projections WHERE name = 'daily_batched';
SELECT events FROM daily_calls ORDER BY seq;
SELECT event_type, n FROM daily_batched ORDER BY event_type;
CREATE OR REPLACE FUNCTION count_daily_batched(events es.events[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO daily_calls (events) VALUES (cardinality(events));
    INSERT INTO daily_batched AS d
    SELECT e.recorded_at::date, e.event_type, count(*) FROM unnest(events) e GROUP BY 1, 2
    ON CONFLICT (day, event_type) DO UPDATE SET n = d.n + EXCLUDED.n
$$;
SELECT es.run_projection('daily_batched');
SELECT status, last_error, lag FROM es.projections WHERE name = 'daily_batched';
SELECT event_type, n FROM daily_batched ORDER BY event_type;
-- Rebuild replays every event into the reset read model.
TRUNCATE daily_calls;
SELECT es.rebuild_projection('daily_batched');
SELECT sum(events) AS events_replayed FROM daily_calls;
SELECT event_type, n FROM daily_batched ORDER BY event_type;

-- ---------------------------------------------------------------------
-- The built-in materializer: one row per stream, one fold step per event.
SELECT es.define_aggregate('wallet',
    reducers => '{"Opened":    [{"set": "owner", "from": "$.owner"}],
                  "Deposited": [{"add": "balance", "from": "$.amount"}],
                  "Withdrawn": [{"sub": "balance", "from": "$.amount"}]}',
    initial_state => '{"balance": 0}',
    snapshot_every => 2);
SELECT es.materialize_aggregate('wallet', 'wallet_state');
SELECT * FROM wallet_state ORDER BY stream_id;
SELECT es.append_event('wallet-2', 'Withdrawn', '{"amount": 0.25}');
SELECT es.append_event('wallet-4', 'Opened', '{"owner": "cy"}');
SELECT * FROM wallet_state ORDER BY stream_id;
SELECT count(*) AS differing FROM wallet_state m, es.load(m.stream_id) l
WHERE (l.version, l.state) IS DISTINCT FROM (m.version, m.state);

SELECT name, kind, mode, lag, status FROM es.projections ORDER BY name;

-- ---------------------------------------------------------------------
-- Bad input.
SELECT es.create_projection('balances', 'apply_money(es.events)');
SELECT es.create_projection('x', 'reset_balances()');
CREATE FUNCTION takes_text_array(t text[]) RETURNS void LANGUAGE sql AS $$ SELECT $$;
SELECT es.create_projection('x', 'takes_text_array(text[])');
SELECT es.create_projection('x', 'apply_money(es.events)', 'sometimes');
SELECT es.create_projection('x', 'apply_money(es.events)', event_types => '{}');
SELECT es.create_projection(NULL, 'apply_money(es.events)');
SELECT es.run_projection('nope');
SELECT es.run_projection('balances');
SELECT es.run_projection('daily', 0);
SELECT es.rebuild_projection('nope');
SELECT es.drop_projection('nope');
SELECT es.materialize_aggregate('no_such_type', 'x_state');
CREATE TABLE wrong_shape (id int);
SELECT es.materialize_aggregate('wallet', 'wrong_shape');
SELECT count(*) FROM es.projections;

-- Clean up (the read models are the user's: dropping a projection leaves them).
SELECT es.drop_projection(name) FROM es.projections ORDER BY name;
DROP TABLE balances, daily, wallet_state, wrong_shape, daily_calls, daily_batched;
DROP FUNCTION apply_money(es.events), reset_balances(), no_overdraft(es.events),
              count_daily(es.events), reset_daily(), count_daily_batched(es.events[]),
              reset_daily_batched(), takes_text_array(text[]);
