-- The bank: accounts as event streams, commands as SQL functions, read models
-- as projections. Run by `bash scripts/run.sh` in a fresh database; runs in any
-- database where you may CREATE EXTENSION (psql -X -v ON_ERROR_STOP=1 -f examples/bank.sql).
--
-- What a backend team usually writes as an HTTP service over its own event table
-- is here a handful of statements:
--   * an aggregate type `account` folded by native reducers (exact decimals),
--     with a snapshot every 10 events;
--   * command functions bank.open_account / deposit / withdraw / close_account
--     that load the account, check the rules, and append with the loaded
--     version as the expected version, so concurrent commands can never
--     overdraw an account: the loser gets SQLSTATE 40001 and retries;
--   * read models: bank.account_balances (inline projection), and
--     bank.transaction_history and bank.daily_summary (async projections
--     with batch handlers: one statement per batch of events);
--   * schema evolution: deposits gain a currency; older ones are upcast to the
--     default currency on every read, new ones are checked by a JSON Schema;
--   * a customer who leaves and asks to be forgotten: his name is redacted
--     from his events (audited), his closed account archived.
--
-- Errors raised by the commands (catch them by SQLSTATE):
--   22004 null_value_not_allowed           an argument is NULL
--   22023 invalid_parameter_value          amount not positive or with more than 2 decimals,
--                                          a malformed account id, an empty owner
--   P0002 no_data_found                    no such account
--   23505 unique_violation                 open_account: the account already exists
--   55000 object_not_in_prerequisite_state the account is closed; close_account with money left
--   23514 check_violation                  withdraw: more than the balance (insufficient funds)
--   40001 serialization_failure            another command changed the account since it was
--                                          loaded: run the command again (nothing was written)

\set ON_ERROR_STOP 1
\set QUIET 1
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_eventsource;
RESET client_min_messages;
-- set-up statements print nothing (errors still show)
\o /dev/null

\echo '=== 1. The account aggregate: native reducers, snapshot every 10 events'
-- The state keeps what the commands decide on (balance, open or closed) and a
-- few facts of a fixed size: an account ten years old loads as fast as one
-- opened today. Its history (every transaction, with the balance after it) is
-- a read model, bank.transaction_history below, not a list in the state: a
-- list would grow with every event, and every command would load, and every
-- snapshot write, all of it. Every command folds the events since the last
-- snapshot, so each step a money event takes costs every deposit: a
-- "lastTransaction" object built from each event (type, amount, time) was 5-7%
-- of a deposit; the read model answers that question instead.
SELECT es.define_aggregate('account',
  reducers => $json${
    "AccountOpened":  [{"set": "accountId", "from": "$.accountId"},
                       {"set": "owner", "from": "$.owner"},
                       {"set": "balance", "from": "$.initialBalance"},
                       {"set": "isActive", "value": true},
                       {"set": "openedAt", "from": "$recorded_at"}],
    "MoneyDeposited": [{"add": "balance", "from": "$.amount"}, {"inc": "transactionCount"}],
    "MoneyWithdrawn": [{"sub": "balance", "from": "$.amount"}, {"inc": "transactionCount"}],
    "AccountClosed":  [{"set": "isActive", "value": false},
                       {"set": "closedAt", "from": "$recorded_at"}]
  }$json$,
  initial_state => '{"balance": 0, "isActive": false, "transactionCount": 0}',
  snapshot_every => 10);

\echo '=== 2. Commands: schema bank'
CREATE SCHEMA bank;

-- The functions a client calls (the commands, bank.balance) pin search_path, so
-- that nothing in the caller's path can change what they do. The helpers below
-- them (stream_id, check_amount, load_account) have no SET clause: they run
-- inside a command and inherit its pinned path. A SET clause is not free: on
-- PostgreSQL 15 each call opens a GUC nest level, re-resolves the path and
-- makes the caller's cached plans check it again, about 15,000-20,000 CPU
-- instructions; three nested helpers were 7% of a deposit. They name only
-- built-ins, which PostgreSQL looks up in pg_catalog first.

