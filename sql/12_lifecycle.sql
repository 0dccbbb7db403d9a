-- The deliberate exceptions to append-only: delete, truncate, retain, redact,
-- archive. Direct UPDATE/DELETE/TRUNCATE of es.events still fails for every
-- role (sql/14_guards.sql); the guard lets a statement through only while a
-- flag in the backend is set, and only the Rust primitives below set it,
-- around one statement of their own (src/store/guard.rs,
-- src/lifecycle/change.rs). Each primitive writes its es.audit row in the
-- same transaction, so no event leaves or changes without one.
--
-- The functions a user calls are PL/pgSQL here: argument checks, the
-- stream's row lock, snapshots, markers; they run as the extension's owner
-- and are open to the roles es.grant_admin names.

-- Append-only, like es.events (sql/14_guards.sql): one row per change.
CREATE SEQUENCE es.audit_id_seq;
CREATE TABLE es.audit (
    id          bigint      NOT NULL DEFAULT pg_catalog.nextval('es.audit_id_seq') PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- the role the session acted as (SET ROLE included), not the owner
    -- whose rights the function runs with
    by_role     text        NOT NULL,
    operation   text        NOT NULL,
    stream_id   text,
    -- the versions removed, rewritten or moved
    versions    int8range,
    event_count bigint      NOT NULL,
    reason      text,
    details     jsonb       NOT NULL DEFAULT '{}'
);
ALTER SEQUENCE es.audit_id_seq OWNED BY es.audit.id;
CREATE INDEX audit_stream_idx ON es.audit (stream_id);
COMMENT ON TABLE es.audit IS
    'One row per deliberate change of stored events (delete, truncate, retention, redaction, archive), append-only. es.verify() accepts exactly the holes it explains.';

-- Retention per stream type, applied by es.apply_retention (and the worker).
CREATE TABLE es.retention (
    stream_type text        NOT NULL PRIMARY KEY,
    max_age     interval    CHECK (max_age > interval '0'),
    max_count   bigint      CHECK (max_count >= 1),
    set_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CHECK (max_age IS NOT NULL OR max_count IS NOT NULL)
);

