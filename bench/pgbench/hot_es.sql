-- every client on one stream, expected version read first, retried on 40001
SELECT es.stream_version('hot-1') AS v \gset
SELECT es.append_event('hot-1', 'MoneyDeposited', '{"amount": 12.50, "currency": "EUR", "note": "salary"}', :v);
