-- es.append_event to a random stream among 1,000, no expected version
\set s random(1, 1000)
SELECT es.append_event('acct-' || :s, 'MoneyDeposited', '{"amount": 12.50, "currency": "EUR", "note": "salary"}');
