--
-- install: CREATE EXTENSION in a database that already has its own objects,
-- including a table named "events" in public and a schema named "app".
--
\set SHOW_CONTEXT never
\set VERBOSITY default

-- The user's objects, made before the extension exists.
CREATE TABLE public.events (id int PRIMARY KEY, note text);
INSERT INTO public.events VALUES (1, 'mine'), (2, 'also mine');
CREATE TABLE public.streams (stream_id text PRIMARY KEY);
INSERT INTO public.streams VALUES ('not-an-es-stream');
CREATE SCHEMA app;
CREATE TABLE app.events (id int PRIMARY KEY, payload jsonb);
INSERT INTO app.events VALUES (1, '{"kept": true}');
CREATE FUNCTION app.append_event(text) RETURNS text
    LANGUAGE sql AS $$ SELECT 'app.append_event(' || $1 || ')' $$;

-- Snapshot of every user-owned object in public and app.
CREATE TABLE public.objects_before AS
SELECT n.nspname, c.relname AS name, c.relkind::text AS kind
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname IN ('public', 'app')
UNION ALL
SELECT n.nspname, p.oid::regprocedure::text, 'function'
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname IN ('public', 'app');
SELECT * FROM public.objects_before ORDER BY 1, 2;

-- Nothing of the extension exists yet.
SELECT count(*) AS es_schemas FROM pg_namespace WHERE nspname = 'es';

CREATE EXTENSION pg_eventsource;

SELECT e.extname, e.extnamespace::regnamespace AS schema, e.extrelocatable
  FROM pg_extension e WHERE e.extname = 'pg_eventsource';

-- Its tables, in schema es.
SELECT c.relname, c.relkind
  FROM pg_class c
 WHERE c.relnamespace = 'es'::regnamespace AND c.relkind IN ('r', 'p', 'v')
 ORDER BY 1;

-- Columns of es.events and es.streams.
SELECT table_name, column_name, data_type, is_nullable
  FROM information_schema.columns
 WHERE table_schema = 'es' AND table_name IN ('events', 'streams')
 ORDER BY table_name, ordinal_position;

-- The public functions (names not starting with "_"), with their signatures.
SELECT p.proname,
       pg_get_function_arguments(p.oid) AS arguments,
       pg_get_function_result(p.oid) AS result
  FROM pg_proc p
 WHERE p.pronamespace = 'es'::regnamespace AND p.proname !~ '^_'
 ORDER BY 1, 2;

-- Every object in schema es belongs to the extension.
SELECT count(*) AS es_objects_not_in_extension
  FROM (SELECT 'pg_class'::regclass AS classid, c.oid AS objid
          FROM pg_class c WHERE c.relnamespace = 'es'::regnamespace
         UNION ALL
        SELECT 'pg_proc'::regclass, p.oid
          FROM pg_proc p WHERE p.pronamespace = 'es'::regnamespace) o
 WHERE NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = o.classid AND d.objid = o.objid
                      AND d.refclassid = 'pg_extension'::regclass
                      AND d.deptype = 'e')
   AND NOT EXISTS (SELECT 1 FROM pg_depend d   -- indexes, toast and row types hang off their table
                    WHERE d.classid = o.classid AND d.objid = o.objid
                      AND d.deptype IN ('i', 'a'));

-- The store starts empty, but for this cluster's position offset row.
SELECT (SELECT count(*) FROM es.events) AS events,
       (SELECT count(*) FROM es.streams) AS streams,
       (SELECT count(*) FROM es.position_base) AS position_base;

-- The user's objects are untouched: same objects, same rows.
SELECT n.nspname, c.relname AS name, c.relkind::text AS kind
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname IN ('public', 'app') AND c.relname <> 'objects_before'
UNION ALL
SELECT n.nspname, p.oid::regprocedure::text, 'function'
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname IN ('public', 'app')
EXCEPT
SELECT * FROM public.objects_before;
SELECT count(*) AS objects_gone
  FROM public.objects_before b
 WHERE NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = b.nspname AND c.relname = b.name)
   AND NOT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                    WHERE n.nspname = b.nspname AND p.oid::regprocedure::text = b.name);
SELECT * FROM public.events ORDER BY id;
SELECT * FROM public.streams;
SELECT * FROM app.events;
SELECT app.append_event('x');

-- search_path is unchanged: unqualified names still find the user's objects.
SHOW search_path;
SELECT count(*) AS public_events FROM events;

-- Creating it twice is an error.
CREATE EXTENSION pg_eventsource;
\echo :LAST_ERROR_SQLSTATE
CREATE EXTENSION IF NOT EXISTS pg_eventsource;

DROP TABLE public.objects_before;
