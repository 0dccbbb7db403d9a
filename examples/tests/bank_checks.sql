-- Checks of examples/bank.sql, run by scripts/test_examples.sh in the database
-- where bank.sql has just run (alice: 14 events, 107.50; bob: opened, 70 in,
-- 70 out, closed).
\ir lib.sql

-- The aggregate
SELECT pg_temp.check_eq('alice: version', version, 14::bigint) FROM es.load('account-alice');
SELECT pg_temp.check_eq('alice: balance 107.50 (exact)', state->'balance', '107.50'::jsonb) FROM es.load('account-alice');
SELECT pg_temp.check_eq('alice: owner, active, 13 transactions',
                        jsonb_build_object('o', state->'owner', 'a', state->'isActive', 'n', state->'transactionCount'),
                        '{"o": "Alice Liddell", "a": true, "n": 13}'::jsonb)
  FROM es.load('account-alice');
SELECT pg_temp.check_eq('alice: the balance is the opening balance plus deposits minus withdrawals',
                        (SELECT (state->>'balance')::numeric FROM es.load('account-alice')),
                        (SELECT sum(CASE event_type WHEN 'AccountOpened' THEN (data->>'initialBalance')::numeric
                                                    WHEN 'MoneyDeposited' THEN (data->>'amount')::numeric
                                                    WHEN 'MoneyWithdrawn' THEN -(data->>'amount')::numeric END)
                           FROM es.events WHERE stream_id = 'account-alice'));
SELECT pg_temp.check_eq('alice: the state holds nothing that grows with the account''s age (no list; history is a read model)',
                        (SELECT jsonb_agg(k ORDER BY k) FROM es.load('account-alice') l, jsonb_object_keys(l.state) k),
                        '["accountId", "balance", "isActive", "openedAt", "owner", "transactionCount"]'::jsonb);
SELECT pg_temp.check_eq('bob: closed with 0, version 4',
                        jsonb_build_object('v', version, 'b', state->'balance', 'a', state->'isActive'),
                        '{"v": 4, "b": 0.00, "a": false}'::jsonb)
  FROM es.load('account-bob');
SELECT pg_temp.check_eq('exact decimals: 100.00 + 0.10 + 0.20 = 100.30', state->>'balance', '100.30')
  FROM es.load('account-alice', 3);

-- Snapshots every 10 events, and loads from them equal a fold from scratch
SELECT pg_temp.check_eq('account is defined with snapshot_every 10', snapshot_every, 10)
  FROM es.aggregates WHERE stream_type = 'account';
SELECT pg_temp.check_eq('snapshots: alice at version 10 only, balance 85.00',
                        (SELECT jsonb_agg(jsonb_build_array(stream_id, version, state->'balance') ORDER BY stream_id, version)
                           FROM es.snapshots),
                        '[["account-alice", 10, 85.00]]'::jsonb);
SELECT pg_temp.check('es.load (from the snapshot) equals es.fold from scratch, at every version of every account',
                     bool_and(l.state = f.state), string_agg(f.stream_id || '@' || f.v, ', ') FILTER (WHERE l.state <> f.state))
  FROM (SELECT s.stream_id, v.v,
               (SELECT es.fold(e ORDER BY e.version) FROM es.events e WHERE e.stream_id = s.stream_id AND e.version <= v.v) AS state
          FROM es.streams s, generate_series(1, s.version) v(v) WHERE s.stream_type = 'account') f
  CROSS JOIN LATERAL es.load(f.stream_id, f.v) l;

-- Time travel
SELECT pg_temp.check_eq('time travel: alice at version 4 had 70.00 after 3 transactions',
                        jsonb_build_object('b', state->'balance', 'n', state->'transactionCount'),
                        '{"b": 70.00, "n": 3}'::jsonb)
  FROM es.load('account-alice', 4);
SELECT pg_temp.check_eq('time travel by time: alice at the moment she opened',
                        jsonb_build_object('v', version, 'b', state->'balance'), '{"v": 1, "b": 100.00}'::jsonb)
  FROM es.load_at('account-alice', (SELECT recorded_at FROM es.events WHERE stream_id = 'account-alice' AND version = 1));
SELECT pg_temp.check_eq('history: alice''s stream is versions 1..14 in order',
                        (SELECT array_agg(version) FROM es.read_stream('account-alice')),
                        (SELECT array_agg(v::bigint) FROM generate_series(1, 14) v));

