-- Events are immutable. These triggers fire for every role, the owner and
-- superusers included, and also under session_replication_role = replica.

CREATE FUNCTION es._forbid_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'es.% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = 'Events are facts: append a compensating event instead.';
END
$$;

CREATE TRIGGER events_no_update_delete
    BEFORE UPDATE OR DELETE ON es.events
    FOR EACH STATEMENT EXECUTE FUNCTION es._forbid_change();
CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON es.events
    FOR EACH STATEMENT EXECUTE FUNCTION es._forbid_change();
ALTER TABLE es.events ENABLE ALWAYS TRIGGER events_no_update_delete;
ALTER TABLE es.events ENABLE ALWAYS TRIGGER events_no_truncate;

-- Nothing is open to other roles until granted: appends run as the extension
-- owner (SECURITY DEFINER), so EXECUTE on them is what lets a role write.
REVOKE ALL ON FUNCTION es.append_event(text, text, jsonb, bigint, jsonb, uuid, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es.append_events(text, jsonb, bigint, text) FROM PUBLIC;
