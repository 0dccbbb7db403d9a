-- Checks of examples/partitions.sql, run by scripts/test_examples.sh in the
-- ROUTER database where partitions.sql has just run (16 logical partitions,
-- p in partition database p % 4). Expected at the end of the example:
--   alice  v11 307.50  (partition 5)     bob   v2 70.00 (9)    carol v3 225.00 (14)
--   dave   v4  15.25   (5)               frank v3 0.00, closed (12)
--   judy   v3  0.00    (15)
-- Reads only, or commands that are refused before they write: whatever a
-- check fails to undo here would be committed on a partition at once.
\ir lib.sql
-- PL/Proxy says NOTICE when it replaces a connection after a remote error
SET client_min_messages = warning;

CREATE TEMP TABLE accounts (account text PRIMARY KEY, stream_id text NOT NULL);
INSERT INTO accounts
SELECT a, 'account-' || a FROM unnest(ARRAY['alice', 'bob', 'carol', 'dave', 'frank', 'judy']) a;

-- The layout
SELECT pg_temp.check_eq('router: 16 logical partitions over 4 databases, partition p in the database of p % 4',
                        (SELECT jsonb_build_array(count(*), count(DISTINCT connstr),
                                                  count(*) FILTER (WHERE connstr <> (SELECT q.connstr FROM es.partitions() q
                                                                                      WHERE q.partition = p.partition % 4)))
                           FROM es.partitions() p),
                        '[16, 4, 0]'::jsonb);
SELECT pg_temp.check_eq('the accounts live in all four databases (partitions 5, 9, 14, 5, 12, 15)',
                        (SELECT jsonb_build_array(jsonb_agg(es.partition_of(a.stream_id) ORDER BY a.account),
                                                  count(DISTINCT p.connstr))
                           FROM accounts a JOIN es.partitions() p ON p.partition = es.partition_of(a.stream_id)),
                        '[[5, 9, 14, 5, 12, 15], 4]'::jsonb);
SELECT pg_temp.check_eq('es.partition_of is hashtext(stream_id) & 15',
                        (SELECT count(*) FROM accounts WHERE es.partition_of(stream_id) <> hashtext(stream_id) & 15),
                        0::bigint);
SELECT pg_temp.check_search_paths('bank');

-- The accounts: what the example did
SELECT pg_temp.check_eq('every account''s version, balance and status as the example left it',
                        (SELECT jsonb_object_agg(a.account, jsonb_build_array(l.version, l.state->'balance', l.state->'isActive'))
                           FROM accounts a CROSS JOIN LATERAL es.load(a.stream_id) l),
                        '{"alice": [11, 307.50, true], "bob": [2, 70.00, true], "carol": [3, 225.00, true],
                          "dave": [4, 15.25, true], "frank": [3, 0.00, false], "judy": [3, 0.00, true]}'::jsonb);
SELECT pg_temp.check_eq('alice: owner and 10 transactions; exact decimals (100.00 + 0.10 + 0.20 = 100.30 at version 3)',
                        (SELECT jsonb_build_array(l.state->'owner', l.state->'transactionCount') FROM es.load('account-alice') l)
                        || (SELECT jsonb_build_array(l.state->>'balance') FROM es.load('account-alice', 3) l),
                        '["Alice Liddell", 10, "100.30"]'::jsonb);
SELECT pg_temp.check('es.load equals the money in the stream, at every version of every account (alice''s from her snapshot at 10)',
                     count(*) = 26 AND bool_and((l.state->>'balance')::numeric = f.balance),
                     format('%s versions; differ: %s', count(*),
                            string_agg(f.stream_id || '@' || f.version, ', ') FILTER (WHERE (l.state->>'balance')::numeric <> f.balance)))
  FROM (SELECT e.stream_id, e.version,
               sum(CASE e.event_type WHEN 'AccountOpened' THEN (e.data->>'initialBalance')::numeric
                                     WHEN 'MoneyDeposited' THEN (e.data->>'amount')::numeric
                                     WHEN 'MoneyWithdrawn' THEN -(e.data->>'amount')::numeric
                                     ELSE 0 END) OVER (PARTITION BY e.stream_id ORDER BY e.version) AS balance
          FROM accounts a CROSS JOIN LATERAL es.read_stream(a.stream_id) e) f
  CROSS JOIN LATERAL es.load(f.stream_id, f.version) l;

-- Every stream wholly in its logical partition. es.read_all holds back what
-- an older transaction anywhere in the cluster may still precede: wait until
-- the partitions hand out every event of the accounts.
CREATE FUNCTION pg_temp.read_every_partition(timeout_s integer DEFAULT 30) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    deadline constant timestamptz := pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => timeout_s);
    want bigint;
BEGIN
    LOOP
        DROP TABLE IF EXISTS pg_temp.partition_events;
        CREATE TEMP TABLE partition_events AS
        SELECT p.partition, e.*
          FROM es.partitions() p
         CROSS JOIN LATERAL es.read_all(p.partition, 0, 100000, stream_types => ARRAY['account']) e;
        SELECT pg_catalog.sum(es.stream_version(a.stream_id)) INTO want FROM pg_temp.accounts a;
        IF (SELECT pg_catalog.count(*) FROM pg_temp.partition_events) >= want THEN
            RETURN 'ok - every logical partition read to its end (' || want || ' events of the accounts)';
        END IF;
        IF pg_catalog.clock_timestamp() > deadline THEN
            RETURN pg_catalog.format('FAIL - the partitions hand out %s events of the accounts after %ss, the streams hold %s',
                                     (SELECT pg_catalog.count(*) FROM pg_temp.partition_events), timeout_s, want);
        END IF;
        PERFORM pg_catalog.pg_sleep(0.05);
    END LOOP;
