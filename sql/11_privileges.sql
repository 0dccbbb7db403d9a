-- Granting access: the extension creates no roles and opens nothing to
-- PUBLIC beyond what row-level security guards (subscriptions). These
-- helpers give a role a documented set of rights, and take them back.
--
-- Readers read: es.read_stream, es.read_all, es.load, es.fold, es.stats(),
-- the views, the event schemas and upcasters. Writers also append (only through the functions: no table
-- privilege to write is ever granted, so nobody can bypass the version
-- check), use projections and subscriptions. Defining aggregates stays with
-- the extension's owner (fold functions run in every append that takes a
-- snapshot), event schemas and upcasters (checked in every append, run in
-- every read): grant EXECUTE on the define functions by hand to delegate it.

CREATE FUNCTION es._require_extension_owner() RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT pg_has_role((SELECT e.extowner FROM pg_extension e WHERE e.extname = 'pg_eventsource'), 'USAGE') THEN
        RAISE EXCEPTION 'only the owner of extension pg_eventsource (or a member of it) may grant or revoke its privileges'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;

CREATE FUNCTION es._privileges(writer boolean)
RETURNS TABLE (kind text, object text, privilege text)
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT v.kind, v.object, v.privilege
      FROM (VALUES
        ('schema',   'es', 'USAGE', false),
        ('table',    'es.events', 'SELECT', false),
        ('table',    'es.streams', 'SELECT', false),
        ('table',    'es.snapshots', 'SELECT', false),
        ('table',    'es.aggregates', 'SELECT', false),
        ('table',    'es.event_schemas', 'SELECT', false),
        ('table',    'es.upcasters', 'SELECT', false),
        ('table',    'es.event_types', 'SELECT', false),
        ('table',    'es.position_base', 'SELECT', false),
        ('table',    'es.projections', 'SELECT', false),
        ('table',    'es.subscription_status', 'SELECT', false),
        ('table',    'es.audit', 'SELECT', false),
        ('table',    'es.stream_lifecycle', 'SELECT', false),
        ('table',    'es.archived_events', 'SELECT', false),
        ('table',    'es.retention', 'SELECT', false),
        ('function', 'es.append_event(text, text, jsonb, bigint, jsonb, uuid, text)', 'EXECUTE', true),
        ('function', 'es.append_events(text, jsonb, bigint, text)', 'EXECUTE', true),
        ('function', 'es.append_multi(jsonb)', 'EXECUTE', true),
        ('function', 'es._append_message(text, text, text, jsonb, jsonb, bigint)', 'EXECUTE', true),
        ('function', 'es.create_projection(text, regprocedure, text, text[], text[], regprocedure)', 'EXECUTE', true),
        ('function', 'es.run_projection(text, integer)', 'EXECUTE', true),
        ('function', 'es.rebuild_projection(text)', 'EXECUTE', true),
        ('function', 'es.drop_projection(text)', 'EXECUTE', true),
        ('function', 'es.materialize_aggregate(text, text)', 'EXECUTE', true)
      ) v(kind, object, privilege, for_writers)
     WHERE NOT v.for_writers OR writer;
END;

CREATE FUNCTION es._set_privileges(role regrole, writer boolean, do_grant boolean) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p record;
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'role must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM es._require_extension_owner();
    FOR p IN SELECT x.kind, x.object, x.privilege FROM es._privileges(writer) x
              -- a reader that is revoked keeps nothing; a writer that is
              -- revoked keeps what readers have
              WHERE do_grant OR NOT writer OR x.privilege = 'EXECUTE'
    LOOP
        EXECUTE format(CASE WHEN do_grant THEN 'GRANT %s ON %s %s TO %s' ELSE 'REVOKE %s ON %s %s FROM %s' END,
                       p.privilege, upper(p.kind),
                       CASE p.kind WHEN 'schema' THEN quote_ident(p.object)
                                   WHEN 'table' THEN p.object::regclass::text
                                   ELSE p.object::regprocedure::text END,
                       role);
    END LOOP;
END
$$;

CREATE FUNCTION es.grant_reader(role regrole) RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT es._set_privileges(role, false, true);
END;
COMMENT ON FUNCTION es.grant_reader(regrole) IS
    'Lets a role read: USAGE on schema es, SELECT on its tables and views (the read functions are open to all).';

CREATE FUNCTION es.grant_writer(role regrole) RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT es._set_privileges(role, true, true);
END;
COMMENT ON FUNCTION es.grant_writer(regrole) IS
    'Lets a role read, append (through the functions only), and use projections and subscriptions.';

CREATE FUNCTION es.revoke_reader(role regrole) RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT es._set_privileges(role, true, false);
    SELECT es._set_privileges(role, false, false);
END;
COMMENT ON FUNCTION es.revoke_reader(regrole) IS
    'Takes back everything es.grant_reader and es.grant_writer gave the role.';

CREATE FUNCTION es.revoke_writer(role regrole) RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT es._set_privileges(role, true, false);
END;
COMMENT ON FUNCTION es.revoke_writer(regrole) IS
    'Takes back what es.grant_writer gave beyond reading: the role stays a reader.';