-- Rules: every rejected command with its SQLSTATE
SELECT pg_temp.rejects('withdraw more than the balance', $$SELECT bank.withdraw('alice', 107.51)$$, '23514');
SELECT pg_temp.rejects('withdraw 0', $$SELECT bank.withdraw('alice', 0)$$, '22023');
SELECT pg_temp.rejects('deposit a negative amount', $$SELECT bank.deposit('alice', -1)$$, '22023');
SELECT pg_temp.rejects('deposit with 3 decimals', $$SELECT bank.deposit('alice', 1.001)$$, '22023');
SELECT pg_temp.rejects('deposit NaN', $$SELECT bank.deposit('alice', 'NaN')$$, '22023');
SELECT pg_temp.rejects('deposit NULL', $$SELECT bank.deposit('alice', NULL)$$, '22004');
SELECT pg_temp.rejects('deposit to an unknown account', $$SELECT bank.deposit('carol', 1)$$, 'P0002');
SELECT pg_temp.rejects('withdraw from an unknown account', $$SELECT bank.withdraw('carol', 1)$$, 'P0002');
SELECT pg_temp.rejects('close an unknown account', $$SELECT bank.close_account('carol')$$, 'P0002');
SELECT pg_temp.rejects('deposit to a closed account', $$SELECT bank.deposit('bob', 1)$$, '55000');
SELECT pg_temp.rejects('withdraw from a closed account', $$SELECT bank.withdraw('bob', 1)$$, '55000');
SELECT pg_temp.rejects('close a closed account', $$SELECT bank.close_account('bob')$$, '55000');
SELECT pg_temp.rejects('close an account that holds money', $$SELECT bank.close_account('alice')$$, '55000');
SELECT pg_temp.rejects('open an existing account', $$SELECT bank.open_account('alice', 'Someone')$$, '23505');
SELECT pg_temp.rejects('reopen a closed account', $$SELECT bank.open_account('bob', 'Bob')$$, '23505');
SELECT pg_temp.rejects('open with a negative balance', $$SELECT bank.open_account('dave', 'Dave', -1)$$, '22023');
SELECT pg_temp.rejects('open with an empty owner', $$SELECT bank.open_account('dave', ' ')$$, '22023');
SELECT pg_temp.rejects('an empty account id', $$SELECT bank.deposit('', 1)$$, '22023');
SELECT pg_temp.rejects('an account id of 101 characters', $$SELECT bank.deposit(repeat('a', 101), 1)$$, '22023');
SELECT pg_temp.rejects('an account id with a space', $$SELECT bank.deposit('al ice', 1)$$, '22023');
SELECT pg_temp.rejects('an account id with a letter outside A-Z', $$SELECT bank.deposit('alicé', 1)$$, '22023');
SELECT pg_temp.rejects('an account id of 100 characters that does not exist', $$SELECT bank.deposit(repeat('a', 100), 1)$$, 'P0002');
SELECT pg_temp.rejects('open with a malformed id', $$SELECT bank.open_account('da ve', 'Dave')$$, '22023');
SELECT pg_temp.rejects('an overdraft appended around the commands fails in the inline read model',
                       $$SELECT es.append_event('account-alice', 'MoneyWithdrawn', '{"amount": 1000}', 14)$$, '23514');
SELECT pg_temp.rejects('an append with a stale expected version (what the loser of a race gets)',
                       $$SELECT es.append_event('account-alice', 'MoneyWithdrawn', '{"amount": 1}', 13)$$, '40001');

-- A command's whole cycle, then the same read back
SELECT pg_temp.check_eq('open, deposit, withdraw all, close: versions and balances',
    (SELECT jsonb_agg(r ORDER BY n) FROM (
        SELECT 1 AS n, to_jsonb(o) AS r FROM bank.open_account('erin', 'Erin', 5.05) o
        UNION ALL SELECT 2, to_jsonb(d) FROM bank.deposit('erin', 4.95) d
        UNION ALL SELECT 3, to_jsonb(w) FROM bank.withdraw('erin', 10) w
        UNION ALL SELECT 4, to_jsonb(c) FROM bank.close_account('erin') c) x),
    '[{"version": 1, "balance": 5.05}, {"version": 2, "balance": 10.00}, {"version": 3, "balance": 0.00}, {"version": 4, "balance": 0.00}]'::jsonb);
