-- the plpgsql append, every client on one stream, retried on 40001
SELECT pl.stream_version('hot-1') AS v \gset
SELECT pl.append_event('hot-1', 'MoneyDeposited', '{"amount": 12.50, "currency": "EUR", "note": "salary"}', :v);
