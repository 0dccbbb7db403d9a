--
-- uninstall: DROP EXTENSION removes schema es and everything in it; the
-- user's own objects survive; the extension can be created again.
--
\set SHOW_CONTEXT never
\set VERBOSITY default

SELECT count(*) > 0 AS has_events FROM es.events;

DROP EXTENSION pg_eventsource;

SELECT count(*) AS extensions FROM pg_extension WHERE extname = 'pg_eventsource';
SELECT count(*) AS es_schemas FROM pg_namespace WHERE nspname = 'es';
-- nothing of it is left in es, and elsewhere only the user's own events/streams tables and app.append_event
SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'es')
     + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'es')
     + (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'es')
       AS objects_in_es;
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relname IN ('events', 'streams', 'position_base')
    OR c.relname LIKE 'events\_%' OR c.relname LIKE 'streams\_%' OR c.relname LIKE 'position\_base\_%'
 ORDER BY 1, 2;
SELECT n.nspname, p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE p.proname IN ('append_event', 'append_events', 'read_stream', 'read_all', 'stream_version',
                     'read_horizon', 'horizon', 'uuid_generate_v7', '_forbid_change',
                     '_check_stream_id', '_system_identifier')
 ORDER BY 1, 2;
SELECT to_regclass('es.events') AS es_events;
SELECT es.stream_version('order-1');
\echo :LAST_ERROR_SQLSTATE

-- The user's objects from the install test are still there, with their rows.
SELECT * FROM public.events ORDER BY id;
SELECT * FROM public.streams;
SELECT * FROM app.events;
SELECT app.append_event('still here');
SELECT count(*) AS public_events FROM events;

-- Install again: a fresh, empty, working store.
CREATE EXTENSION pg_eventsource;
SELECT (SELECT count(*) FROM es.events) AS events,
       (SELECT count(*) FROM es.streams) AS streams,
       (SELECT count(*) FROM es.position_base) AS position_base;
SELECT es.stream_version('order-1');
SELECT es.append_event('order-1', 'OrderPlaced', '{"total": 10}', 0);
SELECT es.append_events('order-1', '[{"type": "OrderPaid", "data": {"amount": 10}}]', 1);
SELECT stream_id, stream_type, version, event_type, data FROM es.read_stream('order-1');
DELETE FROM es.events;
\echo :LAST_ERROR_SQLSTATE

-- A user object that depends on the extension blocks a plain DROP EXTENSION.
CREATE VIEW public.order_events AS SELECT stream_id, version FROM es.events;
DROP EXTENSION pg_eventsource;
\echo :LAST_ERROR_SQLSTATE
DROP EXTENSION pg_eventsource CASCADE;
SELECT count(*) AS es_schemas FROM pg_namespace WHERE nspname = 'es';
SELECT to_regclass('public.order_events') AS view_dropped_with_it;
SELECT count(*) AS public_events FROM public.events;
