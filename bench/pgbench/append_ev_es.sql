-- read the stream's version, then append with it as the expected version
-- (run with --max-tries: a 40001 restarts the script, re-reading the version)
\set s random(1, 1000)
SELECT es.stream_version('acct-' || :s) AS v \gset
SELECT es.append_event('acct-' || :s, 'MoneyDeposited', '{"amount": 12.50, "currency": "EUR", "note": "salary"}', :v);
