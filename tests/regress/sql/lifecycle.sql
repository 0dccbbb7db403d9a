--
-- lifecycle: the deliberate exceptions to append-only, as an operator uses
-- them: truncate a long stream, apply retention, redact a customer's
-- personal data, archive a closed account, delete a stream written by
-- mistake, read es.audit, and es.verify() accepting exactly what it explains.
--
\set SHOW_CONTEXT never
\set VERBOSITY default
-- Stream type of this file only: patron.

SELECT es.define_aggregate('patron',
    reducers => '{"Joined":  [{"set": "email", "from": "$.email"}],
                  "Visited": [{"inc": "visits"}]}',
    initial_state => '{"visits": 0}', snapshot_every => 5);
SELECT es.append_event('patron-1', 'Joined', '{"email": "ada@example.com", "city": "Ghent"}');
SELECT count(es.append_event('patron-1', 'Visited', jsonb_build_object('page', g))) FROM generate_series(1, 11) g;
SELECT version, state FROM es.load('patron-1');

-- Keep only versions 8 and up; es.load gives the same answer (a snapshot
-- at version 7 holds the state below the cut).
SELECT es.truncate_stream('patron-1', 8, 'older than we need');
SELECT string_agg(version::text, ',') AS stored FROM es.read_stream('patron-1');
SELECT version, state FROM es.load('patron-1');
SELECT version, state FROM es.load('patron-1', 7);
SELECT version, state FROM es.load('patron-1', 6);

-- Retention per stream type: the last 3 events (the last always stays).
SELECT es.set_retention('patron', max_count => 3);
SELECT stream_type, max_age, max_count FROM es.retention;
SELECT es.apply_retention();
SELECT string_agg(version::text, ',') AS stored FROM es.read_stream('patron-1');
SELECT es.set_retention('patron');

-- Retention by age: events recorded more than 3 seconds ago go (each
-- statement here is a transaction of its own: its events' recorded_at).
-- Stream type visitor, of this file only.
SELECT count(es.append_event('visitor-1', 'Visited', jsonb_build_object('page', g))) FROM generate_series(1, 4) g;
SELECT es.append_event('visitor-2', 'Visited', '{"page": 1}');
SELECT pg_sleep(3.5);
SELECT count(es.append_event('visitor-1', 'Visited', jsonb_build_object('page', g))) FROM generate_series(5, 6) g;
SELECT es.set_retention('visitor', max_age => interval '3 seconds');
SELECT es.apply_retention();
SELECT stream_id, string_agg(version::text, ',' ORDER BY version) AS stored
  FROM es.events WHERE stream_type = 'visitor' GROUP BY stream_id ORDER BY stream_id;
SELECT es.set_retention('visitor');

-- A second patron asks to be forgotten: the email goes from every event.
SELECT es.append_event('patron-2', 'Joined', '{"email": "bob@example.com", "city": "Lyon"}');
SELECT es.append_event('patron-2', 'Visited', '{"page": 1, "email": "bob@example.com"}');
SELECT es.redact('patron-2', '{"email": "[erased]", "city": null}', 'GDPR art. 17 request #42');
SELECT version, event_type, data FROM es.read_stream('patron-2');
SELECT version, state FROM es.load('patron-2');
SELECT count(*) AS copies_left FROM es.events e WHERE e::text LIKE '%bob@%';
SELECT count(*) AS copies_left FROM es.snapshots s WHERE s::text LIKE '%bob@%';

-- A closed patron goes to cold storage: still read, never written.
SELECT es.archive_stream('patron-2', 'account closed');
SELECT count(*) AS hot FROM es.events WHERE stream_id = 'patron-2';
SELECT count(*) AS read FROM es.read_stream('patron-2');
SELECT es.append_event('patron-2', 'Visited', '{"page": 2}');
SELECT es.unarchive_stream('patron-2');

-- A stream written by mistake: soft delete (it may start again) ...
SELECT es.append_event('patron-test', 'Joined', '{"email": "test@example.com"}');
SELECT es.delete_stream('patron-test', 1, reason => 'test data');
SELECT version, event_type, data FROM es.read_stream('patron-test');
SELECT version, state FROM es.load('patron-test');
SELECT es.append_event('patron-test', 'Visited', '{"page": 1}');
-- ... and hard delete (it never starts again).
SELECT es.delete_stream('patron-test', hard => true, reason => 'test data, for good');
SELECT es.append_event('patron-test', 'Visited', '{"page": 2}');

-- Nothing else changes them, not even a superuser.
DELETE FROM es.events WHERE stream_id = 'patron-1';
UPDATE es.audit SET reason = 'nothing happened';

-- What happened, and why.
SELECT by_role = current_user AS by_me, operation, stream_id, versions, event_count, reason, details
  FROM es.audit ORDER BY id;
SELECT * FROM es.verify();

-- Bad input changes nothing.
SELECT es.truncate_stream('patron-none', 2);
SELECT es.truncate_stream('patron-1', 100);
SELECT es.redact('patron-1', '"email"', 'why');
SELECT es.redact('patron-1', '{"email": null}', NULL);
SELECT es.delete_stream('patron-1', 3);
SELECT es.append_event('patron-1', '$StreamDeleted', '{}');
SELECT count(*) AS audit_rows FROM es.audit;
