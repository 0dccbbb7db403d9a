-- Events are immutable. These triggers fire for every role, the owner and
-- superusers included, and also under session_replication_role = replica.
-- The function (src/store/guard.rs) lets a statement through only while the
-- extension's own change primitives (sql/12_lifecycle.sql) run it; es.audit
-- ('never') not even then.

CREATE FUNCTION es._forbid_change() RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'es_forbid_change';

CREATE TRIGGER events_no_update_delete
    BEFORE UPDATE OR DELETE ON es.events
    FOR EACH STATEMENT EXECUTE FUNCTION es._forbid_change();
CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON es.events
    FOR EACH STATEMENT EXECUTE FUNCTION es._forbid_change();
ALTER TABLE es.events ENABLE ALWAYS TRIGGER events_no_update_delete;
ALTER TABLE es.events ENABLE ALWAYS TRIGGER events_no_truncate;

CREATE TRIGGER archived_events_no_update_delete
    BEFORE UPDATE OR DELETE ON es.archived_events
    FOR EACH STATEMENT EXECUTE FUNCTION es._forbid_change();
CREATE TRIGGER archived_events_no_truncate
    BEFORE TRUNCATE ON es.archived_events
    FOR EACH STATEMENT EXECUTE FUNCTION es._forbid_change();
ALTER TABLE es.archived_events ENABLE ALWAYS TRIGGER archived_events_no_update_delete;
ALTER TABLE es.archived_events ENABLE ALWAYS TRIGGER archived_events_no_truncate;

CREATE TRIGGER audit_no_update_delete
    BEFORE UPDATE OR DELETE ON es.audit
    FOR EACH STATEMENT EXECUTE FUNCTION es._forbid_change('never');
CREATE TRIGGER audit_no_truncate
    BEFORE TRUNCATE ON es.audit
    FOR EACH STATEMENT EXECUTE FUNCTION es._forbid_change('never');
ALTER TABLE es.audit ENABLE ALWAYS TRIGGER audit_no_update_delete;
ALTER TABLE es.audit ENABLE ALWAYS TRIGGER audit_no_truncate;

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
REVOKE ALL ON FUNCTION es.append_multi(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION es._append_message(text, text, text, jsonb, jsonb, bigint) FROM PUBLIC;
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
-- the deliberate exceptions to append-only: es.grant_admin opens them
REVOKE ALL ON FUNCTION es.delete_stream(text, bigint, boolean, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es.truncate_stream(text, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es.set_retention(text, interval, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION es.apply_retention(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION es.redact(text, jsonb, text, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION es.archive_stream(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es.unarchive_stream(text) FROM PUBLIC;

-- Trigger functions and internal entry points are the extension's own: no
-- role may put them on a table of its own (a made-up row would reach other
-- roles' projections) or call them directly.
REVOKE ALL ON FUNCTION es._forbid_change() FROM PUBLIC;
REVOKE ALL ON FUNCTION es._merge_position_base() FROM PUBLIC;
REVOKE ALL ON FUNCTION es._evolution_changed() FROM PUBLIC;
REVOKE ALL ON FUNCTION es._remove_events(text, bigint, text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION es._redact_events(text, jsonb, text[], text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION es._move_events(text, boolean, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es._append_marker(text, text, jsonb, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION es._refresh_read_models_of(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es._lock_stream(text, text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION es._truncate_locked(text, text, bigint, bigint, boolean, bigint, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es._renew_snapshots(text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION es._refresh_read_models(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION es._carry_base_snapshots() FROM PUBLIC;
