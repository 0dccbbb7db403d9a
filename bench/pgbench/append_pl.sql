-- hand-written plpgsql append (bench/sql/baselines.sql), no expected version
\set s random(1, 1000)
SELECT pl.append_event('acct-' || :s, 'MoneyDeposited', '{"amount": 12.50, "currency": "EUR", "note": "salary"}');
