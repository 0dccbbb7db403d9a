-- the plpgsql append with an expected version read first
\set s random(1, 1000)
SELECT pl.stream_version('acct-' || :s) AS v \gset
SELECT pl.append_event('acct-' || :s, 'MoneyDeposited', '{"amount": 12.50, "currency": "EUR", "note": "salary"}', :v);
