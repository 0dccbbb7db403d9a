-- bare INSERT into a table shaped like es.events, same indexes
\set s random(1, 1000)
INSERT INTO bare.events (global_position, stream_id, stream_type, version, event_type, data, event_id)
VALUES (nextval('bare.position'), 'acct-' || :s, 'acct', nextval('bare.version'), 'MoneyDeposited', '{"amount": 12.50, "currency": "EUR", "note": "salary"}', bl.uuid_v7());
