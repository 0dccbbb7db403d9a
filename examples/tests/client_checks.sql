-- Checks of one bank client's run (examples/clients/*), by scripts/test_examples.sh.
-- psql variables from the client's RESULT line: client, account, balance,
-- withdrawn, deposited, accepted, rejected, retries; and initial, ops (the
-- opening balance and the number of operations the workers tried).
\ir lib.sql
SELECT 'account-' || :'account' AS stream \gset

SELECT pg_temp.check_eq(:'client' || ': the printed balance is the loaded one',
                        (SELECT (state->>'balance')::numeric FROM es.load(:'stream')), :'balance'::numeric);
SELECT pg_temp.check(:'client' || ': the balance is not negative', :'balance'::numeric >= 0);
SELECT pg_temp.check_eq(:'client' || ': the balance is the opening balance plus the deposits minus the withdrawals in the store',
                        :'balance'::numeric,
                        (SELECT sum(CASE event_type WHEN 'AccountOpened' THEN (data->>'initialBalance')::numeric
                                                    WHEN 'MoneyDeposited' THEN (data->>'amount')::numeric
                                                    WHEN 'MoneyWithdrawn' THEN -(data->>'amount')::numeric END)
                           FROM es.events WHERE stream_id = :'stream'));
SELECT pg_temp.check_eq(:'client' || ': the store holds exactly the accepted operations',
                        (SELECT jsonb_build_array(count(*) - 1,
                                                  COALESCE(sum((data->>'amount')::numeric) FILTER (WHERE event_type = 'MoneyWithdrawn'), 0),
                                                  COALESCE(sum((data->>'amount')::numeric) FILTER (WHERE event_type = 'MoneyDeposited'), 0),
                                                  (SELECT (data->>'initialBalance')::numeric FROM es.events WHERE stream_id = :'stream' AND version = 1))
                           FROM es.events WHERE stream_id = :'stream'),
                        jsonb_build_array(:'accepted'::int, :'withdrawn'::numeric, :'deposited'::numeric, :'initial'::numeric));
SELECT pg_temp.check_eq(:'client' || ': versions 1..n without gaps',
                        (SELECT array_agg(version ORDER BY version) FROM es.events WHERE stream_id = :'stream'),
                        (SELECT array_agg(v::bigint) FROM generate_series(1, :'accepted'::int + 1) v));
SELECT pg_temp.check_eq(:'client' || ': every operation ended once, accepted or refused for insufficient funds',
                        :'accepted'::int + :'rejected'::int, :'ops'::int);
SELECT pg_temp.check(:'client' || ': withdrawals were refused (more was asked than the account held)', :'rejected'::int > 0);
SELECT pg_temp.check(:'client' || ': workers lost races and retried after 40001', :'retries'::int > 0,
                     'no serialization failure happened, so the retry path was not exercised');
SELECT pg_temp.check_eq(:'client' || ': the inline read model has the same balance',
                        (SELECT balance::numeric FROM bank.account_balances WHERE account_id = :'account'), :'balance'::numeric);
SELECT pg_temp.wait_horizon();
SELECT sum(n) AS replayed FROM (SELECT es.run_projection('transaction_history', 100000) n) x \gset
SELECT pg_temp.check(:'client' || ': the balance never went below zero, at any version (transaction_history)',
                     count(*) = :'accepted'::int + 1 AND min(balance_after) >= 0
                     AND (array_agg(balance_after ORDER BY version DESC))[1] = :'balance'::numeric,
                     format('%s rows, lowest %s', count(*), min(balance_after)))
  FROM bank.transaction_history WHERE account_id = :'account';
SELECT pg_temp.check('es.verify(): the store is consistent (versions, stream rows, order, snapshots, materialized rows)',
                     count(*) = 0, string_agg(check_name || ' ' || object || ': ' || detail, '; '))
  FROM es.verify();
