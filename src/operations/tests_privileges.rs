//! In-backend tests of privileges: the grant helpers, append only through
//! the functions, look-alike objects on a caller's search_path, and
//! projections that run with their creator's rights.

#[pgrx::pg_schema]
mod tests {
    use crate::test_harness::*;
    use pgrx::prelude::*;

    #[pg_test]
    fn a_writer_appends_only_through_the_functions() {
        run("CREATE ROLE pv1_writer; SELECT es.grant_writer('pv1_writer')");
        run("SET ROLE pv1_writer");
        assert_eq!(one_i64("SELECT es.append_event('pv1-1', 'A', '{}')"), 1);
        assert_eq!(
            one_i64("SELECT es.append_events('pv1-1', '[{\"type\": \"B\", \"data\": 1}]', 1)"),
            2
        );
        assert_eq!(one_i64("SELECT count(*) FROM es.read_stream('pv1-1')"), 2);
        for stmt in [
            "INSERT INTO es.events (global_position, stream_id, stream_type, version, event_type, data, event_id) VALUES (1, 'pv1-1', 'pv1', 3, 'X', '{}', gen_random_uuid())",
            "UPDATE es.events SET data = '{}' WHERE stream_id = 'pv1-1'",
            "DELETE FROM es.events WHERE stream_id = 'pv1-1'",
            "TRUNCATE es.events",
            "INSERT INTO es.streams (stream_id, stream_type, version) VALUES ('pv1-2', 'pv1', 1)",
            "UPDATE es.streams SET version = 1 WHERE stream_id = 'pv1-1'",
            "DELETE FROM es.streams",
            "TRUNCATE es.streams",
            "INSERT INTO es.snapshots (stream_id, version, revision, stream_type, state) VALUES ('pv1-1', 1, 1, 'pv1', '{}')",
            "UPDATE es.snapshots SET state = '{}'",
            "DELETE FROM es.snapshots",
            "TRUNCATE es.snapshots",
            "UPDATE es.projection_registry SET position = 0",
        ] {
            assert_error(stmt, "42501", "permission denied");
        }
        // defining aggregates stays with the owner
        assert_error(
            "PERFORM es.define_aggregate('pv1', reducers => '{}')",
            "42501",
            "permission denied",
        );
        run("RESET ROLE");
        assert_eq!(events_in("pv1-1"), 2);
    }

    #[pg_test]
    fn readers_read_and_revokes_take_rights_back() {
        run("SELECT es.append_event('pv2-1', 'A', '{}')");
        run("CREATE ROLE pv2_reader; SELECT es.grant_reader('pv2_reader')");
        run("CREATE ROLE pv2_writer; SELECT es.grant_writer('pv2_writer')");
        run("SET ROLE pv2_reader");
        assert_eq!(one_i64("SELECT count(*) FROM es.read_stream('pv2-1')"), 1);
        assert_eq!(one_i64("SELECT es.stream_version('pv2-1')"), 1);
        assert!(one_bool(
            "SELECT (es.stats()->>'total_events')::bigint >= 1"
        ));
        assert!(one_bool("SELECT count(*) >= 0 FROM es.projections"));
        assert_error(
            "PERFORM es.append_event('pv2-1', 'A', '{}')",
            "42501",
            "permission denied for function append_event",
        );
        run("RESET ROLE");
        run("SELECT es.revoke_writer('pv2_writer')");
        run("SET ROLE pv2_writer");
        assert_error(
            "PERFORM es.append_event('pv2-1', 'A', '{}')",
            "42501",
            "permission denied",
        );
        assert_eq!(one_i64("SELECT count(*) FROM es.read_stream('pv2-1')"), 1);
        run("RESET ROLE");
        run("SELECT es.revoke_reader('pv2_reader')");
        run("SET ROLE pv2_reader");
        assert_error(
            "PERFORM count(*) FROM es.read_stream('pv2-1')",
            "42501",
            "permission denied for schema es",
        );
        run("RESET ROLE");
    }

    #[pg_test]
    fn only_the_extension_owner_grants() {
        run("CREATE ROLE pv3_a; CREATE ROLE pv3_b; SELECT es.grant_writer('pv3_a')");
        run("SET ROLE pv3_a");
        assert_error(
            "PERFORM es.grant_writer('pv3_b')",
            "42501",
            "only the owner of extension pg_eventsource",
        );
        run("RESET ROLE");
        assert_error(
            "PERFORM es.grant_reader(NULL)",
            "22004",
            "role must not be NULL",
        );
    }

