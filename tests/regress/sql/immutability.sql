--
-- immutability: events cannot be changed or removed, by anyone, in any
-- replication role.
--
\set SHOW_CONTEXT never
\set VERBOSITY default
\set show 'SELECT stream_id, version, event_type, data, metadata FROM es.events WHERE stream_id = ''fact-1'' ORDER BY version'

SELECT es.append_events('fact-1', '[
    {"type": "Happened", "data": {"n": 1}},
    {"type": "Happened", "data": {"n": 2}}
]');
SELECT count(*) AS events_before FROM es.events \gset
:show;

-- This session is a superuser, which is not enough.
SELECT rolsuper FROM pg_roles WHERE rolname = current_user;

UPDATE es.events SET data = '{"n": 99}' WHERE stream_id = 'fact-1';
\echo :LAST_ERROR_SQLSTATE
UPDATE es.events SET metadata = '{"edited": true}';
\echo :LAST_ERROR_SQLSTATE
-- refused even when no row matches
UPDATE es.events SET data = '{}' WHERE false;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM es.events WHERE stream_id = 'fact-1' AND version = 2;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM es.events;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE es.events;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE es.events CASCADE;
\echo :LAST_ERROR_SQLSTATE
-- inside a transaction too
BEGIN;
DELETE FROM es.events WHERE stream_id = 'fact-1';
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
:show;

-- session_replication_role = replica skips ordinary triggers, not these.
SET session_replication_role = replica;
SHOW session_replication_role;
UPDATE es.events SET data = '{"n": 99}' WHERE stream_id = 'fact-1';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM es.events WHERE stream_id = 'fact-1';
\echo :LAST_ERROR_SQLSTATE
TRUNCATE es.events;
\echo :LAST_ERROR_SQLSTATE
RESET session_replication_role;
-- and under session_replication_role = local
SET session_replication_role = local;
DELETE FROM es.events;
\echo :LAST_ERROR_SQLSTATE
RESET session_replication_role;

-- Nothing changed.
:show;
SELECT count(*) = :events_before AS same_count FROM es.events;

-- Appending still works.
SELECT es.append_event('fact-1', 'Corrected', '{"n": 2, "was": 2}', 2);
:show;