-- 'alice' -> stream 'account-alice'
CREATE FUNCTION bank.stream_id(account_id text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF account_id IS NULL THEN
        RAISE EXCEPTION 'account_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- A length test and a character class rather than '^[...]{1,100}$': the
    -- regex engine builds a state per repetition of a bounded repeat, on every
    -- call (about 40% of this function's cost in the bank benchmark).
    IF length(account_id) NOT BETWEEN 1 AND 100 OR account_id ~ '[^A-Za-z0-9_.-]' THEN
        RAISE EXCEPTION 'invalid account id "%"', account_id
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'An account id is 1 to 100 letters, digits, "_", "." or "-".';
    END IF;
    RETURN 'account-' || account_id;
END
$$;

-- A positive amount with at most 2 decimals, returned with exactly 2.
CREATE FUNCTION bank.check_amount(amount numeric, allow_zero boolean DEFAULT false) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF amount IS NULL THEN
        RAISE EXCEPTION 'amount must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF amount < 0 OR (amount = 0 AND NOT allow_zero) OR amount = 'NaN' THEN
        RAISE EXCEPTION 'amount must be % than 0, got %', CASE WHEN allow_zero THEN 'at least' ELSE 'more' END, amount
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF amount <> round(amount, 2) THEN
        RAISE EXCEPTION 'amount % has more than 2 decimal places', amount
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Amounts are in units of 0.01.';
    END IF;
    IF amount >= 1e15 THEN
        RAISE EXCEPTION 'amount % is too large', amount USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN round(amount, 2);
END
$$;

-- An account's current state, for a command: raises P0002 when it does not
-- exist and, unless allow_closed, 55000 when it is closed.
CREATE TYPE bank.loaded_account AS (stream_id text, version bigint, balance numeric, is_active boolean, state jsonb);

CREATE FUNCTION bank.load_account(account_id text, allow_closed boolean DEFAULT false)
RETURNS bank.loaded_account
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    a bank.loaded_account;
BEGIN
    SELECT l.stream_id, l.version, (l.state->>'balance')::numeric, (l.state->>'isActive')::boolean, l.state
      INTO a
      FROM es.load(bank.stream_id(load_account.account_id)) l;
    IF a.version = 0 THEN
        RAISE EXCEPTION 'account "%" does not exist', account_id
            USING ERRCODE = 'no_data_found', HINT = 'Open it with bank.open_account first.';
    END IF;
    IF NOT a.is_active AND NOT allow_closed THEN
        RAISE EXCEPTION 'account "%" is closed', account_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN a;
END
$$;

CREATE FUNCTION bank.open_account(account_id text, owner text, initial_balance numeric DEFAULT 0,
                                  metadata jsonb DEFAULT NULL)
RETURNS TABLE (version bigint, balance numeric)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sid constant text    := bank.stream_id(open_account.account_id);
    amt constant numeric := bank.check_amount(initial_balance, allow_zero => true);
BEGIN
    IF owner IS NULL THEN
        RAISE EXCEPTION 'owner must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF btrim(owner) = '' THEN
        RAISE EXCEPTION 'owner must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF es.stream_version(sid) > 0 THEN
        RAISE EXCEPTION 'account "%" already exists', account_id
            USING ERRCODE = 'unique_violation', HINT = 'Account ids are never reused, not even after closing.';
    END IF;
    -- expected version 0: if another transaction opens the same account
    -- first, this append fails with 40001, and the retry reports 23505.
    version := es.append_event(sid, 'AccountOpened',
                               jsonb_build_object('accountId', account_id, 'owner', btrim(owner),
                                                  'initialBalance', amt),
                               expected_version => 0, metadata => open_account.metadata,
                               stream_type => 'account');
    balance := amt;
    RETURN NEXT;
END
$$;

CREATE FUNCTION bank.deposit(account_id text, amount numeric, metadata jsonb DEFAULT NULL)
RETURNS TABLE (version bigint, balance numeric)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    amt constant numeric := bank.check_amount(amount);
    a bank.loaded_account := bank.load_account(deposit.account_id);
BEGIN
    version := es.append_event(a.stream_id, 'MoneyDeposited',
                               jsonb_build_object('amount', amt),
                               expected_version => a.version, metadata => deposit.metadata);
    balance := a.balance + amt;
    RETURN NEXT;
END
$$;

CREATE FUNCTION bank.withdraw(account_id text, amount numeric, metadata jsonb DEFAULT NULL)
RETURNS TABLE (version bigint, balance numeric)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    amt constant numeric := bank.check_amount(amount);
    a bank.loaded_account := bank.load_account(withdraw.account_id);
BEGIN
    IF amt > a.balance THEN
        RAISE EXCEPTION 'insufficient funds: account "%" has %, cannot withdraw %', account_id, a.balance, amt
            USING ERRCODE = 'check_violation';
    END IF;
    -- The balance checked above is the one at a.version: if anyone appended
    -- since, this fails with 40001 and writes nothing.
    version := es.append_event(a.stream_id, 'MoneyWithdrawn',
                               jsonb_build_object('amount', amt),
                               expected_version => a.version, metadata => withdraw.metadata);
    balance := a.balance - amt;
    RETURN NEXT;
END
$$;

CREATE FUNCTION bank.close_account(account_id text, metadata jsonb DEFAULT NULL)
RETURNS TABLE (version bigint, balance numeric)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a bank.loaded_account := bank.load_account(close_account.account_id);
BEGIN
    IF a.balance <> 0 THEN
        RAISE EXCEPTION 'account "%" still holds %', account_id, a.balance
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Withdraw the remaining %s before closing it.', a.balance);
    END IF;
    version := es.append_event(a.stream_id, 'AccountClosed', '{}'::jsonb,
                               expected_version => a.version, metadata => close_account.metadata);
    balance := a.balance;
    RETURN NEXT;
END
$$;

-- Reading the aggregate (always current, folded from the newest snapshot).
CREATE FUNCTION bank.balance(account_id text) RETURNS numeric
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN (bank.load_account(balance.account_id, allow_closed => true)).balance;

\echo '=== 3. Read models: account_balances (inline), transaction_history and daily_summary (async)'
-- A second guard: an overdraft that got past the commands (an es.append_event
-- of its own) fails its append here, with 23514. The rule is a domain's, not a
-- CHECK on the table: PostgreSQL parses and plans a table's CHECK constraints
-- anew for every statement that writes the table, and the handler's UPDATE
-- runs in every command (about 20,000 CPU instructions, 3% of a deposit); a
-- domain's constraint is kept in its type cache.
CREATE DOMAIN bank.balance_amount AS numeric(20,2)
    CONSTRAINT no_overdraft CHECK (VALUE >= 0);

CREATE TABLE bank.account_balances (
    account_id text                NOT NULL PRIMARY KEY,
    owner      text                NOT NULL,
    balance    bank.balance_amount NOT NULL,
    is_active  boolean             NOT NULL,
    version    bigint              NOT NULL,
    updated_at timestamptz         NOT NULL
);

-- The inline handler runs inside every command's append. No SET clause here
-- either: a projection runs its handler with the search_path in effect when
-- es.create_projection was called (recorded with it, whoever appends later),
-- and that is pinned just for that call, below.
CREATE FUNCTION bank.project_balance(e es.events) RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    IF e.event_type = '$StreamDeleted' THEN
        -- es.delete_stream removed the account's events: its row goes too
        DELETE FROM bank.account_balances b WHERE b.account_id = substr(e.stream_id, length('account-') + 1);
    ELSIF e.event_type LIKE '$%' THEN
        -- the store's other markers ($EventsRedacted): no money moved
        UPDATE bank.account_balances b SET version = e.version, updated_at = e.recorded_at
         WHERE b.account_id = substr(e.stream_id, length('account-') + 1);
    ELSIF e.event_type = 'AccountOpened' THEN
        INSERT INTO bank.account_balances
        VALUES (e.data->>'accountId', e.data->>'owner', (e.data->>'initialBalance')::numeric,
                true, e.version, e.recorded_at);
    ELSE
        UPDATE bank.account_balances b
           SET balance = b.balance + CASE e.event_type
                                        WHEN 'MoneyDeposited' THEN (e.data->>'amount')::numeric
                                        WHEN 'MoneyWithdrawn' THEN -(e.data->>'amount')::numeric
                                        ELSE 0 END,
               is_active = (e.event_type <> 'AccountClosed'),
               version = e.version,
               updated_at = e.recorded_at
         WHERE b.account_id = substr(e.stream_id, length('account-') + 1);
    END IF;
END
$$;

CREATE FUNCTION bank.reset_balances() RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    DELETE FROM bank.account_balances;
END;

SET search_path = pg_catalog, pg_temp;
SELECT es.create_projection('account_balances', 'bank.project_balance(es.events)', 'inline',
                            stream_types => ARRAY['account'], reset => 'bank.reset_balances()');
RESET search_path;

-- Every event of every account, with the balance after it.
CREATE TABLE bank.transaction_history (
    global_position bigint        PRIMARY KEY,
    account_id      text          NOT NULL,
    version         bigint        NOT NULL,
    type            text          NOT NULL CHECK (type IN ('open', 'deposit', 'withdrawal', 'close')),
    amount          numeric(20,2) NOT NULL,
    balance_after   numeric(20,2) NOT NULL,
    recorded_at     timestamptz   NOT NULL,
    UNIQUE (account_id, version)
);

-- A batch handler (es.events[]): the worker hands it every event of a
-- catch-up at once, in global order, and one statement writes them all.
-- balance_after is the account's balance before the batch plus the running
-- sum of the batch's amounts, in version order. The balance before is looked
-- up by its exact key, (account, version before the batch's first): a scan
-- for "the account's latest row" reads every row of the account on the
-- index page, hundreds for an old account. Only a version with no row (a
-- $EventsRedacted marker) takes that scan. (PL/pgSQL rather than SQL: it
-- keeps its statement's plan for the session, so the worker plans it once,
-- not once per batch.) plan_cache_mode makes sure of that: left to choose,
-- PostgreSQL's plan cache weighs the plans it made for the first five batches
-- (which knew how many events each held) against one for any batch; when
-- those were small, it makes a new plan for every batch from then on, with
-- the whole array in it: a catch-up of 50 events cost 4,900,000 CPU
-- instructions so, 1,950,000 with the plan made once.
CREATE FUNCTION bank.project_history(events es.events[]) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    INSERT INTO bank.transaction_history
    SELECT m.global_position, m.account_id, m.version, m.kind, m.amount,
           COALESCE((SELECT h.balance_after FROM bank.transaction_history h
                      WHERE h.account_id = m.account_id AND h.version = m.first_version - 1),
                    (SELECT h.balance_after FROM bank.transaction_history h
                      WHERE h.account_id = m.account_id AND h.version < m.first_version
                      ORDER BY h.version DESC LIMIT 1),
                    0)
             + sum(m.delta) OVER (PARTITION BY m.account_id ORDER BY m.version),
           m.recorded_at
      FROM (SELECT e.global_position, substr(e.stream_id, length('account-') + 1) AS account_id,
                   e.version, min(e.version) OVER (PARTITION BY e.stream_id) AS first_version,
                   e.recorded_at, k.kind, k.amount,
                   CASE k.kind WHEN 'withdrawal' THEN -k.amount ELSE k.amount END AS delta
              FROM unnest(events) e
             CROSS JOIN LATERAL (
                   SELECT CASE e.event_type WHEN 'AccountOpened'  THEN 'open'
                                            WHEN 'MoneyDeposited' THEN 'deposit'
                                            WHEN 'MoneyWithdrawn' THEN 'withdrawal'
                                            WHEN 'AccountClosed'  THEN 'close' END AS kind,
                          CASE e.event_type WHEN 'AccountOpened'  THEN (e.data->>'initialBalance')::numeric
                                            WHEN 'AccountClosed'  THEN 0
                                            ELSE (e.data->>'amount')::numeric END AS amount) k
             -- the store's markers ($StreamDeleted, $EventsRedacted) move no money
             WHERE k.kind IS NOT NULL) m;
END
$$;

CREATE FUNCTION bank.reset_history() RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    DELETE FROM bank.transaction_history;
END;

SELECT es.create_projection('transaction_history', 'bank.project_history(es.events[])', 'async',
                            stream_types => ARRAY['account'], reset => 'bank.reset_history()');

-- Money in and out per day (UTC). An opening balance counts as money in;
-- net_change is how much the bank's holdings changed that day.
CREATE TABLE bank.daily_summary (
    day              date          PRIMARY KEY,
    accounts_opened  integer       NOT NULL DEFAULT 0,
    opening_balances numeric(20,2) NOT NULL DEFAULT 0,
    deposit_count    integer       NOT NULL DEFAULT 0,
    deposits         numeric(20,2) NOT NULL DEFAULT 0,
    withdrawal_count integer       NOT NULL DEFAULT 0,
    withdrawals      numeric(20,2) NOT NULL DEFAULT 0,
    accounts_closed  integer       NOT NULL DEFAULT 0,
    net_change       numeric(20,2) GENERATED ALWAYS AS (opening_balances + deposits - withdrawals) STORED
);

-- A batch handler too: one upsert per day of the batch, not one per event
-- (an update of the same row for every event of a batch would walk every
-- version of it the batch wrote before). Planned once, as the one above.
CREATE FUNCTION bank.project_daily(events es.events[]) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    INSERT INTO bank.daily_summary AS s
           (day, accounts_opened, opening_balances, deposit_count, deposits, withdrawal_count, withdrawals, accounts_closed)
    SELECT (e.recorded_at AT TIME ZONE 'UTC')::date,
           count(*) FILTER (WHERE e.event_type = 'AccountOpened'),
           COALESCE(sum((e.data->>'initialBalance')::numeric) FILTER (WHERE e.event_type = 'AccountOpened'), 0),
           count(*) FILTER (WHERE e.event_type = 'MoneyDeposited'),
           COALESCE(sum((e.data->>'amount')::numeric) FILTER (WHERE e.event_type = 'MoneyDeposited'), 0),
           count(*) FILTER (WHERE e.event_type = 'MoneyWithdrawn'),
           COALESCE(sum((e.data->>'amount')::numeric) FILTER (WHERE e.event_type = 'MoneyWithdrawn'), 0),
           count(*) FILTER (WHERE e.event_type = 'AccountClosed')
      FROM unnest(events) e
     WHERE e.event_type IN ('AccountOpened', 'MoneyDeposited', 'MoneyWithdrawn', 'AccountClosed')
     GROUP BY 1
    ON CONFLICT (day) DO UPDATE
       SET accounts_opened  = s.accounts_opened  + EXCLUDED.accounts_opened,
           opening_balances = s.opening_balances + EXCLUDED.opening_balances,
           deposit_count    = s.deposit_count    + EXCLUDED.deposit_count,
           deposits         = s.deposits         + EXCLUDED.deposits,
           withdrawal_count = s.withdrawal_count + EXCLUDED.withdrawal_count,
           withdrawals      = s.withdrawals      + EXCLUDED.withdrawals,
           accounts_closed  = s.accounts_closed  + EXCLUDED.accounts_closed;
END
$$;

CREATE FUNCTION bank.reset_daily() RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    DELETE FROM bank.daily_summary;
END;

SELECT es.create_projection('daily_summary', 'bank.project_daily(es.events[])', 'async',
                            stream_types => ARRAY['account'], reset => 'bank.reset_daily()');

\o
\echo '=== 4. A day at the bank'
SELECT 'alice opens with 100.00' AS command, * FROM bank.open_account('alice', 'Alice Liddell', 100.00);
SELECT 'bob opens with nothing' AS command, * FROM bank.open_account('bob', 'Bob Dylan');
SELECT 'bob deposits 70' AS command, * FROM bank.deposit('bob', 70);
SELECT 'alice deposits 0.10' AS command, * FROM bank.deposit('alice', 0.10);
SELECT 'alice deposits 0.20 (exact: 100.30)' AS command, * FROM bank.deposit('alice', 0.20);
SELECT 'alice withdraws 30.30' AS command, * FROM bank.withdraw('alice', 30.30);
-- a busy afternoon for alice: 10 more transactions (a snapshot is taken at version 10)
SELECT 12.5 * i AS deposit, (SELECT version FROM bank.deposit('alice', 12.5 * i)) AS deposit_version,
       10 * i AS withdrawal, (SELECT version FROM bank.withdraw('alice', 10 * i)) AS withdrawal_version
  FROM generate_series(1, 5) i;
SELECT 'bob withdraws 70' AS command, * FROM bank.withdraw('bob', 70);
SELECT 'bob closes his account' AS command, * FROM bank.close_account('bob');

\echo '=== 5. Commands that break the rules are rejected, with a SQLSTATE, and write nothing'
SELECT count(*) AS events_before FROM es.events \gset
-- (a helper for this demo: runs a command and reports how it ended)
CREATE FUNCTION pg_temp.attempt(command text, OUT outcome text, OUT code text, OUT message text, OUT hint text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE command;
    outcome := 'accepted';
EXCEPTION WHEN OTHERS THEN
    outcome := 'rejected';
    code := SQLSTATE;
    message := SQLERRM;
    GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
END
$$;
SELECT c.command, r.* FROM (VALUES
    ($$bank.withdraw('alice', 1000)$$),
    ($$bank.withdraw('alice', -5)$$),
    ($$bank.deposit('alice', 0.001)$$),
    ($$bank.deposit('carol', 10)$$),
    ($$bank.deposit('bob', 10)$$),
    ($$bank.open_account('alice', 'Alice again')$$),
    ($$bank.close_account('alice')$$)
) c(command), LATERAL pg_temp.attempt('SELECT ' || c.command) r;
SELECT :events_before AS events_before, count(*) AS events_after FROM es.events;

\echo '=== 6. Current state: the aggregate (folded from the snapshot at version 10) and the inline read model'
SELECT version, state->>'owner' AS owner, state->>'balance' AS balance,
       state->>'isActive' AS active, state->>'transactionCount' AS transactions
  FROM es.load('account-alice');
SELECT stream_id, version, state->>'balance' AS balance FROM es.snapshots ORDER BY stream_id, version;
SELECT account_id, owner, balance, is_active, version FROM bank.account_balances ORDER BY account_id;

\echo '=== 7. Async read models, caught up by es.run_projection (the background worker does it where it runs)'
SELECT name, mode, lag, status FROM es.projections ORDER BY name;
SELECT es.run_projection('transaction_history') AS history_events,
       es.run_projection('daily_summary') AS summary_events;
SELECT account_id, version, type, amount, balance_after FROM bank.transaction_history ORDER BY global_position;
SELECT day, accounts_opened, opening_balances, deposit_count, deposits, withdrawal_count, withdrawals,
       accounts_closed, net_change
  FROM bank.daily_summary ORDER BY day;

\echo '=== 8. A read model damaged by hand is rebuilt from the events'
UPDATE bank.account_balances SET balance = 1000000 WHERE account_id = 'alice';
SELECT es.rebuild_projection('account_balances') AS events_replayed;
SELECT account_id, balance FROM bank.account_balances ORDER BY account_id;

\echo '=== 9. Alice''s history, and her account as it was at version 3 and at opening time (time travel)'
SELECT version, event_type, COALESCE(data->>'amount', data->>'initialBalance') AS amount, recorded_at
  FROM es.read_stream('account-alice');
SELECT version, state->>'balance' AS balance, state->>'transactionCount' AS transactions
  FROM es.load('account-alice', 3);
SELECT version, state->>'balance' AS balance
  FROM es.load_at('account-alice', (SELECT recorded_at FROM es.read_stream('account-alice', 1, 1)));

\echo '=== 10. The store at a glance: es.stats()'
SELECT jsonb_pretty(es.stats() - 'horizon' - 'last_position') AS stats;

\echo '=== 11. The deposits evolve: they gain a currency (schema evolution)'
-- Deposits were written as {"amount"}. From now on they carry a currency:
-- an upcaster reads every older deposit (schema version 1) as version 2 with
-- the bank's default currency, a schema checks every new deposit on append,
-- and the deposit command writes the new shape. Stored events never change.
\o /dev/null
SELECT es.define_upcaster('MoneyDeposited', 1, steps => '[{"set": "currency", "value": "EUR"}]');
SELECT es.define_event_schema('MoneyDeposited', $json${
  "type": "object",
  "required": ["amount", "currency"],
  "additionalProperties": false,
  "properties": {
    "amount":   {"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.01},
    "currency": {"type": "string", "pattern": "^[A-Z]{3}$"}
  }
}$json$);
DROP FUNCTION bank.deposit(text, numeric, jsonb);
CREATE FUNCTION bank.deposit(account_id text, amount numeric, metadata jsonb DEFAULT NULL,
                             currency text DEFAULT 'EUR')
RETURNS TABLE (version bigint, balance numeric)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    amt constant numeric := bank.check_amount(amount);
    a bank.loaded_account := bank.load_account(deposit.account_id);
BEGIN
    version := es.append_event(a.stream_id, 'MoneyDeposited',
                               jsonb_build_object('amount', amt, 'currency', deposit.currency),
                               expected_version => a.version, metadata => deposit.metadata);
    balance := a.balance + amt;
    RETURN NEXT;
END
$$;
\o
SELECT 'gail opens and deposits 25 USD' AS command, * FROM bank.open_account('gail', 'Gail Tan');
SELECT * FROM bank.deposit('gail', 25, currency => 'USD');
-- the schema refuses a currency that is not three capital letters (23514), and writes nothing
SELECT c.command, r.outcome, r.code, r.message FROM (VALUES
    ($$bank.deposit('gail', 5, currency => 'euro')$$)
) c(command), LATERAL pg_temp.attempt('SELECT ' || c.command) r;
-- every reader sees version 2: alice's old deposits read with the default currency
SELECT version, event_type, schema_version, data FROM es.read_stream('account-alice', 2, 3);
SELECT version, schema_version, data FROM es.read_stream('account-gail') WHERE event_type = 'MoneyDeposited';
-- raw => true: what is stored
SELECT version, schema_version, data FROM es.read_stream('account-alice', 2, 3, raw => true);
SELECT event_type, current_version, schema_mode, events FROM es.event_types ORDER BY event_type;

\echo '=== 12. A customer leaves and asks to be forgotten: redact, archive, audit (docs/lifecycle.md)'
-- Hugo closes his account and invokes his right to erasure. His name is in
-- his AccountOpened event, in the aggregate's state and in the inline read
-- model. es.redact rewrites his events in place, rebuilds the snapshots and
-- the inline read model (it has a reset function) and appends an
-- "$EventsRedacted" event, so every consumer learns of it in order. His closed
-- account then goes to cold storage: es.read_stream and es.load still read it,
-- nothing can be appended. Both changes are written to es.audit. (They are
-- for the extension's owner and the roles es.grant_admin names.)
\o /dev/null
SELECT bank.open_account('hugo', 'Hugo Strange', 40);
SELECT bank.withdraw('hugo', 40);
SELECT bank.close_account('hugo');
\o
SELECT es.redact('account-hugo', '{"owner": "[erased]"}', 'right to erasure, request #4711') AS events_rewritten;
SELECT version, event_type, data FROM es.read_stream('account-hugo');
SELECT state->>'owner' AS owner, state->>'balance' AS balance, state->>'isActive' AS active
  FROM es.load('account-hugo');
SELECT account_id, owner, balance, is_active, version FROM bank.account_balances WHERE account_id = 'hugo';
SELECT es.archive_stream('account-hugo', 'closed and erased') AS events_archived;
SELECT (SELECT count(*) FROM es.events WHERE stream_id = 'account-hugo') AS in_hot_table,
       (SELECT count(*) FROM es.read_stream('account-hugo')) AS still_readable;
SELECT c.command, r.outcome, r.code, r.message FROM (VALUES
    ($$es.append_event('account-hugo', 'MoneyDeposited', '{"amount": 1, "currency": "EUR"}')$$)
) c(command), LATERAL pg_temp.attempt('SELECT ' || c.command) r;
SELECT operation, stream_id, versions, event_count, reason FROM es.audit ORDER BY id;
