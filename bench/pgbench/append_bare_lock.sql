-- what a version costs without a stream row: the bare INSERT plus a
-- per-stream advisory lock and a probe of the stream's last version in
-- UNIQUE (stream_id, version), one plain statement. A cost proxy for that
-- design (the version stored comes from a sequence, so that a race never
-- fails the run; the probe's result is read and discarded)
\set s random(1, 1000)
WITH l AS MATERIALIZED (SELECT pg_advisory_xact_lock(hashtext('acct-' || :s)) AS locked),
     v AS MATERIALIZED (SELECT COALESCE(max(version), 0) AS last FROM bare.events WHERE stream_id = 'acct-' || :s)
INSERT INTO bare.events (global_position, stream_id, stream_type, version, event_type, data, event_id)
SELECT nextval('bare.position'), 'acct-' || :s, 'acct', nextval('bare.lock_version') + 0 * v.last,
       'MoneyDeposited', '{"amount": 12.50, "currency": "EUR", "note": "salary"}', bl.uuid_v7()
FROM l, v;