SELECT pg_temp.check_eq('bank.balance reads the aggregate', bank.balance('alice'), 107.50);

-- The inline read model, and its rebuild
SELECT pg_temp.check('account_balances equals every account''s loaded state',
                     count(*) = (SELECT count(*) FROM es.streams WHERE stream_type = 'account')
                     AND bool_and(b.balance = (l.state->>'balance')::numeric AND b.version = l.version
                                  AND b.is_active = (l.state->>'isActive')::boolean AND b.owner = l.state->>'owner'),
                     string_agg(b.account_id, ', ') FILTER (WHERE b.balance <> (l.state->>'balance')::numeric))
  FROM bank.account_balances b CROSS JOIN LATERAL es.load('account-' || b.account_id) l;
UPDATE bank.account_balances SET balance = 0, owner = 'nobody' WHERE account_id = 'alice';
SELECT pg_temp.check_eq('rebuild replays every account event', es.rebuild_projection('account_balances'),
                        (SELECT count(*) FROM es.events WHERE stream_type = 'account'));
SELECT pg_temp.check_eq('rebuild restored alice', (SELECT jsonb_build_array(owner, balance, version) FROM bank.account_balances
                                                    WHERE account_id = 'alice'),
                        '["Alice Liddell", 107.50, 14]'::jsonb);

-- The async read models, caught up. ivy's deposit after a redaction comes in a
-- batch whose first event has no history row before it (the marker has none):
-- its balance_after must still start from her last transaction.
SELECT 1 FROM bank.open_account('ivy', 'Ivy', 10), bank.deposit('ivy', 5) \gset
SELECT es.run_projection('transaction_history') >= 0 AS caught_up \gset
SELECT es.redact('account-ivy', '{"owner": "[erased]"}', 'bank_checks: a marker between two batches') >= 0 AS redacted \gset
SELECT 1 FROM bank.deposit('ivy', 2.5) \gset
SELECT es.run_projection('transaction_history') >= 0 AND es.run_projection('daily_summary') >= 0 AS caught_up \gset
SELECT pg_temp.check_eq('transaction_history: ivy''s balance goes on across the marker',
                        (SELECT string_agg(version || '=' || balance_after, ',' ORDER BY version)
                           FROM bank.transaction_history WHERE account_id = 'ivy'),
                        '1=10.00,2=15.00,4=17.50');
SELECT pg_temp.check_eq('async projections: running, no lag',
                        (SELECT jsonb_object_agg(name, jsonb_build_array(status, lag)) FROM es.projections WHERE mode = 'async'),
                        '{"daily_summary": ["running", 0], "transaction_history": ["running", 0]}'::jsonb);
SELECT pg_temp.check_eq('transaction_history: one row per account event, same positions',
                        (SELECT array_agg(global_position ORDER BY global_position) FROM bank.transaction_history),
                        (SELECT array_agg(global_position ORDER BY global_position) FROM es.events
                          WHERE stream_type = 'account' AND event_type NOT LIKE '$%'));
SELECT pg_temp.check('transaction_history: balance_after equals the loaded balance at every version',
                     bool_and(h.balance_after = (l.state->>'balance')::numeric),
                     string_agg(h.account_id || '@' || h.version, ', ') FILTER (WHERE h.balance_after <> (l.state->>'balance')::numeric))
  FROM bank.transaction_history h CROSS JOIN LATERAL es.load('account-' || h.account_id, h.version) l;
SELECT pg_temp.check_eq('transaction_history: alice''s kinds in order',
                        (SELECT string_agg(type, ',' ORDER BY version) FROM bank.transaction_history WHERE account_id = 'alice'),
                        'open,deposit,deposit,withdrawal' || repeat(',deposit,withdrawal', 5));