END
$$;
SELECT pg_temp.read_every_partition();
SELECT pg_temp.check_eq('every event of the accounts is read from its stream''s logical partition, none from another',
                        (SELECT count(*) FROM partition_events WHERE partition <> es.partition_of(stream_id)), 0::bigint);
SELECT pg_temp.check('every account''s stream is wholly in one partition, versions 1..n in that partition''s order',
                     bool_and(s.versions = (SELECT array_agg(v::bigint) FROM generate_series(1, es.stream_version(a.stream_id)) v)
                              AND s.partitions = 1),
                     string_agg(a.account, ', ') FILTER (WHERE s.versions IS DISTINCT FROM
                         (SELECT array_agg(v::bigint) FROM generate_series(1, es.stream_version(a.stream_id)) v) OR s.partitions <> 1))
  FROM accounts a
  LEFT JOIN (SELECT stream_id, array_agg(version ORDER BY global_position) AS versions,
                    count(DISTINCT partition) AS partitions
               FROM partition_events GROUP BY stream_id) s ON s.stream_id = a.stream_id;
SELECT pg_temp.check_eq('no event is handed out twice (one event id, one position each)',
                        (SELECT jsonb_build_array(count(*) - count(DISTINCT event_id), count(*) - count(DISTINCT (partition, global_position)))
                           FROM partition_events),
                        '[0, 0]'::jsonb);
SELECT pg_temp.check_eq('es.read_all(p, checkpoint, 3) is the next page after the checkpoint',
                        (SELECT array_agg(e.event_id ORDER BY e.global_position)
                           FROM es.read_all(5, (SELECT global_position FROM partition_events WHERE partition = 5
                                                 ORDER BY global_position OFFSET 2 LIMIT 1), 3) e),
                        (SELECT array_agg(event_id ORDER BY global_position)
                           FROM (SELECT * FROM partition_events WHERE partition = 5 ORDER BY global_position OFFSET 3 LIMIT 3) x));

-- Transfers
SELECT pg_temp.check_eq('the transfer refused in BEGIN ... COMMIT wrote nothing, on either account',
                        (SELECT count(*) FROM partition_events WHERE metadata->>'transfer' = 't-refused'), 0::bigint);
SELECT pg_temp.check_eq('saga t-1: a debit of alice and a credit of carol, 25.00 each, in two databases',
                        (SELECT jsonb_agg(jsonb_build_array(e.metadata->>'step', e.stream_id, e.event_type, e.data->'amount')
                                          ORDER BY e.metadata->>'step' DESC)
                           FROM partition_events e WHERE e.metadata->>'transfer' = 't-1')
                        || (SELECT jsonb_build_array(count(DISTINCT p.connstr))
                              FROM partition_events e JOIN es.partitions() p USING (partition)
                             WHERE e.metadata->>'transfer' = 't-1'),
                        '[["debit", "account-alice", "MoneyWithdrawn", 25.00],
                          ["credit", "account-carol", "MoneyDeposited", 25.00], 2]'::jsonb);
SELECT pg_temp.check_eq('saga t-2: dave debited and refunded, nothing written on frank''s closed account',
                        (SELECT jsonb_agg(jsonb_build_array(e.metadata->>'step', e.stream_id, e.event_type, e.data->'amount')
                                          ORDER BY e.version)
                           FROM partition_events e WHERE e.metadata->>'transfer' = 't-2'),
                        '[["debit", "account-dave", "MoneyWithdrawn", 5.00],
                          ["refund", "account-dave", "MoneyDeposited", 5.00]]'::jsonb);

-- Rules: rejected with their SQLSTATE (each before its append: pg_temp.rejects
-- runs the command in an EXCEPTION block, where the router refuses writes)
SELECT pg_temp.rejects('withdraw more than the balance', $$SELECT bank.withdraw('bob', 70.01)$$, '23514');
SELECT pg_temp.rejects('withdraw 0', $$SELECT bank.withdraw('bob', 0)$$, '22023');
SELECT pg_temp.rejects('deposit with 3 decimals', $$SELECT bank.deposit('bob', 1.001)$$, '22023');
SELECT pg_temp.rejects('deposit NULL', $$SELECT bank.deposit('bob', NULL)$$, '22004');
SELECT pg_temp.rejects('deposit to a malformed account id', $$SELECT bank.deposit('no such/id', 1)$$, '22023');
SELECT pg_temp.rejects('deposit to an unknown account', $$SELECT bank.deposit('zoe', 1)$$, 'P0002');
SELECT pg_temp.rejects('withdraw from a closed account', $$SELECT bank.withdraw('frank', 1)$$, '55000');
SELECT pg_temp.rejects('close an account that holds money', $$SELECT bank.close_account('bob')$$, '55000');
SELECT pg_temp.rejects('open an existing account', $$SELECT bank.open_account('carol', 'Someone')$$, '23505');
SELECT pg_temp.rejects('open with an empty owner', $$SELECT bank.open_account('zoe', ' ')$$, '22023');
SELECT pg_temp.rejects('a valid command inside an EXCEPTION block is refused by the router', $$SELECT bank.deposit('bob', 1)$$, '25001');
SELECT pg_temp.rejects('es.read_all of a partition the router does not have', $$SELECT * FROM es.read_all(16)$$, '22023');
SELECT pg_temp.check_eq('the rejected commands wrote nothing (the versions are unchanged)',
                        (SELECT sum(es.stream_version(stream_id)) FROM accounts), 26::numeric);