SELECT pg_catalog.pg_extension_config_dump('es.audit', '');
SELECT pg_catalog.pg_extension_config_dump('es.audit_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('es.retention', '');

-- The primitives (src/lifecycle/change.rs). Each runs one sanctioned
-- statement and writes its audit row; none is open to any role.
CREATE FUNCTION es._remove_events(stream_id text, below_version bigint, operation text,
                                  reason text, details jsonb) RETURNS bigint
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'es_remove_events';

CREATE FUNCTION es._redact_events(stream_id text, mask jsonb, stored_types text[],
                                  reason text, details jsonb) RETURNS bigint
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'es_redact_events';

CREATE FUNCTION es._move_events(stream_id text, to_archive boolean, reason text) RETURNS bigint
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'es_move_events';

CREATE FUNCTION es._append_marker(stream_id text, event_type text, data jsonb,
                                  expected_version bigint) RETURNS bigint
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'es_append_marker';

CREATE FUNCTION es._refresh_read_models_of(stream_id text, stream_type text) RETURNS text[]
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'es_refresh_read_models';

-- The chain of a stream's stored events (es.events and es.archived_events)
-- from base, the chain before version first_version; NULL when it has none.
CREATE FUNCTION es._stream_chain_from(stream_id text, base bytea, first_version bigint) RETURNS bytea
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'es_stream_chain_from';

-- A mask applied to one event's data: each key a dotted path (segments are
-- object keys, or array indexes), each value what replaces the value found
-- there. Paths the data does not have are left alone (nothing is added).
CREATE FUNCTION es._mask(data jsonb, mask jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
    v jsonb;
    p text[];
BEGIN
    FOR k, v IN SELECT m.key, m.value FROM pg_catalog.jsonb_each(mask) m LOOP
        p := pg_catalog.string_to_array(k, '.');
        IF data #> p IS NOT NULL THEN
            data := pg_catalog.jsonb_set(data, p, v, false);
        END IF;
    END LOOP;
    RETURN data;
END
$$;

-- A truncated stream's state below its cut lives only in the snapshot
-- there (its base). A new revision of the aggregate (es.define_aggregate,
-- es.define_upcaster) makes older snapshots unused: the base is carried
-- over as it is, since nothing is left to fold it again from.
CREATE FUNCTION es._carry_base_snapshots() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO es.snapshots (stream_id, version, revision, stream_type, state)
    SELECT s.stream_id, s.version, NEW.revision, s.stream_type, s.state
      FROM es.stream_lifecycle l
      JOIN es.snapshots s ON s.stream_id = l.stream_id AND s.version = l.first_version - 1
                         AND s.revision = OLD.revision
     WHERE l.first_version > 1 AND s.stream_type = NEW.stream_type
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER aggregates_carry_base_snapshots
    AFTER UPDATE ON es.aggregates
    FOR EACH ROW WHEN (NEW.revision <> OLD.revision)
    EXECUTE FUNCTION es._carry_base_snapshots();

-- Locks a stream's row (appends to it wait, as it waits for them) and
-- returns what the functions below need; 42704 for an unknown stream,
-- 40001 for a wrong expected version (as for appends).
CREATE FUNCTION es._lock_stream(fn text, stream_id text, expected_version bigint DEFAULT NULL,
                                OUT version bigint, OUT stream_type text, OUT chain_hash bytea,
                                OUT first_version bigint, OUT chain_base bytea,
                                OUT deleted boolean, OUT archived boolean)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF stream_id IS NULL THEN
        RAISE EXCEPTION '%: stream_id must not be NULL', fn USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF expected_version < 0 THEN
        RAISE EXCEPTION '%: expected_version must not be negative, got %', fn, expected_version
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT s.version, s.stream_type, s.chain_hash INTO version, stream_type, chain_hash
      FROM es.streams s WHERE s.stream_id = _lock_stream.stream_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION '%: stream "%" does not exist', fn, stream_id USING ERRCODE = 'undefined_object';
    END IF;
    IF expected_version IS NOT NULL AND expected_version <> version THEN
        RAISE EXCEPTION 'wrong expected version for stream "%": expected %, actual %',
                        stream_id, expected_version, version
            USING ERRCODE = 'serialization_failure';
    END IF;
    SELECT COALESCE(l.first_version, 1), l.chain_base, COALESCE(l.deleted, false), COALESCE(l.archived, false)
      INTO first_version, chain_base, deleted, archived
      FROM (SELECT) d LEFT JOIN es.stream_lifecycle l ON l.stream_id = _lock_stream.stream_id;
END
$$;

-- The stream's snapshots at and above from_version go, whatever their
-- revision (they were folded from what is no longer there); those of the
-- current revision are folded again at the same versions from what is
-- stored now.
CREATE FUNCTION es._renew_snapshots(stream_id text, from_version bigint) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    versions bigint[];
    v bigint;
BEGIN
    WITH gone AS (
        DELETE FROM es.snapshots s WHERE s.stream_id = _renew_snapshots.stream_id AND s.version >= from_version
        RETURNING s.version, s.revision, s.stream_type)
    SELECT pg_catalog.array_agg(g.version ORDER BY g.version) INTO versions
      FROM gone g JOIN es.aggregates a ON a.stream_type = g.stream_type AND a.revision = g.revision;
    FOREACH v IN ARRAY COALESCE(versions, '{}') LOOP
        -- one statement each: every fold starts from the snapshot before it
        INSERT INTO es.snapshots (stream_id, version, revision, stream_type, state)
        SELECT l.stream_id, l.version, a.revision, l.stream_type, l.state
          FROM es.load(_renew_snapshots.stream_id, v) l
          JOIN es.aggregates a ON a.stream_type = l.stream_type
        ON CONFLICT ON CONSTRAINT snapshots_pkey DO NOTHING;
    END LOOP;
END
$$;

-- Inline read models fed from the stream's type reflect what is stored
-- now: materialized rows are folded again, handler projections rebuilt;
-- those without a reset function cannot be, and say so.
CREATE FUNCTION es._refresh_read_models(stream_id text, stream_type text) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    skipped text[];
BEGIN
    skipped := es._refresh_read_models_of(stream_id, stream_type);
    IF pg_catalog.cardinality(skipped) > 0 THEN
        RAISE WARNING 'inline projections % have no reset function and were not rebuilt: their read models may still hold what was removed or redacted',
                      pg_catalog.array_to_string(skipped, ', ')
            USING HINT = 'Handle "$StreamDeleted" and "$EventsRedacted" in their handlers, or give them a reset function.';
    END IF;
END
$$;

CREATE FUNCTION es.delete_stream(
    stream_id        text,
    expected_version bigint  DEFAULT NULL,
    hard             boolean DEFAULT false,
    reason           text    DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
    n bigint;
BEGIN
    IF hard IS NULL THEN
        RAISE EXCEPTION 'es.delete_stream: hard must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    s := es._lock_stream('es.delete_stream', stream_id, expected_version);
    IF s.deleted THEN
        RAISE EXCEPTION 'stream "%" is already deleted', stream_id USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF s.archived THEN
        RAISE EXCEPTION 'stream "%" is archived', stream_id
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'es.unarchive_stream it first.';
    END IF;
    n := es._remove_events(stream_id, s.version + 1, 'delete_stream', reason,
                           pg_catalog.jsonb_build_object('hard', hard));
    DELETE FROM es.snapshots x WHERE x.stream_id = delete_stream.stream_id;
    PERFORM es._append_marker(stream_id, '$StreamDeleted',
        pg_catalog.jsonb_build_object('reason', reason, 'versions', pg_catalog.jsonb_build_array(s.first_version, s.version),
                                      'events', n, 'hard', hard),
        s.version);
    IF hard THEN
        UPDATE es.stream_lifecycle l SET deleted = true, updated_at = pg_catalog.now()
         WHERE l.stream_id = delete_stream.stream_id;
        -- no position can follow it: every append is refused (55000)
        UPDATE es.streams x SET last_position = 9223372036854775807 WHERE x.stream_id = delete_stream.stream_id;
    END IF;
    PERFORM es._refresh_read_models(stream_id, s.stream_type);
    RETURN n;
END
$$;
COMMENT ON FUNCTION es.delete_stream(text, bigint, boolean, text) IS
    'Removes a stream''s events and snapshots and appends a "$StreamDeleted" event; soft: appends continue after it, hard: every later append fails (55000). Returns how many events were removed.';

CREATE FUNCTION es.truncate_stream(stream_id text, before_version bigint, reason text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
BEGIN
    IF before_version IS NULL THEN
        RAISE EXCEPTION 'es.truncate_stream: before_version must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    s := es._lock_stream('es.truncate_stream', stream_id);
    RETURN es._truncate_locked(stream_id, s.stream_type, s.version, s.first_version, s.archived,
                               before_version, 'truncate_stream', reason);
END
$$;
COMMENT ON FUNCTION es.truncate_stream(text, bigint, text) IS
    'Removes the stream''s events below before_version (its last event always stays); es.load gives the same state (a snapshot at before_version - 1 is kept). Returns how many events were removed.';

-- The truncation of a locked stream (es.truncate_stream, es.apply_retention).
CREATE FUNCTION es._truncate_locked(stream_id text, stream_type text, version bigint, first_version bigint,
                                    archived boolean, before_version bigint, operation text, reason text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF before_version < 1 OR before_version > version THEN
        RAISE EXCEPTION 'before_version % is beyond stream "%" (versions 1 to %; its last event always stays)',
                        before_version, stream_id, version
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF archived THEN
        RAISE EXCEPTION 'stream "%" is archived', stream_id
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'es.unarchive_stream it first.';
    END IF;
    IF before_version <= first_version THEN
        RETURN 0;
    END IF;
    -- es.load keeps its answer: a snapshot at the cut (the stream's base
    -- from now on) for every revision it may be read with
    IF EXISTS (SELECT FROM es.aggregates a WHERE a.stream_type = _truncate_locked.stream_type) THEN
        INSERT INTO es.snapshots (stream_id, version, revision, stream_type, state)
        SELECT l.stream_id, l.version, a.revision, l.stream_type, l.state
          FROM es.load(_truncate_locked.stream_id, before_version - 1) l
          JOIN es.aggregates a ON a.stream_type = l.stream_type
        ON CONFLICT ON CONSTRAINT snapshots_pkey DO NOTHING;
    END IF;
    DELETE FROM es.snapshots x WHERE x.stream_id = _truncate_locked.stream_id AND x.version < before_version - 1;
    RETURN es._remove_events(stream_id, before_version, operation, reason,
                             pg_catalog.jsonb_build_object('before_version', before_version));
END
$$;

CREATE FUNCTION es.set_retention(stream_type text, max_age interval DEFAULT NULL, max_count bigint DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF stream_type IS NULL THEN
        RAISE EXCEPTION 'es.set_retention: stream_type must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF max_age <= interval '0' THEN
        RAISE EXCEPTION 'max_age must be positive, got %', max_age USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_count < 1 THEN
        RAISE EXCEPTION 'max_count must be at least 1, got %', max_count USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_age IS NULL AND max_count IS NULL THEN
        DELETE FROM es.retention r WHERE r.stream_type = set_retention.stream_type;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'stream type "%" has no retention', stream_type
                USING ERRCODE = 'undefined_object', HINT = 'Give max_age, max_count or both to set one.';
        END IF;
        RETURN;
    END IF;
    INSERT INTO es.retention AS r (stream_type, max_age, max_count) VALUES (stream_type, max_age, max_count)
    ON CONFLICT ON CONSTRAINT retention_pkey DO UPDATE
       SET max_age = EXCLUDED.max_age, max_count = EXCLUDED.max_count, set_at = pg_catalog.now();
END
$$;
COMMENT ON FUNCTION es.set_retention(text, interval, bigint) IS
    'Keeps, per stream of the type, only events younger than max_age and the last max_count (the last event always stays); both NULL removes the retention. es.apply_retention (and the worker) enforces it.';

CREATE FUNCTION es.apply_retention(max_events bigint DEFAULT 10000) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c record;
    s record;
    cut bigint;
    total bigint := 0;
BEGIN
    IF max_events IS NULL OR max_events < 1 THEN
        RAISE EXCEPTION 'max_events must be a positive number, got %', COALESCE(max_events::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Candidates: streams with more events than max_count, or whose first
    -- stored event is older than max_age. Streams locked by an appender
    -- are skipped (the next run takes them).
    FOR c IN
        SELECT x.stream_id, x.cut
          FROM (SELECT st.stream_id,
                       GREATEST(CASE WHEN r.max_count IS NOT NULL THEN st.version - r.max_count + 1 END,
                                CASE WHEN r.max_age IS NOT NULL THEN
                                     COALESCE((SELECT pg_catalog.min(e.version) FROM es.events e
                                                WHERE e.stream_id = st.stream_id
                                                  AND e.recorded_at >= pg_catalog.now() - r.max_age),
                                              st.version) END) AS cut,
                       COALESCE(l.first_version, 1) AS first_version
                  FROM es.retention r
                  JOIN es.streams st ON st.stream_type = r.stream_type
                  LEFT JOIN es.stream_lifecycle l ON l.stream_id = st.stream_id
                 WHERE NOT COALESCE(l.archived, false)
                   AND (r.max_count IS NOT NULL AND st.version - r.max_count + 1 > COALESCE(l.first_version, 1)
                        OR r.max_age IS NOT NULL AND EXISTS (
                               SELECT FROM es.events e WHERE e.stream_id = st.stream_id
                                  AND e.version = COALESCE(l.first_version, 1)
                                  AND e.recorded_at < pg_catalog.now() - r.max_age))) x
         WHERE x.cut > x.first_version
         ORDER BY x.stream_id
    LOOP
        EXIT WHEN total >= max_events;
        BEGIN
            SELECT st.version, st.stream_type, COALESCE(l.first_version, 1) AS first_version,
                   COALESCE(l.archived, false) AS archived
              INTO s
              FROM es.streams st LEFT JOIN es.stream_lifecycle l ON l.stream_id = st.stream_id
             WHERE st.stream_id = c.stream_id
               FOR UPDATE OF st SKIP LOCKED;
        END;
        CONTINUE WHEN NOT FOUND OR s.archived;
        -- at most max_events in all: a stream may be cut part of the way
        cut := LEAST(c.cut, s.version, s.first_version + (max_events - total));
        CONTINUE WHEN cut <= s.first_version;
        total := total + es._truncate_locked(c.stream_id, s.stream_type, s.version, s.first_version, false,
                                             cut, 'apply_retention', 'retention');
    END LOOP;
    RETURN total;
END
$$;
COMMENT ON FUNCTION es.apply_retention(bigint) IS
    'Truncates every stream as its type''s retention allows, at most max_events events in all; returns how many were removed. The worker runs it; pg_cron can too.';

CREATE FUNCTION es.redact(stream_id text, mask jsonb, reason text, event_types text[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
    k text;
    changed int8range;
    n bigint;
BEGIN
    IF mask IS NULL THEN
        RAISE EXCEPTION 'es.redact: mask must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF reason IS NULL THEN
        RAISE EXCEPTION 'es.redact: reason must not be NULL' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'The audit records why data was erased.';
    END IF;
    IF pg_catalog.jsonb_typeof(mask) <> 'object' OR mask = '{}' THEN
        RAISE EXCEPTION 'es.redact: mask must be a non-empty JSON object, got %', mask
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Map dotted paths to what replaces them: {"email": "[redacted]", "address.street": null}.';
    END IF;
    FOR k IN SELECT pg_catalog.jsonb_object_keys(mask) LOOP
        IF k = '' OR '' = ANY (pg_catalog.string_to_array(k, '.')) THEN
            RAISE EXCEPTION 'es.redact: mask path "%" has an empty segment', k USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    IF event_types IS NOT NULL AND (pg_catalog.cardinality(event_types) = 0 OR NULL = ANY (event_types)) THEN
        RAISE EXCEPTION 'es.redact: event_types must be NULL (every type) or a non-empty array without NULLs'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    s := es._lock_stream('es.redact', stream_id);
    -- the chain is re-anchored on the redacted events: only a chain that
    -- still holds may be (else a change made past the guards would be blessed)
    IF s.chain_hash IS NOT NULL
       AND s.chain_hash IS DISTINCT FROM es._stream_chain_from(stream_id, s.chain_base, s.first_version) THEN
        RAISE EXCEPTION 'stream "%": its events do not give its recorded hash chain; nothing was redacted', stream_id
            USING ERRCODE = 'data_corrupted', HINT = 'es.verify() reports it; find out what changed the events first.';
    END IF;
    n := es._redact_events(stream_id, mask,
                                 CASE WHEN event_types IS NOT NULL THEN es._stored_types(event_types) END,
                                 reason,
                                 pg_catalog.jsonb_build_object('paths', (SELECT pg_catalog.jsonb_agg(m.key ORDER BY m.key) FROM pg_catalog.jsonb_object_keys(mask) m(key)),
                                                               'event_types', event_types));
    IF n = 0 THEN
        RETURN 0;
    END IF;
    changed := (SELECT a.versions FROM es.audit a WHERE a.id = pg_catalog.currval('es.audit_id_seq'));
    PERFORM es._renew_snapshots(stream_id, s.first_version);
    IF NOT s.deleted AND NOT s.archived THEN
        PERFORM es._append_marker(stream_id, '$EventsRedacted',
            pg_catalog.jsonb_build_object('reason', reason,
                'paths', (SELECT pg_catalog.jsonb_agg(m.key ORDER BY m.key) FROM pg_catalog.jsonb_object_keys(mask) m(key)),
                'versions', pg_catalog.jsonb_build_array(pg_catalog.lower(changed), pg_catalog.upper(changed) - 1),
                'events', n),
            s.version);
    END IF;
    PERFORM es._refresh_read_models(stream_id, s.stream_type);
    RETURN n;
END
$$;
COMMENT ON FUNCTION es.redact(text, jsonb, text, text[]) IS
    'Rewrites the data of the stream''s events (of event_types, NULL = all) with a mask {"path": replacement}; snapshots and inline read models are rebuilt; an "$EventsRedacted" event is appended. Returns how many events changed.';

CREATE FUNCTION es.archive_stream(stream_id text, reason text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
BEGIN
    s := es._lock_stream('es.archive_stream', stream_id);
    IF s.archived THEN
        RAISE EXCEPTION 'stream "%" is already archived', stream_id USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN es._move_events(stream_id, true, reason);
END
$$;
COMMENT ON FUNCTION es.archive_stream(text, text) IS
    'Moves a stream''s events to es.archived_events: they leave es.read_all and es.poll, es.read_stream and es.load still read them, appends fail (55000) until es.unarchive_stream. Returns how many events moved.';

CREATE FUNCTION es.unarchive_stream(stream_id text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
BEGIN
    s := es._lock_stream('es.unarchive_stream', stream_id);
    IF NOT s.archived THEN
        RAISE EXCEPTION 'stream "%" is not archived', stream_id USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN es._move_events(stream_id, false, NULL);
END
$$;
COMMENT ON FUNCTION es.unarchive_stream(text) IS
    'Moves an archived stream''s events back into es.events, at their positions; appends to it work again. Returns how many events moved.';

-- Admins: the lifecycle functions, on top of everything a writer has.
CREATE FUNCTION es._admin_functions() RETURNS text[]
LANGUAGE sql IMMUTABLE
RETURN ARRAY['es.delete_stream(text, bigint, boolean, text)',
             'es.truncate_stream(text, bigint, text)',
             'es.set_retention(text, interval, bigint)',
             'es.apply_retention(bigint)',
             'es.redact(text, jsonb, text, text[])',
             'es.archive_stream(text, text)',
             'es.unarchive_stream(text)'];

CREATE FUNCTION es.grant_admin(role regrole) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f text;
BEGIN
    PERFORM es.grant_writer(role);
    FOREACH f IN ARRAY es._admin_functions() LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', f::regprocedure, role);
    END LOOP;
END
$$;
COMMENT ON FUNCTION es.grant_admin(regrole) IS
    'Lets a role do what a writer does and also delete, truncate, redact, archive streams and set retention (each audited in es.audit).';

CREATE FUNCTION es.revoke_admin(role regrole) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f text;
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'role must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM es._require_extension_owner();
    FOREACH f IN ARRAY es._admin_functions() LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM %s', f::regprocedure, role);
    END LOOP;
END
$$;
COMMENT ON FUNCTION es.revoke_admin(regrole) IS
    'Takes back what es.grant_admin gave beyond writing: the role stays a writer.';
