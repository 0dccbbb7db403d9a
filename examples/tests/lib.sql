-- Helpers for the example checks (session-local, in pg_temp). Every check
-- prints one line, "ok - NAME" or "FAIL - NAME: why"; scripts/test_examples.sh
-- counts them, and counts any ERROR as a failure too.
\set QUIET 1
\pset tuples_only on
\pset format unaligned

-- ok when cond is true (NULL is a failure)
CREATE FUNCTION pg_temp.check(name text, cond boolean, detail text DEFAULT NULL) RETURNS text
LANGUAGE sql AS $$
    SELECT CASE WHEN cond THEN 'ok - ' || name
                ELSE 'FAIL - ' || name || COALESCE(': ' || detail, '') END
$$;

-- ok when got equals want (IS NOT DISTINCT FROM); the failure shows both
CREATE FUNCTION pg_temp.check_eq(name text, got anyelement, want anyelement) RETURNS text
LANGUAGE sql AS $$
    SELECT pg_temp.check(name, got IS NOT DISTINCT FROM want,
                         format('got %s, want %s', COALESCE(got::text, 'NULL'), COALESCE(want::text, 'NULL')))
$$;

-- ok when the command fails with the SQLSTATE; whatever it did is rolled back
-- either way (a command that succeeds is undone by a sentinel error).
CREATE FUNCTION pg_temp.rejects(name text, command text, want_state text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    got text;
    msg text;
BEGIN
    BEGIN
        EXECUTE command;
        RAISE EXCEPTION 'the command succeeded' USING ERRCODE = 'ZZ999';
    EXCEPTION WHEN OTHERS THEN
        got := SQLSTATE;
        msg := SQLERRM;
    END;
    IF got = want_state THEN
        RETURN 'ok - ' || name || ' (' || want_state || ')';
    END IF;
    RETURN format('FAIL - %s: want SQLSTATE %s, got %s', name, want_state,
                  CASE WHEN got = 'ZZ999' THEN 'success' ELSE got || ' (' || msg || ')' END);
END
$$;

-- es.read_all and es.poll hold back events while an older transaction runs
-- anywhere in the cluster; wait until every committed event is readable.
CREATE FUNCTION pg_temp.wait_horizon(timeout_s integer DEFAULT 30) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    deadline constant timestamptz := clock_timestamp() + make_interval(secs => timeout_s);
BEGIN
    LOOP
        IF es.read_horizon() > COALESCE((SELECT max(global_position) FROM es.events), 0) THEN
            RETURN 'ok - every committed event is below the read horizon';
        END IF;
        IF clock_timestamp() > deadline THEN
            RETURN format('FAIL - the read horizon is still behind after %ss: %s', timeout_s, (SELECT row_to_json(h) FROM es.horizon() h));
        END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
END
$$;

-- every function in the schema pins its search_path, except exactly the
-- helpers listed (they run inside functions that pin it, and have no SET clause)
CREATE FUNCTION pg_temp.check_search_paths(schema_name text, helpers regprocedure[] DEFAULT '{}') RETURNS text
LANGUAGE sql AS $$
    SELECT pg_temp.check(schema_name || ': every function pins search_path = pg_catalog, pg_temp'
                             || CASE WHEN cardinality(helpers) > 0
                                     THEN ', but the helpers ' || array_to_string(helpers::text[], ', ') || ' (no SET clause)'
                                     ELSE '' END,
                         count(*) > 0 AND count(*) FILTER (WHERE pinned = (p.oid = ANY (helpers))) = 0,
                         string_agg(p.oid::regprocedure::text, ', ') FILTER (WHERE pinned = (p.oid = ANY (helpers))))
      FROM pg_proc p,
           LATERAL (SELECT p.proconfig IS NOT NULL AND 'search_path=pg_catalog, pg_temp' = ANY (p.proconfig)) x(pinned)
     WHERE p.pronamespace = schema_name::regnamespace
$$;
