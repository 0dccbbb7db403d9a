//! In-backend tests of es.stats() and es.verify().

#[pgrx::pg_schema]
mod tests {
    use crate::test_harness::*;
    use pgrx::prelude::*;

    #[pg_test]
    fn stats_counts_what_the_tables_hold() {
        run("SELECT es.append_events('st1acc-1', '[{\"type\": \"St1Opened\", \"data\": {}},
                                                  {\"type\": \"St1Deposited\", \"data\": {\"amount\": 1}}]')");
        run("SELECT es.append_event('st1acc-2', 'St1Opened', '{}')");
        run("SELECT es.define_aggregate('st1acc', reducers => '{\"St1Deposited\": [{\"inc\": \"n\"}]}', snapshot_every => 1)");
        run("SELECT es.append_event('st1acc-2', 'St1Deposited', '{}')");
        for (key, sql) in [
            ("total_events", "SELECT count(*) FROM es.events"),
            ("total_streams", "SELECT count(*) FROM es.streams"),
            ("total_snapshots", "SELECT count(*) FROM es.snapshots"),
            (
                "last_position",
                "SELECT max(global_position) FROM es.events",
            ),
        ] {
            assert!(
                one_bool(&format!("SELECT (es.stats()->>'{key}')::bigint = ({sql})")),
                "{key}"
            );
        }
        assert_eq!(
            one_text("SELECT (es.stats()->'events_by_type'->>'St1Opened') || '/' || (es.stats()->'events_by_type'->>'St1Deposited') || '/' || (es.stats()->'streams_by_type'->>'st1acc')"),
            "2/2/2"
        );
        assert_eq!(
            one_text("SELECT a::text FROM jsonb_array_elements(es.stats()->'aggregates') a WHERE a->>'stream_type' = 'st1acc'"),
            "{\"kind\": \"reducers\", \"revision\": 1, \"stream_type\": \"st1acc\", \"snapshot_every\": 1}"
        );
        run("CREATE FUNCTION st1_h(e es.events) RETURNS void LANGUAGE sql AS $$ SELECT $$");
        run("SELECT es.create_projection('st1p', 'st1_h(es.events)', 'async', stream_types => ARRAY['st1acc'])");
        run("SELECT es.subscribe('st1c', stream_types => ARRAY['st1acc'])");
        assert_eq!(
            one_text("SELECT p->>'mode' || ' ' || (p->>'position') || ' ' || (p->>'lag') || ' ' || (p->>'status')
                        FROM jsonb_array_elements(es.stats()->'projections') p WHERE p->>'name' = 'st1p'"),
            "async 0 4 running"
        );
        assert_eq!(
            one_text("SELECT s->>'position' FROM jsonb_array_elements(es.stats()->'subscriptions') s WHERE s->>'consumer' = 'st1c'"),
            "0"
        );
        assert!(one_bool(
            "WITH s AS MATERIALIZED (SELECT (es.stats()->>'horizon')::bigint AS h)
             SELECT h > 0 AND h <= es._next_read_horizon() FROM s"
        ));
    }

    fn violations(prefix: &str) -> String {
        one_text(&format!(
            "SELECT coalesce(string_agg(check_name || ' ' || object, ', ' ORDER BY check_name, object), '')
               FROM es.verify() WHERE object LIKE '%{prefix}%'"
        ))
    }

    #[pg_test]
    fn verify_is_empty_for_an_intact_store_and_names_each_violation() {
        run("SELECT es.define_aggregate('vf1', reducers => '{\"D\": [{\"add\": \"b\", \"from\": \"$.x\"}]}', initial_state => '{\"b\": 0}', snapshot_every => 2)");
        run("LOCK TABLE es.events IN SHARE ROW EXCLUSIVE MODE");
        run("SELECT es.materialize_aggregate('vf1', 'vf1_state')");
        for i in 1..=5 {
            run(&format!(
                "SELECT es.append_event('vf1-a', 'D', '{{\"x\": {i}}}')"
            ));
        }
        run("SELECT es.append_event('vf1-b', 'D', '{\"x\": 1}')");
        assert_eq!(violations("vf1"), "");
        assert_eq!(
            one_i64("SELECT count(*) FROM es.verify('quick') WHERE object LIKE 'vf1%'"),
            0
        );

        // a snapshot that disagrees with a fold from scratch
        run("UPDATE es.snapshots SET state = '{\"b\": -1}' WHERE stream_id = 'vf1-a' AND version = 4");
        // a materialized row that disagrees with es.load
        run("UPDATE vf1_state SET state = '{\"b\": 99}' WHERE stream_id = 'vf1-b'");
        // es.streams out of step with the events
        run("UPDATE es.streams SET version = 7 WHERE stream_id = 'vf1-b'");
        // a gap in a stream's versions (written around the append functions)
        run("INSERT INTO es.events (global_position, stream_id, stream_type, version, event_type, data, event_id)
             VALUES ((SELECT max(global_position) + 1 FROM es.events), 'vf1-c', 'vf1', 2, 'D', '{\"x\": 1}', gen_random_uuid())");
        run(
            "INSERT INTO es.streams (stream_id, stream_type, version, last_position)
             VALUES ('vf1-c', 'vf1', 2, (SELECT max(global_position) FROM es.events))",
        );
        assert_eq!(
            violations("vf1"),
            // vf1-a's table row is right, but es.load starts from the bad snapshot
            "materialized_row public.vf1_state: vf1-a, materialized_row public.vf1_state: vf1-b, \
             materialized_row public.vf1_state: vf1-c, snapshot vf1-a@4, stream_row vf1-b, \
             stream_versions vf1-c"
        );
        // quick mode skips the fold checks
        assert_eq!(
            one_text("SELECT string_agg(check_name || ' ' || object, ', ' ORDER BY check_name, object) FROM es.verify('quick') WHERE object LIKE 'vf1%'"),
            "stream_row vf1-b, stream_versions vf1-c"
        );
    }

    #[pg_test]
    fn verify_reports_positions_beyond_the_store() {
        run("CREATE FUNCTION vf2_h(e es.events) RETURNS void LANGUAGE sql AS $$ SELECT $$");
        run("SELECT es.create_projection('vf2p', 'vf2_h(es.events)', 'async')");
        run("SELECT es.subscribe('vf2c')");
        run("UPDATE es.projection_registry SET position = (SELECT coalesce(max(global_position), 0) + 10 FROM es.events) WHERE name = 'vf2p'");
        run("UPDATE es.subscriptions SET position = (SELECT coalesce(max(global_position), 0) + 10 FROM es.events) WHERE consumer = 'vf2c'");
        assert_eq!(
            violations("vf2"),
            "projection_position vf2p, subscription_position vf2c"
        );
    }

    /// pg_upgrade refuses a cluster whose tables have columns of these types
    /// (their oids do not survive it); the extension's tables must have none.
    #[pg_test]
    fn no_extension_table_blocks_pg_upgrade() {
        assert_eq!(
            one_text(
                "SELECT coalesce(string_agg(c.relname || '.' || a.attname, ', '), '')
                   FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                  WHERE c.relnamespace = 'es'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
                    AND a.atttypid IN ('regproc'::regtype, 'regprocedure'::regtype, 'regoper'::regtype,
                                       'regoperator'::regtype, 'regconfig'::regtype,
                                       'regdictionary'::regtype, 'regnamespace'::regtype,
                                       'regcollation'::regtype)"
            ),
            ""
        );
    }

    #[pg_test]
    fn verify_rejects_an_unknown_mode() {
        assert_error(
            "PERFORM * FROM es.verify('fast')",
            "22023",
            "mode must be 'full' or 'quick'",
        );
        assert_error("PERFORM * FROM es.verify(NULL)", "22023", "got NULL");
    }
}