SELECT pg_temp.check_eq('daily_summary: per-day sums and counts equal the events''',
    (SELECT jsonb_agg(jsonb_build_array(day, accounts_opened, opening_balances, deposit_count, deposits,
                                        withdrawal_count, withdrawals, accounts_closed, net_change) ORDER BY day)
       FROM bank.daily_summary),
    (SELECT jsonb_agg(jsonb_build_array(d, o, ob, dc, da, wc, wa, c, ob + da - wa) ORDER BY d) FROM (
        SELECT (recorded_at AT TIME ZONE 'UTC')::date AS d,
               count(*) FILTER (WHERE event_type = 'AccountOpened') AS o,
               COALESCE(sum((data->>'initialBalance')::numeric) FILTER (WHERE event_type = 'AccountOpened'), 0) AS ob,
               count(*) FILTER (WHERE event_type = 'MoneyDeposited') AS dc,
               COALESCE(sum((data->>'amount')::numeric) FILTER (WHERE event_type = 'MoneyDeposited'), 0) AS da,
               count(*) FILTER (WHERE event_type = 'MoneyWithdrawn') AS wc,
               COALESCE(sum((data->>'amount')::numeric) FILTER (WHERE event_type = 'MoneyWithdrawn'), 0) AS wa,
               count(*) FILTER (WHERE event_type = 'AccountClosed') AS c
          FROM es.events WHERE stream_type = 'account' GROUP BY 1) x));
SELECT pg_temp.check_eq('daily_summary: the net changes add up to the money held',
                        (SELECT sum(net_change) FROM bank.daily_summary),
                        (SELECT sum(balance) FROM bank.account_balances));

-- es.stats()
SELECT pg_temp.check_eq('es.stats(): totals and counts by type',
    (SELECT jsonb_build_object('e', s->'total_events', 's', s->'total_streams', 'n', s->'total_snapshots',
                               'w', s->'events_by_type'->'MoneyWithdrawn', 'a', s->'streams_by_type'->'account',
                               'p', jsonb_array_length(s->'projections'))
       FROM es.stats() s),
    (SELECT jsonb_build_object('e', (SELECT count(*) FROM es.events), 's', (SELECT count(*) FROM es.streams),
                               'n', (SELECT count(*) FROM es.snapshots),
                               'w', (SELECT count(*) FROM es.events WHERE event_type = 'MoneyWithdrawn'),
                               'a', (SELECT count(*) FROM es.streams WHERE stream_type = 'account'), 'p', 3)));

-- Schema evolution (section 11): deposits gained a currency
SELECT pg_temp.check_eq('evolution: alice''s deposits are stored as written (schema version 1, no currency)',
                        (SELECT count(*) FROM es.events WHERE stream_id = 'account-alice' AND event_type = 'MoneyDeposited'
                            AND schema_version = 1 AND NOT data ? 'currency'), 7::bigint);
SELECT pg_temp.check_eq('evolution: es.read_stream reads them as version 2 in EUR',
                        (SELECT count(*) FROM es.read_stream('account-alice')
                          WHERE event_type = 'MoneyDeposited' AND schema_version = 2 AND data->>'currency' = 'EUR'), 7::bigint);
SELECT pg_temp.check_eq('evolution: gail''s deposit is stored at version 2 in USD',
                        (SELECT jsonb_build_object('v', schema_version, 'd', data) FROM es.events
                          WHERE stream_id = 'account-gail' AND event_type = 'MoneyDeposited'),
                        '{"v": 2, "d": {"amount": 25, "currency": "USD"}}'::jsonb);
SELECT pg_temp.rejects('evolution: a deposit without a currency is refused by the schema',
                       $$SELECT es.append_event('account-gail', 'MoneyDeposited', '{"amount": 1}')$$, '23514');
SELECT pg_temp.check_eq('evolution: the aggregate folds the upcast deposits (alice 107.50, gail 25)',
                        (SELECT jsonb_object_agg(stream_id, state->'balance') FROM es.load('account-alice')) ||
                        (SELECT jsonb_object_agg(stream_id, state->'balance') FROM es.load('account-gail')),
                        '{"account-alice": 107.50, "account-gail": 25}'::jsonb);

-- Lifecycle (section 12): hugo redacted and archived
SELECT pg_temp.check_eq('lifecycle: no copy of hugo''s name is left in the store or the read models',
                        (SELECT count(*) FROM es.events t WHERE t::text LIKE '%Hugo Strange%')
                        + (SELECT count(*) FROM es.archived_events t WHERE t::text LIKE '%Hugo Strange%')
                        + (SELECT count(*) FROM es.snapshots t WHERE t::text LIKE '%Hugo Strange%')
                        + (SELECT count(*) FROM es.audit t WHERE t::text LIKE '%Hugo Strange%')
                        + (SELECT count(*) FROM bank.account_balances t WHERE t::text LIKE '%Hugo Strange%')
                        + (SELECT count(*) FROM bank.transaction_history t WHERE t::text LIKE '%Hugo Strange%'),
                        0::bigint);
