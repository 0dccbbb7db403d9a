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

-- This cluster's position offset (see src/position.rs). A restore brings the
-- dumped rows through the trigger below: a row for this cluster merges into
-- ours (keeping the larger offset); another cluster's row flags ours, so the
-- next append moves positions past the restored events.
INSERT INTO es.position_base (system_identifier, xid_offset) VALUES (es._system_identifier(), 0);

CREATE FUNCTION es._merge_position_base() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    me constant bigint := es._system_identifier();
BEGIN
    IF NEW.system_identifier = me THEN
        UPDATE es.position_base
           SET xid_offset = GREATEST(xid_offset, NEW.xid_offset),
               restored_foreign = restored_foreign OR NEW.restored_foreign
         WHERE system_identifier = me;
        IF FOUND THEN
            RETURN NULL;
        END IF;
    ELSE
        UPDATE es.position_base SET restored_foreign = true WHERE system_identifier = me;
    END IF;
    PERFORM es._position_base_changed();
    RETURN NEW;
END
$$;

CREATE TRIGGER position_base_merge
    BEFORE INSERT ON es.position_base
    FOR EACH ROW EXECUTE FUNCTION es._merge_position_base();
ALTER TABLE es.position_base ENABLE ALWAYS TRIGGER position_base_merge;

-- Nothing is open to other roles until granted: appends run as the extension
-- owner (SECURITY DEFINER), so EXECUTE on them is what lets a role write.
REVOKE ALL ON FUNCTION es.append_event(text, text, jsonb, bigint, jsonb, uuid, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es.append_events(text, jsonb, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es.define_aggregate(text, regprocedure, jsonb, jsonb, integer) FROM PUBLIC;
-- schemas are checked in every append and upcasters run in every read: like
-- aggregates, defining them stays with the extension's owner
REVOKE ALL ON FUNCTION es.define_event_schema(text, jsonb, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es.define_upcaster(text, integer, jsonb, regprocedure, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es.create_projection(text, regprocedure, text, text[], text[], regprocedure) FROM PUBLIC;
REVOKE ALL ON FUNCTION es.run_projection(text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION es.rebuild_projection(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es.drop_projection(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es.materialize_aggregate(text, text) FROM PUBLIC;

-- Trigger functions and internal entry points are the extension's own: no
-- role may put them on a table of its own (a made-up row would reach other
-- roles' projections) or call them directly.
REVOKE ALL ON FUNCTION es._after_insert() FROM PUBLIC;
REVOKE ALL ON FUNCTION es._forbid_change() FROM PUBLIC;
REVOKE ALL ON FUNCTION es._merge_position_base() FROM PUBLIC;
REVOKE ALL ON FUNCTION es._evolution_changed() FROM PUBLIC;