    #[pg_test]
    fn look_alike_objects_on_the_search_path_change_nothing() {
        // Functions and an operator named like the ones the extension uses,
        // in a schema searched before pg_catalog: any call of them fails or lies.
        run("CREATE SCHEMA pv4_evil;
             CREATE FUNCTION pv4_evil.jsonb_array_elements(jsonb) RETURNS SETOF jsonb LANGUAGE plpgsql AS
               $$ BEGIN RAISE EXCEPTION 'hijacked jsonb_array_elements'; END $$;
             CREATE FUNCTION pv4_evil.now() RETURNS timestamptz LANGUAGE plpgsql AS
               $$ BEGIN RAISE EXCEPTION 'hijacked now'; END $$;
             CREATE FUNCTION pv4_evil.hashtext(text) RETURNS integer LANGUAGE plpgsql AS
               $$ BEGIN RAISE EXCEPTION 'hijacked hashtext'; END $$;
             CREATE FUNCTION pv4_evil.pg_current_snapshot() RETURNS pg_snapshot LANGUAGE plpgsql AS
               $$ BEGIN RAISE EXCEPTION 'hijacked pg_current_snapshot'; END $$;
             CREATE FUNCTION pv4_evil.count_all_true(text, text) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
             CREATE OPERATOR pv4_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = pv4_evil.count_all_true);
             CREATE FUNCTION pv4_evil.gt(bigint, bigint) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
             CREATE OPERATOR pv4_evil.> (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = pv4_evil.gt);");
        run("SELECT es.define_aggregate('pv4', reducers => '{\"D\": [{\"add\": \"b\", \"from\": \"$.x\"}]}', initial_state => '{\"b\": 0}', snapshot_every => 2)");
        run("SELECT es.append_event('pv4other-1', 'D', '{\"x\": 100}')");
        run("SET LOCAL search_path = pv4_evil, pg_catalog, public");
        // the look-alikes are really in effect for plain queries
        assert_error("PERFORM now()", "P0001", "hijacked now");
        assert!(one_bool("SELECT 'a' = 'b'"));
        // ... but not inside the extension
        assert_eq!(
            one_i64("SELECT es.append_events('pv4-1', '[{\"type\": \"D\", \"data\": {\"x\": 1}}, {\"type\": \"D\", \"data\": {\"x\": 2}}]')"),
            2
        );
        assert_eq!(
            one_i64("SELECT es.append_event('pv4-1', 'D', '{\"x\": 3}', 2)"),
            3
        );
        assert_eq!(
            one_text("SELECT string_agg(version::text, ',' ORDER BY version) FROM es.read_stream('pv4-1')"),
            "1,2,3"
        );
        assert_eq!(one_i64("SELECT es.stream_version('pv4-1')"), 3);
        assert_eq!(
            one_text("SELECT state::text FROM es.load('pv4-1')"),
            "{\"b\": 6}"
        );
        assert!(one_bool(
            "WITH r AS MATERIALIZED (SELECT global_position FROM es.read_all(0, 1000))
             SELECT count(*) = 0 FROM r WHERE global_position >= es._next_read_horizon()"
        ));
        run("SELECT es.subscribe('pv4c', stream_types => ARRAY['pv4'])");
        assert_eq!(one_i64("SELECT count(*) FROM es.poll('pv4c', 10, 0, 2)"), 0);
        assert!(one_bool("SELECT es.stats() IS NOT NULL"));
        assert_eq!(
            one_i64("SELECT count(*) FROM es.verify() WHERE object LIKE 'pv4%'"),
            0
        );
        run("RESET search_path");
    }

    #[pg_test]
    fn a_writer_cannot_use_a_projection_to_write_where_it_may_not() {
        run("CREATE TABLE pv5_secret (v text);
             CREATE TABLE pv5_state (stream_id text PRIMARY KEY, version bigint NOT NULL, state jsonb NOT NULL);
             SELECT es.define_aggregate('pv5', reducers => '{}');
             CREATE ROLE pv5_writer; SELECT es.grant_writer('pv5_writer');
             GRANT CREATE ON SCHEMA public TO pv5_writer;");
        run("SET ROLE pv5_writer");
        assert_error(
            "INSERT INTO pv5_secret VALUES ('x')",
            "42501",
            "permission denied",
        );
        run("CREATE FUNCTION pv5_h(e es.events) RETURNS void LANGUAGE sql AS $$ INSERT INTO public.pv5_secret VALUES (e.stream_id) $$;
             SELECT es.create_projection('pv5-inline', 'pv5_h(es.events)', stream_types => ARRAY['pv5']);
");
        // the materializer refuses a table its caller does not own
        assert_error(
            "PERFORM es.materialize_aggregate('pv5', 'public.pv5_state')",
            "42501",
            "may materialize into it",
        );
        run("RESET ROLE");
        // Whoever appends (here a superuser), the handler runs as pv5_writer.
        assert_error(
            "PERFORM es.append_event('pv5-1', 'A', '{}')",
            "42501",
            "permission denied for table pv5_secret",
        );
        assert_eq!(one_i64("SELECT count(*) FROM pv5_secret"), 0);
        assert_eq!(events_in("pv5-1"), 0);
        // creating an inline projection as the writer replays history as the writer
        run("SELECT es.drop_projection('pv5-inline')");
        run("SELECT es.append_event('pv5-1', 'A', '{}')");
        run("SET ROLE pv5_writer");
        assert_error(
            "PERFORM es.create_projection('pv5-again', 'pv5_h(es.events)', stream_types => ARRAY['pv5'])",
            "42501",
            "permission denied for table pv5_secret",
        );
        run("RESET ROLE");
        assert_eq!(one_i64("SELECT count(*) FROM pv5_secret"), 0);
    }
}
