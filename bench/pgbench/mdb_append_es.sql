-- es.append_event of the same event to the same streams (the baseline of
-- pg_eventsource_message_db's write_message)
\set s random(1, 1000)
SELECT es.append_event('account-' || :s, 'Deposited', '{"amount": 12.50, "currency": "EUR", "note": "salary"}');
