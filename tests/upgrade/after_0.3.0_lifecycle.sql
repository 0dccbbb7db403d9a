-- Checks after the background worker's check (scripts/test_upgrade.sh): the
-- lifecycle functions over upgraded streams. Run last, since they remove and
-- move events the worker's async projection has already counted. Prints one
-- "ok - ..." or "FAILED - ..." line per check.
\set ON_ERROR_STOP 1
\pset tuples_only on
\pset format unaligned
SET client_min_messages = warning;
SET search_path = public, pg_catalog;

CREATE FUNCTION pg_temp.check(name text, cond boolean, detail text DEFAULT NULL) RETURNS text
LANGUAGE sql AS $$
    SELECT CASE WHEN cond THEN 'ok - ' || name
                ELSE 'FAILED - ' || name || COALESCE(': ' || detail, '') END
$$;

CREATE FUNCTION pg_temp.sqlstate_of(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;

-- ---------------------------------------------------------------------
-- The deliberate exceptions to append-only, over upgraded streams.
SELECT pg_temp.check('the guard still refuses a direct DELETE (55000)',
    pg_temp.sqlstate_of($$DELETE FROM es.events WHERE stream_id = 'account-1'$$) = '55000');
SELECT l.version AS v_before, l.state AS s_before FROM es.load('account-1') l \gset
SELECT es.truncate_stream('account-1', :v_before, 'upgrade test') AS cut \gset
SELECT pg_temp.check('es.truncate_stream of an upgraded stream removes all but its last event',
    :cut = :v_before - 1 AND (SELECT count(*) FROM es.events WHERE stream_id = 'account-1') = 1);
SELECT pg_temp.check('es.load of the truncated stream gives the same state',
    (SELECT (l.version, l.state) FROM es.load('account-1') l) = (:v_before::bigint, :'s_before'::jsonb));
-- (each change in a statement of its own: a check reads with its statement's snapshot)
SELECT es.archive_stream('account-2') AS archived \gset
SELECT pg_temp.check('es.archive_stream moves an upgraded stream; es.read_stream still reads it',
    :archived > 0
    AND (SELECT count(*) FROM es.events WHERE stream_id = 'account-2') = 0
    AND (SELECT count(*) FROM es.read_stream('account-2')) = :archived);
SELECT es.redact('account-3', '{"amount": 0}', 'upgrade test') AS redacted \gset
SELECT pg_temp.check('es.redact rewrites an upgraded stream and re-anchors its chain',
    :redacted > 0
    AND (SELECT bool_and((data->>'amount')::numeric = 0) FROM es.read_stream('account-3', raw => true)
          WHERE event_type = 'MoneyDeposited'));
SELECT pg_temp.check('es.audit holds one row per change',
    (SELECT string_agg(operation, ',' ORDER BY id) FROM es.audit) = 'truncate_stream,archive_stream,redact',
    (SELECT string_agg(operation, ',' ORDER BY id) FROM es.audit));
SELECT pg_temp.check('es.verify() accepts exactly what es.audit explains',
    NOT EXISTS (SELECT FROM es.verify()),
    (SELECT string_agg(format('%s %s: %s', check_name, object, detail), '; ') FROM es.verify()));
