-- es.append_event to streams of a type with snapshot_every 100 (the
-- snapshot trigger adds at most 10%); compare with append_es.sql
\set s random(1, 1000)
SELECT es.append_event('snap-' || :s, 'MoneyDeposited', '{"amount": 12.50, "currency": "EUR", "note": "salary"}');