SELECT pg_temp.check_eq('lifecycle: hugo''s account is archived, read, and loads as closed with 0',
                        jsonb_build_object('hot', (SELECT count(*) FROM es.events WHERE stream_id = 'account-hugo'),
                                           'read', (SELECT count(*) FROM es.read_stream('account-hugo')),
                                           'state', (SELECT state - 'openedAt' - 'closedAt' FROM es.load('account-hugo'))),
                        '{"hot": 0, "read": 4, "state": {"owner": "[erased]", "balance": 0.00, "isActive": false, "accountId": "hugo", "transactionCount": 1}}'::jsonb);
SELECT pg_temp.rejects('lifecycle: an append to the archived account is refused',
                       $$SELECT es.append_event('account-hugo', 'MoneyDeposited', '{"amount": 1, "currency": "EUR"}')$$, '55000');
SELECT pg_temp.check_eq('lifecycle: es.audit records the redaction and the archive',
                        (SELECT jsonb_agg(jsonb_build_array(operation, versions::text, event_count) ORDER BY id) FROM es.audit
                          WHERE stream_id = 'account-hugo'),
                        '[["redact", "[1,2)", 1], ["archive_stream", "[1,5)", 4]]'::jsonb);

SELECT pg_temp.check_search_paths('bank', ARRAY['bank.stream_id(text)', 'bank.check_amount(numeric, boolean)',
                                                 'bank.load_account(text, boolean)', 'bank.project_balance(es.events)']::regprocedure[]);
SELECT pg_temp.check_eq('the batch handlers keep one plan for every batch (plan_cache_mode = force_generic_plan)',
                        (SELECT array_agg(p.oid::regprocedure::text ORDER BY p.oid::regprocedure::text) FROM pg_proc p
                          WHERE p.pronamespace = 'bank'::regnamespace
                            AND 'plan_cache_mode=force_generic_plan' = ANY (p.proconfig)),
                        ARRAY['bank.project_daily(es.events[])', 'bank.project_history(es.events[])']);
SELECT pg_temp.check_eq('the inline handler (no SET clause) runs with the search_path recorded pinned by es.create_projection',
                        (SELECT search_path FROM es.projection_registry WHERE name = 'account_balances'),
                        'pg_catalog, pg_temp');
-- The helpers inherit the command's pinned search_path: a caller whose path
-- puts look-alikes of the built-ins they use ahead of pg_catalog changes nothing
-- (a helper called directly uses the caller's path: it is not an entry point).
BEGIN;
CREATE SCHEMA lookalike;
CREATE FUNCTION lookalike.round(numeric, integer) RETURNS numeric LANGUAGE sql AS 'SELECT 1000000::numeric';
CREATE FUNCTION lookalike.length(text) RETURNS integer LANGUAGE sql AS 'SELECT 0';
CREATE FUNCTION lookalike.substr(text, integer) RETURNS text LANGUAGE sql AS 'SELECT ''nobody''';
SELECT (state->>'balance')::numeric AS ivy_before FROM es.load('account-ivy') \gset
SET LOCAL search_path = lookalike, pg_catalog, public;
SELECT pg_temp.check('the look-alikes are what this session''s path finds',
                     length('abc') = 0 AND round(1.5, 0) = 1000000 AND substr('account-ivy', 9) = 'nobody');
SELECT pg_temp.check_eq('bank.deposit from that session: its helpers use the built-ins',
                        (SELECT balance FROM bank.deposit('ivy', 1.00)), :ivy_before + 1.00);
SELECT pg_temp.check_eq('and the inline handler (the path it recorded) moved ivy''s row',
                        (SELECT balance::numeric FROM bank.account_balances WHERE account_id = 'ivy'), :ivy_before + 1.00);
ROLLBACK;

SELECT pg_temp.check('es.verify(): the store is consistent (versions, stream rows, order, snapshots, materialized rows)',
                     count(*) = 0, string_agg(check_name || ' ' || object || ': ' || detail, '; '))
  FROM es.verify();
