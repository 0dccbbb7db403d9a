-- the least a per-stream version costs: the bare INSERT plus an UPDATE of the
-- stream's row, in one plain statement (no function, no check, no trigger)
\set s random(1, 1000)
WITH u AS (UPDATE bare.streams SET version = version + 1 WHERE stream_id = 'acct-' || :s RETURNING version)
INSERT INTO bare.events (global_position, stream_id, stream_type, version, event_type, data, event_id)
SELECT nextval('bare.position'), 'acct-' || :s, 'acct', u.version, 'MoneyDeposited', '{"amount": 12.50, "currency": "EUR", "note": "salary"}', bl.uuid_v7() FROM u;
