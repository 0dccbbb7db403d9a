-- The bank through a router: accounts spread over several pg_eventsource
-- databases behind a router database (pg_eventsource_router, docs/partitions.md).
-- Run it with psql connected to the ROUTER, in autocommit (psql's default):
-- `bash scripts/run.sh partitions` makes four partition databases es_part0 ..
-- es_part3, a router es_router with 16 logical partitions (partition p in
-- es_part<p % 4>), and runs this file there.
--
-- What changes against examples/bank.sql:
--   * the aggregate is defined once, on the router, which defines it in every
--     partition database;
--   * the commands live on the router: each loads the account (es.load, on the
--     account's partition), decides, and appends ONE event with the loaded
--     version as the expected version. The version check runs on the
--     partition, so racing commands stay correct; the loser gets 40001;
--   * PL/Proxy commits each remote call at once, so the router refuses (25001)
--     a write inside BEGIN ... COMMIT, inside an EXCEPTION block, or as the
--     second write of one transaction. Every command is a statement of its own;
--     a transfer between two accounts is a process (a saga), not a transaction;
--   * there is no one global order: each logical partition has its own, read
--     with es.read_all(partition, ...); a consumer keeps one checkpoint per
--     partition (examples/clients/python/partitions_consumer.py);
--   * no inline or async projections here: those run inside each partition
--     database; the read model lives with its consumer.
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
--   25001 active_sql_transaction           the command ran inside BEGIN ... COMMIT, an EXCEPTION
--                                          block, or after another write in the same transaction

\set ON_ERROR_STOP 1
\set QUIET 1
\pset footer off
-- PL/Proxy says NOTICE when it replaces a connection after a remote error
SET client_min_messages = warning;

DO $$
BEGIN
    IF pg_catalog.to_regprocedure('es.configure_partitions(text[])') IS NULL THEN
        RAISE EXCEPTION 'database % is not a router: examples/partitions.sql runs in a database with pg_eventsource_router',
                        pg_catalog.current_database()
            USING ERRCODE = 'undefined_function',
                  HINT = 'bash scripts/run.sh partitions sets up four partition databases and a router (es_router) and runs this file there.';
    END IF;
END
$$;

\echo '=== 0. The layout: logical partitions and the database each lives in'
-- A power of two of logical partitions, fixed at es.configure_partitions;
-- several share a database, so that one database can later be split in two
-- without moving any stream between logical partitions.
SELECT connstr, pg_catalog.string_agg(partition::text, ', ' ORDER BY partition) AS logical_partitions
  FROM es.partitions() GROUP BY connstr ORDER BY connstr;

-- set-up statements print nothing (errors still show)
\o /dev/null

\echo '=== 1. The account aggregate, defined in every partition database through the router'
-- One statement of its own: a definition is a writing call (it commits in
-- every partition database at once). If one database is down, the call fails
-- there; the same call again completes it (definitions are idempotent).
SELECT es.define_aggregate('account',
  reducers => $json${
    "AccountOpened":  [{"set": "accountId", "from": "$.accountId"},
                       {"set": "owner", "from": "$.owner"},
                       {"set": "balance", "from": "$.initialBalance"},
                       {"set": "isActive", "value": true}],
    "MoneyDeposited": [{"add": "balance", "from": "$.amount"},
                       {"inc": "transactionCount"}],
    "MoneyWithdrawn": [{"sub": "balance", "from": "$.amount"},
                       {"inc": "transactionCount"}],
    "AccountClosed":  [{"set": "isActive", "value": false}]
  }$json$,
  initial_state => '{"balance": 0, "isActive": false, "transactionCount": 0}',
  snapshot_every => 10);

\echo '=== 2. Commands on the router: schema bank'
-- The command functions live in the router database only; they reach the
-- partitions through es.load, es.stream_version and es.append_event. None has
-- an EXCEPTION block: a write inside one is refused (25001), so a retry after
-- 40001 belongs in the client.
CREATE SCHEMA bank;

-- 'alice' -> stream 'account-alice'
CREATE FUNCTION bank.stream_id(account_id text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF account_id IS NULL THEN
        RAISE EXCEPTION 'account_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- A length test and a character class rather than '^[...]{1,100}$': the
    -- regex engine builds a state per repetition of a bounded repeat, on every
    -- call (about 40% of this function's cost in the bank benchmark).
    IF pg_catalog.length(account_id) NOT BETWEEN 1 AND 100
       OR pg_catalog.regexp_like(account_id, '[^A-Za-z0-9_.-]') THEN
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
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF amount IS NULL THEN
        RAISE EXCEPTION 'amount must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF amount < 0 OR (amount = 0 AND NOT allow_zero) OR amount = 'NaN' THEN
        RAISE EXCEPTION 'amount must be % than 0, got %', CASE WHEN allow_zero THEN 'at least' ELSE 'more' END, amount
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF amount <> pg_catalog.round(amount, 2) THEN
        RAISE EXCEPTION 'amount % has more than 2 decimal places', amount
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Amounts are in units of 0.01.';
    END IF;
    IF amount >= 1e15 THEN
        RAISE EXCEPTION 'amount % is too large', amount USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN pg_catalog.round(amount, 2);
END
$$;

-- An account's current state, loaded on its partition: P0002 when it does not
-- exist and, unless allow_closed, 55000 when it is closed. VOLATILE: es.load
-- is a remote call.
CREATE TYPE bank.loaded_account AS (stream_id text, version bigint, balance numeric, is_active boolean);

CREATE FUNCTION bank.load_account(account_id text, allow_closed boolean DEFAULT false)
RETURNS bank.loaded_account
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a bank.loaded_account;
BEGIN
    SELECT l.stream_id, l.version, (l.state->>'balance')::numeric, (l.state->>'isActive')::boolean
      INTO a
      FROM es.load(bank.stream_id(load_account.account_id)) l;
    IF a.version IS NULL OR a.version = 0 THEN
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

CREATE FUNCTION bank.open_account(account_id text, owner text, initial numeric DEFAULT 0,
                                  metadata jsonb DEFAULT NULL)
RETURNS TABLE (version bigint, balance numeric)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sid constant text    := bank.stream_id(open_account.account_id);
    amt constant numeric := bank.check_amount(initial, allow_zero => true);
BEGIN
    IF owner IS NULL THEN
        RAISE EXCEPTION 'owner must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pg_catalog.btrim(owner) = '' THEN
        RAISE EXCEPTION 'owner must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF es.stream_version(sid) > 0 THEN
        RAISE EXCEPTION 'account "%" already exists', account_id
            USING ERRCODE = 'unique_violation', HINT = 'Account ids are never reused, not even after closing.';
    END IF;
    -- expected version 0: if someone opens the same account first, this
    -- append fails with 40001 on the partition, and the retry reports 23505.
    version := es.append_event(sid, 'AccountOpened',
                               pg_catalog.jsonb_build_object('accountId', account_id,
                                                             'owner', pg_catalog.btrim(owner),
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
                               pg_catalog.jsonb_build_object('amount', amt),
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
    -- since, the partition refuses this append with 40001 and writes nothing.
    version := es.append_event(a.stream_id, 'MoneyWithdrawn',
                               pg_catalog.jsonb_build_object('amount', amt),
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
                  HINT = pg_catalog.format('Withdraw the remaining %s before closing it.', a.balance);
    END IF;
    version := es.append_event(a.stream_id, 'AccountClosed', '{}'::jsonb,
                               expected_version => a.version, metadata => close_account.metadata);
    balance := a.balance;
    RETURN NEXT;
END
$$;

\o
\echo '=== 3. A day at the bank: every command a statement of its own'
SELECT 'alice opens with 100.00' AS command, * FROM bank.open_account('alice', 'Alice Liddell', 100.00);
SELECT 'bob opens with nothing' AS command, * FROM bank.open_account('bob', 'Bob Dylan');
SELECT 'carol opens with 250.00' AS command, * FROM bank.open_account('carol', 'Carol Shaw', 250.00);
SELECT 'dave opens with 10.00' AS command, * FROM bank.open_account('dave', 'Dave Brubeck', 10.00);
SELECT 'frank opens with 20.00' AS command, * FROM bank.open_account('frank', 'Frank Zappa', 20.00);
SELECT 'judy opens with 75.50' AS command, * FROM bank.open_account('judy', 'Judy Garland', 75.50);
SELECT 'bob deposits 70.00' AS command, * FROM bank.deposit('bob', 70.00);
SELECT 'alice deposits 0.10' AS command, * FROM bank.deposit('alice', 0.10);
SELECT 'alice deposits 0.20 (exact: 100.30)' AS command, * FROM bank.deposit('alice', 0.20);
SELECT 'alice withdraws 30.30' AS command, * FROM bank.withdraw('alice', 30.30);
SELECT 'carol withdraws 50.00' AS command, * FROM bank.withdraw('carol', 50.00);
SELECT 'dave deposits 5.25' AS command, * FROM bank.deposit('dave', 5.25);
SELECT 'judy deposits 24.50' AS command, * FROM bank.deposit('judy', 24.50);
SELECT 'judy withdraws 100.00' AS command, * FROM bank.withdraw('judy', 100.00);
SELECT 'frank withdraws 20.00' AS command, * FROM bank.withdraw('frank', 20.00);
SELECT 'frank closes his account' AS command, * FROM bank.close_account('frank');
-- alice's busy afternoon: six deposits. Not as one SELECT over
-- generate_series: that would be six writes in one transaction, and the
-- router refuses the second (25001). psql's \gexec sends each generated
-- command as a statement of its own.
SELECT pg_catalog.format('SELECT %L AS command, * FROM bank.deposit(%L, %s)',
                         'alice deposits ' || (12.5 * i)::numeric(10,2), 'alice', 12.5 * i)
  FROM pg_catalog.generate_series(1, 6) i \gexec

\echo '=== 4. Where each account lives: its logical partition and that partition''s database'
-- hashtext(stream_id) & (n - 1), PL/Proxy's own rule: alice and dave share
-- partition 5; bob is in partition 9 of the same database; carol, frank and
-- judy live in the three other databases.
SELECT a.account, bank.stream_id(a.account) AS stream_id, es.partition_of(bank.stream_id(a.account)) AS partition, p.connstr
  FROM (VALUES ('alice'), ('bob'), ('carol'), ('dave'), ('frank'), ('judy')) a(account)
  JOIN es.partitions() p ON p.partition = es.partition_of(bank.stream_id(a.account))
 ORDER BY partition, account;

\echo '=== 5. One account: alice''s stream and her state (read on her partition, folded from its snapshot at version 10)'
SELECT version, event_type, COALESCE(data->>'amount', data->>'initialBalance') AS amount, recorded_at
  FROM es.read_stream('account-alice');
SELECT version, state->>'owner' AS owner, state->>'balance' AS balance,
       state->>'isActive' AS active, state->>'transactionCount' AS transactions
  FROM es.load('account-alice');

\echo '=== 6. One logical partition: es.read_all(partition), in that partition''s order'
-- Alice's partition holds dave too: their events interleave in the order they
-- committed, each stream in version order. Positions are the partition
-- database's: they order one partition, not the whole store, so a consumer
-- keeps one checkpoint per logical partition and reads each with
-- es.read_all(partition, checkpoint, page).
SELECT es.partition_of('account-alice') AS p \gset
SELECT global_position, stream_id, version, event_type
  FROM es.read_all(:p);
-- the next page after a checkpoint (here: the third event), three at most
SELECT global_position AS checkpoint FROM es.read_all(:p, 0, 3) ORDER BY global_position DESC LIMIT 1 \gset
SELECT global_position, stream_id, version, event_type
  FROM es.read_all(:p, :checkpoint, 3);

\echo '=== 7. Commands that break the rules are rejected, with their SQLSTATE, and write nothing'
SELECT pg_catalog.sum(es.stream_version(bank.stream_id(a))) AS versions_before
  FROM pg_catalog.unnest(ARRAY['alice', 'bob', 'carol', 'dave', 'frank', 'judy']) a \gset
-- (a helper for this demo: runs a command in an EXCEPTION block and reports
-- how it ended. An EXCEPTION block is a subtransaction, so a command that gets
-- as far as its append is refused there with 25001: the last line.)
\o /dev/null
CREATE FUNCTION pg_temp.attempt(command text, OUT outcome text, OUT code text, OUT message text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE command;
    outcome := 'accepted';
EXCEPTION WHEN OTHERS THEN
    outcome := 'rejected';
    code := SQLSTATE;
    message := SQLERRM;
END
$$;
\o
SELECT c.command, r.* FROM (VALUES
    ($$bank.withdraw('alice', 1000)$$),
    ($$bank.withdraw('alice', -5)$$),
    ($$bank.deposit('alice', 0.001)$$),
    ($$bank.deposit('zoe', 10)$$),
    ($$bank.deposit('frank', 10)$$),
    ($$bank.open_account('alice', 'Alice again')$$),
    ($$bank.close_account('carol')$$),
    ($$bank.deposit('bob', 1)$$)
) c(command), LATERAL pg_temp.attempt('SELECT ' || c.command) r;
SELECT :versions_before AS versions_before, pg_catalog.sum(es.stream_version(bank.stream_id(a))) AS versions_after
  FROM pg_catalog.unnest(ARRAY['alice', 'bob', 'carol', 'dave', 'frank', 'judy']) a;

\echo '=== 8. What a router refuses: a transfer as one transaction (BEGIN ... COMMIT)'
-- In one database, withdraw + deposit inside BEGIN ... COMMIT is atomic. Here
-- each append is committed by its partition at once, before the router's
-- transaction ends: a ROLLBACK could not undo the first one if the second
-- failed. So the router refuses the first write already, with 25001, before
-- anything is written; the rest of the block is aborted, and COMMIT rolls back.
-- (The same goes for both commands in one statement or one query string: the
-- first would commit, and the second would be refused.)
SELECT es.stream_version('account-alice') AS alice_before, es.stream_version('account-bob') AS bob_before \gset
\set ON_ERROR_STOP 0
BEGIN;
SELECT * FROM bank.withdraw('alice', 40.00, '{"transfer": "t-refused", "step": "debit"}');
\set refused_sqlstate :LAST_ERROR_SQLSTATE
SELECT * FROM bank.deposit('bob', 40.00, '{"transfer": "t-refused", "step": "credit"}');
COMMIT;
\set ON_ERROR_STOP 1
\echo 'the transfer in BEGIN ... COMMIT was refused with SQLSTATE' :refused_sqlstate
SELECT :alice_before AS alice_before, es.stream_version('account-alice') AS alice_after,
       :bob_before AS bob_before, es.stream_version('account-bob') AS bob_after;

\echo '=== 9. A transfer between partitions is a process (a saga): debit, then credit, each its own command'
-- alice (partition 5) pays carol (partition 14, another database) 25.00. No
-- transaction spans two partitions, and even two partitions that share a
-- database today may be split apart tomorrow: so the transfer is a process. It
-- debits the source, then credits the target, each a command of its own
-- (retried on 40001), both tagged with the transfer's id; if the credit is
-- refused, it compensates with a refund to the source. A real process keeps
-- its progress (debited, credited, refunded) where it survives a crash, e.g. in
-- a stream of its own, so that it resumes and never pays twice.
SELECT 't-1 debit alice 25.00' AS step, * FROM bank.withdraw('alice', 25.00, '{"transfer": "t-1", "step": "debit"}');
SELECT 't-1 credit carol 25.00' AS step, * FROM bank.deposit('carol', 25.00, '{"transfer": "t-1", "step": "credit"}');

\echo '=== 10. A saga that compensates: dave pays frank, whose account is closed'
SELECT 't-2 debit dave 5.00' AS step, * FROM bank.withdraw('dave', 5.00, '{"transfer": "t-2", "step": "debit"}');
-- the credit is refused (55000, frank's account is closed): shown, not fatal
\set ON_ERROR_STOP 0
SELECT 't-2 credit frank 5.00' AS step, * FROM bank.deposit('frank', 5.00, '{"transfer": "t-2", "step": "credit"}');
\set ON_ERROR_STOP 1
\if :ERROR
\echo 'the credit was refused with SQLSTATE' :LAST_ERROR_SQLSTATE '- the saga compensates: it refunds dave'
SELECT 't-2 refund dave 5.00' AS step, * FROM bank.deposit('dave', 5.00, '{"transfer": "t-2", "step": "refund"}');
\endif
-- every step of both transfers, found by their metadata on each account's partition
SELECT e.metadata->>'transfer' AS transfer, e.metadata->>'step' AS step, e.stream_id,
       es.partition_of(e.stream_id) AS partition, e.event_type, e.data->>'amount' AS amount
  FROM pg_catalog.unnest(ARRAY['alice', 'carol', 'dave', 'frank']) a
 CROSS JOIN LATERAL es.read_stream(bank.stream_id(a)) e
 WHERE e.metadata ? 'transfer'
 ORDER BY transfer, e.recorded_at;

\echo '=== 11. Every account at the end of the day'
SELECT l.stream_id, es.partition_of(l.stream_id) AS partition, l.version,
       l.state->>'owner' AS owner, l.state->>'balance' AS balance, l.state->>'isActive' AS active
  FROM pg_catalog.unnest(ARRAY['alice', 'bob', 'carol', 'dave', 'frank', 'judy']) a
 CROSS JOIN LATERAL es.load(bank.stream_id(a)) l
 ORDER BY l.stream_id;
