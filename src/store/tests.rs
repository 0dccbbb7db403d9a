//! In-backend tests of the store: appends, reads, versions, positions, bad
//! input, immutability. Each runs in its own rolled-back transaction, in
//! parallel with the others: every test uses its own streams.

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    use crate::test_harness::*;

    // ---- append_event -------------------------------------------------

    #[pg_test]
    fn append_event_counts_versions_from_one() {
        assert_eq!(
            one_i64("SELECT es.append_event('acc-t1', 'Opened', '{\"x\":1}')"),
            1
        );
        assert_eq!(
            one_i64("SELECT es.append_event('acc-t1', 'Deposited', '{}')"),
            2
        );
        assert_eq!(one_i64("SELECT es.stream_version('acc-t1')"), 2);
        assert_eq!(
            one_text("SELECT string_agg(version || event_type, ',' ORDER BY version) FROM es.events WHERE stream_id = 'acc-t1'"),
            "1Opened,2Deposited"
        );
        assert_eq!(
            one_text("SELECT stream_type || version FROM es.streams WHERE stream_id = 'acc-t1'"),
            "acc2"
        );
    }

    #[pg_test]
    fn append_event_stores_data_metadata_and_defaults() {
        Spi::run("SELECT es.append_event('meta-t2', 'A', '{\"n\": 1.10}', metadata => '{\"correlation_id\": \"c\"}')").unwrap();
        Spi::run("SELECT es.append_event('meta-t2', 'B', 'null')").unwrap();
        assert_eq!(
            one_text("SELECT string_agg(data::text || metadata::text, ';' ORDER BY version) FROM es.events WHERE stream_id = 'meta-t2'"),
            "{\"n\": 1.10}{\"correlation_id\": \"c\"};null{}"
        );
        assert!(one_bool(
            "SELECT bool_and(recorded_at = now() AND substr(event_id::text, 15, 1) = '7') FROM es.events WHERE stream_id = 'meta-t2'"
        ));
    }

    #[pg_test]
    fn stream_type_comes_from_argument_record_or_prefix() {
        Spi::run("SELECT es.append_event('order-t3-9', 'Placed', '{}')").unwrap();
        Spi::run("SELECT es.append_event('plain_t3', 'Placed', '{}')").unwrap();
        Spi::run("SELECT es.append_event('x-t3', 'Placed', '{}', stream_type => 'custom')")
            .unwrap();
        // recorded type wins when none is given
        Spi::run("SELECT es.append_event('x-t3', 'Shipped', '{}')").unwrap();
        Spi::run("SELECT es.append_event('x-t3', 'Shipped', '{}', stream_type => 'custom')")
            .unwrap();
        assert_eq!(
            one_text("SELECT string_agg(stream_id || ':' || stream_type, ',' ORDER BY stream_id) FROM es.streams WHERE stream_id IN ('order-t3-9', 'plain_t3', 'x-t3')"),
            "order-t3-9:order,plain_t3:plain_t3,x-t3:custom"
        );
        assert_eq!(
            one_text("SELECT string_agg(DISTINCT stream_type, ',') FROM es.events WHERE stream_id = 'x-t3'"),
            "custom"
        );
        assert_error(
            "PERFORM es.append_event('x-t3', 'Shipped', '{}', stream_type => 'other')",
            "22023",
            "stream \"x-t3\" has type \"custom\", not \"other\"",
        );
        assert_eq!(events_in("x-t3"), 3);
    }

    // ---- expected versions ----------------------------------------------

    #[pg_test]
    fn expected_version_zero_means_new_stream() {
        assert_eq!(one_i64("SELECT es.append_event('new-t4', 'A', '{}', 0)"), 1);
        assert_error(
            "PERFORM es.append_event('new-t4', 'B', '{}', 0)",
            "40001",
            "wrong expected version for stream \"new-t4\": expected 0, actual 1",
        );
        assert_eq!(events_in("new-t4"), 1);
    }

    #[pg_test]
    fn expected_version_n_must_match() {
        Spi::run("SELECT es.append_event('exact-t5', 'A', '{}', 0)").unwrap();
        assert_eq!(
            one_i64("SELECT es.append_event('exact-t5', 'B', '{}', 1)"),
            2
        );
        assert_error(
            "PERFORM es.append_event('exact-t5', 'C', '{}', 1)",
            "40001",
            "expected 1, actual 2",
        );
        assert_error(
            "PERFORM es.append_event('exact-t5', 'C', '{}', 7)",
            "40001",
            "expected 7, actual 2",
        );
        assert_error(
            "PERFORM es.append_event('missing-t5', 'C', '{}', 3)",
            "40001",
            "wrong expected version for stream \"missing-t5\": expected 3, actual 0",
        );
        assert_eq!(events_in("exact-t5"), 2);
        assert_eq!(events_in("missing-t5"), 0);
        assert_eq!(
            one_i64("SELECT count(*) FROM es.streams WHERE stream_id = 'missing-t5'"),
            0
        );
        assert_eq!(one_i64("SELECT es.stream_version('exact-t5')"), 2);
    }

    // ---- idempotent retries by event id -------------------------------

    #[pg_test]
    fn same_event_id_and_content_is_a_safe_retry() {
        let id = "'0190a8c2-0000-7000-8000-0000000000a6'";
        Spi::run("SELECT es.append_event('idem-t6', 'A', '{}')").unwrap();
        let sql =
            format!("SELECT es.append_event('idem-t6', 'B', '{{\"k\": 1}}', 1, event_id => {id})");
        assert_eq!(one_i64(&sql), 2);
        // the retry carries the same (now stale) expected version: still fine
        assert_eq!(one_i64(&sql), 2);
        Spi::run("SELECT es.append_event('idem-t6', 'C', '{}')").unwrap();
        assert_eq!(one_i64(&sql), 2);
        assert_eq!(events_in("idem-t6"), 3);
        assert_error(
            &format!("PERFORM es.append_event('idem-t6', 'B', '{{\"k\": 2}}', event_id => {id})"),
            "23505",
            "event_id is already used",
        );
        assert_error(
            &format!("PERFORM es.append_event('other-t6', 'B', '{{\"k\": 1}}', event_id => {id})"),
            "23505",
            "event_id is already used",
        );
        assert_eq!(events_in("idem-t6"), 3);
        assert_eq!(events_in("other-t6"), 0);
    }

    #[pg_test]
    fn batch_with_ids_is_a_safe_retry() {
        let batch = r#"'[{"type":"A","data":{"i":1},"id":"0190a8c2-0000-7000-8000-0000000000b1"},
                        {"type":"B","data":{"i":2},"id":"0190a8c2-0000-7000-8000-0000000000b2"}]'"#;
        let sql = format!("SELECT es.append_events('idem-t7', {batch}, 0)");
        assert_eq!(one_i64(&sql), 2);
        assert_eq!(one_i64(&sql), 2);
        assert_eq!(events_in("idem-t7"), 2);
        // one id reused with other content, one new: rejected whole
        assert_error(
            r#"PERFORM es.append_events('idem-t7', '[{"type":"A","data":{"i":9},"id":"0190a8c2-0000-7000-8000-0000000000b1"},
                                                    {"type":"C","data":{},"id":"0190a8c2-0000-7000-8000-0000000000b3"}]')"#,
            "23505",
            "already used",
        );
        assert_eq!(events_in("idem-t7"), 2);
    }

    // ---- append_events ------------------------------------------------

    #[pg_test]
    fn append_events_is_one_atomic_batch() {
        let v = one_i64(
            r#"SELECT es.append_events('batch-t8', '[
                 {"type": "A", "data": {"n": 1}},
                 {"type": "B", "data": [1, 2], "metadata": {"m": true}},
                 {"type": "C", "data": "s", "metadata": null}]')"#,
        );
        assert_eq!(v, 3);
        assert_eq!(
            one_text("SELECT string_agg(version || event_type || data::text || metadata::text, ';' ORDER BY version) FROM es.events WHERE stream_id = 'batch-t8'"),
            "1A{\"n\": 1}{};2B[1, 2]{\"m\": true};3C\"s\"{}"
        );
        // positions follow versions within the batch, one apart
        assert!(one_bool(
            "SELECT max(global_position) - min(global_position) = 2 AND bool_and(global_position - version = (SELECT min(global_position) - 1 FROM es.events WHERE stream_id = 'batch-t8')) FROM es.events WHERE stream_id = 'batch-t8'"
        ));
        assert_eq!(
            one_i64(r#"SELECT es.append_events('batch-t8', '[{"type":"D","data":{}}]', 3)"#),
            4
        );
        assert_error(
            r#"PERFORM es.append_events('batch-t8', '[{"type":"E","data":{}}]', 3)"#,
            "40001",
            "expected 3, actual 4",
        );
        assert_eq!(events_in("batch-t8"), 4);
    }

    #[pg_test]
    fn malformed_batches_write_nothing() {
        let cases = [
            ("'{\"type\":\"A\"}'", "events must be a JSON array"),
            ("'[]'", "events must not be empty"),
            ("'[1]'", "events[0] must be a JSON object"),
            (
                "'[{\"type\":\"A\",\"data\":{}}, {\"data\":{}}]'",
                "events[1] has no \"type\"",
            ),
            (
                "'[{\"type\":7,\"data\":{}}]'",
                "events[0].type must be a string",
            ),
            (
                "'[{\"type\":\"\",\"data\":{}}]'",
                "events[0].type must not be empty",
            ),
            ("'[{\"type\":\"A\"}]'", "events[0] has no \"data\""),
            (
                "'[{\"type\":\"A\",\"data\":{},\"metadata\":[1]}]'",
                "events[0].metadata must be a JSON object",
            ),
            (
                "'[{\"type\":\"A\",\"data\":{},\"id\":\"nope\"}]'",
                "events[0].id must be a UUID string",
            ),
            (
                "'[{\"type\":\"A\",\"data\":{},\"id\":\"0190a5b0-0000-7000-8000-0000000000d1\"},
                   {\"type\":\"B\",\"data\":{},\"id\":\"0190a5b0-0000-7000-8000-0000000000d1\"}]'",
                "events[1].id appears twice in the batch",
            ),
            (
                "'[{\"type\":\"A\",\"data\":{},\"id\":\"0-190a5b000007000800000000000000f\"}]'",
                "events[0].id must be a UUID string",
            ),
            (
                "'[{\"type\":\"A\",\"data\":{},\"id\":\"{0190a5b0-0000-7000-8000-00000000000f\"}]'",
                "events[0].id must be a UUID string",
            ),
        ];
        for (arg, msg) in cases {
            assert_error(
                &format!("PERFORM es.append_events('bad-t9', {arg})"),
                "22023",
                msg,
            );
        }
        assert_error(
            "PERFORM es.append_events('bad-t9', NULL)",
            "22004",
            "events must not be NULL",
        );
        assert_eq!(events_in("bad-t9"), 0);
        // every form PostgreSQL's uuid input takes is accepted
        assert_eq!(
            one_i64(
                r#"SELECT es.append_events('uuid-t9', '[
                {"type":"A","data":{},"id":"0190-a5b0-0000-7000-8000-0000-0000-00c1"},
                {"type":"A","data":{},"id":"{0190a5b0-0000-7000-8000-0000000000c2}"},
                {"type":"A","data":{},"id":"0190A5B00000700080000000000000C3"}]')"#
            ),
            3
        );
        assert_eq!(
            one_text("SELECT string_agg(event_id::text, ',' ORDER BY version) FROM es.events WHERE stream_id = 'uuid-t9'"),
            "0190a5b0-0000-7000-8000-0000000000c1,0190a5b0-0000-7000-8000-0000000000c2,0190a5b0-0000-7000-8000-0000000000c3"
        );
        assert_eq!(one_i64("SELECT es.stream_version('bad-t9')"), 0);
    }

    // ---- bad input ----------------------------------------------------

    #[pg_test]
    fn bad_arguments_are_rejected_and_write_nothing() {
        let long = "x".repeat(1001);
        let cases = [
            (
                "NULL, 'A', '{}'".to_string(),
                "22004",
                "stream_id must not be NULL",
            ),
            (
                "'', 'A', '{}'".to_string(),
                "22023",
                "stream_id must not be empty",
            ),
            (
                format!("'{long}', 'A', '{{}}'"),
                "22001",
                "stream_id is 1001 bytes long",
            ),
            (
                "'bad-t10', NULL, '{}'".to_string(),
                "22004",
                "event_type must not be NULL",
            ),
            (
                "'bad-t10', '', '{}'".to_string(),
                "22023",
                "event_type must not be empty",
            ),
            (
                "'bad-t10', 'A', NULL".to_string(),
                "22004",
                "data must not be NULL",
            ),
            (
                "'bad-t10', 'A', '{}', -1".to_string(),
                "22023",
                "expected_version must not be negative",
            ),
            (
                "'bad-t10', 'A', '{}', metadata => '[1]'".to_string(),
                "22023",
                "metadata must be a JSON object",
            ),
            (
                "'bad-t10', 'A', '{}', metadata => '\"s\"'".to_string(),
                "22023",
                "metadata must be a JSON object",
            ),
            (
                "'bad-t10', 'A', '{}', stream_type => ''".to_string(),
                "22023",
                "stream_type must not be empty",
            ),
        ];
        for (args, state, msg) in &cases {
            assert_error(&format!("PERFORM es.append_event({args})"), state, msg);
        }
        assert_error(
            "PERFORM es.append_events(NULL, '[{\"type\":\"A\",\"data\":{}}]')",
            "22004",
            "stream_id must not be NULL",
        );
        assert_error(
            "PERFORM es.append_events('bad-t10', '[{\"type\":\"A\",\"data\":{}}]', -5)",
            "22023",
            "expected_version must not be negative",
        );
        assert_eq!(events_in("bad-t10"), 0);
        assert_eq!(events_in(""), 0);
        // a stream id of exactly 1000 bytes is fine
        let ok = "y".repeat(1000);
        assert_eq!(
            one_i64(&format!("SELECT es.append_event('{ok}', 'A', '{{}}')")),
            1
        );
    }

    #[pg_test]
    fn data_over_max_event_size_is_rejected() {
        Spi::run("SET LOCAL es.max_event_size = '1kB'").unwrap();
        let big = format!("'{{\"s\": \"{}\"}}'", "z".repeat(2000));
        assert_error(
            &format!("PERFORM es.append_event('size-t11', 'A', {big})"),
            "54000",
            "es.max_event_size is 1024 bytes",
        );
        assert_error(
            &format!("PERFORM es.append_events('size-t11', jsonb_build_array(jsonb_build_object('type', 'A', 'data', {big}::jsonb)))"),
            "54000",
            "events[0].data is",
        );
        assert_eq!(
            one_i64("SELECT es.append_event('size-t11', 'A', '{\"s\": \"small\"}')"),
            1
        );
        assert_eq!(events_in("size-t11"), 1);
        Spi::run("RESET es.max_event_size").unwrap();
        assert_eq!(one_text("SHOW es.max_event_size"), "1MB");
    }

    // ---- reading --------------------------------------------------------

    #[pg_test]
    fn appends_in_a_read_only_transaction_fail_with_25006() {
        run("SET LOCAL transaction_read_only = on");
        assert_error(
            "PERFORM es.append_event('ro-t30', 'A', '{}')",
            "25006",
            "read-only transaction",
        );
        assert_error(
            "PERFORM es.append_events('ro-t30', '[{\"type\": \"A\", \"data\": 1}]')",
            "25006",
            "read-only transaction",
        );
    }

    #[pg_test]
    fn read_stream_pages_by_version() {
        Spi::run(
            "SELECT es.append_events('read-t12', (SELECT jsonb_agg(jsonb_build_object('type', 'E', 'data', jsonb_build_object('i', i))) FROM generate_series(1, 10) i))",
        )
        .unwrap();
        assert_eq!(
            one_text("SELECT string_agg(version::text, ',') FROM es.read_stream('read-t12', 4, 3)"),
            "4,5,6"
        );
        assert_eq!(
            one_i64("SELECT count(*) FROM es.read_stream('read-t12')"),
            10
        );
        assert_eq!(
            one_i64("SELECT count(*) FROM es.read_stream('nothing-t12')"),
            0
        );
        assert_eq!(one_i64("SELECT es.stream_version('nothing-t12')"), 0);
        assert_error(
            "PERFORM es.read_stream(NULL)",
            "22004",
            "stream_id must not be NULL",
        );
        assert_error(
            "PERFORM es.read_stream('')",
            "22023",
            "stream_id must not be empty",
        );
        assert_error(
            "PERFORM es.stream_version(NULL)",
            "22004",
            "stream_id must not be NULL",
        );
    }

    #[pg_test]
    fn stream_version_reads_with_the_callers_rights() {
        run("SELECT es.append_event('sv-t27', 'A', '{}'), es.append_event('sv-t27', 'A', '{}')");
        run("CREATE ROLE sv_t27_reader; SELECT es.grant_reader('sv_t27_reader')");
        run("SET ROLE sv_t27_reader");
        assert_eq!(one_i64("SELECT es.stream_version('sv-t27')"), 2);
        assert_eq!(one_i64("SELECT es.stream_version('sv-t27-none')"), 0);
        run("RESET ROLE");
        // SELECT on columns of es.streams that do not include version: refused, as its
        // query is
        run(
            "CREATE ROLE sv_t27_cols; GRANT USAGE ON SCHEMA es TO sv_t27_cols;
             GRANT SELECT (stream_id, stream_type) ON es.streams TO sv_t27_cols",
        );
        run("SET ROLE sv_t27_cols");
        assert_error(
            "PERFORM es.stream_version('sv-t27')",
            "42501",
            "permission denied for table streams",
        );
        run("RESET ROLE");
        // (row level security: tests/integration/tests/security_reads.rs)
    }

    #[pg_test]
    fn positions_follow_transaction_ids() {
        Spi::run("SELECT es.append_event('pos-t13', 'A', '{}')").unwrap();
        Spi::run("SELECT es.append_event('pos-t13b', 'A', '{}')").unwrap();
        // (xid8 + offset) << 20 | n, increasing within the transaction. The id is
        // the transaction's own, or, when a reader of another test had already
        // moved past it at the first append, a later one it took then
        // (src/store/position.rs, late appenders): one id for the whole transaction.
        assert!(one_bool(
            "SELECT count(DISTINCT global_position >> 20) = 1
                AND min(global_position >> 20) >= pg_current_xact_id()::text::bigint
                    + (SELECT xid_offset FROM es.position_base WHERE system_identifier = es._system_identifier())
             FROM es.events WHERE stream_id IN ('pos-t13', 'pos-t13b')"
        ));
        assert!(one_bool(
            "SELECT (SELECT global_position FROM es.events WHERE stream_id = 'pos-t13')
                  < (SELECT global_position FROM es.events WHERE stream_id = 'pos-t13b')"
        ));
    }

    #[pg_test]
    fn read_all_holds_back_events_of_open_transactions() {
        Spi::run("SELECT es.append_event('hold-t14', 'A', '{}')").unwrap();
        // this transaction is still open, so its events lie at or above the horizon
        assert!(one_bool(
            "SELECT es.read_horizon() <= min(global_position) FROM es.events WHERE stream_id = 'hold-t14'"
        ));
        assert_eq!(
            one_i64("SELECT count(*) FROM es.read_all(0, NULL) WHERE stream_id = 'hold-t14'"),
            0
        );
        // es.horizon() reports the horizon es.read_all uses (taken fresh); the one
        // for the query's own snapshot may be lower, never higher. The holder is this
        // backend or, when another test appends at the same time with an older
        // transaction, that one: either way an appending backend that is alive.
        assert!(one_bool(
            "SELECT held_back_events >= 1 AND held_by = 'appending'
                    AND holder_pid IN (SELECT pid FROM pg_stat_activity)
                    AND horizon_position <= (SELECT min(global_position) FROM es.events WHERE stream_id = 'hold-t14')
                    AND es.read_horizon() <= horizon_position
               FROM es.horizon()"
        ));
    }

    #[pg_test]
    fn partition_of_is_the_routers_rule_and_read_partition_checks_its_input() {
        // PL/Proxy's rule: hashtext(stream_id) & (n - 1), in 0 .. n-1
        assert!(one_bool(
            "SELECT bool_and(es.partition_of(s, 16) = (hashtext(s) & 15)
                             AND es.partition_of(s, 16) BETWEEN 0 AND 15
                             AND es.partition_of(s, 1) = 0)
               FROM (SELECT 'stream-' || i AS s FROM generate_series(1, 500) i) x"
        ));
        // 500 streams spread over all 16
        assert_eq!(
            one_i64(
                "SELECT count(DISTINCT es.partition_of('stream-' || i, 16)) FROM generate_series(1, 500) i"
            ),
            16
        );
        assert_error("SELECT es.partition_of('a', 3)", "22023", "power of two");
        assert_error("SELECT es.partition_of('a', 0)", "22023", "power of two");
        assert_error(
            "SELECT * FROM es.read_partition(0, 6)",
            "22023",
            "power of two",
        );
        assert_error(
            "SELECT * FROM es.read_partition(4, 4)",
            "22023",
            "between 0 and 3",
        );
        assert_error(
            "SELECT * FROM es.read_partition(-1, 4)",
            "22023",
            "between 0 and 3",
        );
        assert_error(
            "SELECT * FROM es.read_partition(NULL, 4)",
            "22023",
            "between 0 and 3",
        );
    }

    #[pg_test]
    fn read_all_filters_and_limits() {
        // committed events of other tests may exist; only check shape and order
        assert!(one_bool(
            "WITH s AS MATERIALIZED (SELECT global_position p FROM es.read_all(0, 50))
             SELECT coalesce(bool_and(p < es._next_read_horizon()), true) FROM s"
        ));
        assert!(one_bool(
            "SELECT count(*) <= 5 FROM es.read_all(0, 5, ARRAY['A'], ARRAY['acc'])"
        ));
        assert_error(
            "PERFORM es.read_all(0, -1)",
            "2201W",
            "LIMIT must not be negative",
        );
    }

    #[pg_test]
    fn events_restored_from_another_cluster_stay_before_new_ones() {
        // What a restore from a cluster with higher transaction ids leaves:
        // events far above this cluster's ids, and the other cluster's offset row.
        Spi::run("INSERT INTO es.position_base (system_identifier, xid_offset) VALUES (12345, 0)")
            .unwrap();
        assert!(one_bool(
            "SELECT restored_foreign FROM es.position_base WHERE system_identifier = es._system_identifier()"
        ));
        Spi::run(
            "INSERT INTO es.events (global_position, stream_id, stream_type, version, event_type, data, event_id)
             SELECT ((txid_current() + 1000000 + i) << 20) | 1, 'restored-t16', 'restored', i, 'E', '{}', es.uuid_generate_v7()
             FROM generate_series(1, 3) i",
        )
        .unwrap();
        Spi::run("INSERT INTO es.streams (stream_id, stream_type, version) VALUES ('restored-t16', 'restored', 3)").unwrap();
        let restored_max =
            one_i64("SELECT max(global_position) FROM es.events WHERE stream_id = 'restored-t16'");
        // no offset for this cluster yet: readers may hand out every restored event
        assert_eq!(one_i64("SELECT es.read_horizon()"), restored_max + 1);
        // the first append here records an offset that puts it after them
        assert_eq!(
            one_i64("SELECT es.append_event('restored-t16', 'F', '{}', 3)"),
            4
        );
        assert_eq!(one_i64("SELECT es.append_event('fresh-t16', 'F', '{}')"), 1);
        assert!(one_bool(&format!(
            "SELECT min(global_position) > {restored_max} FROM es.events WHERE event_type = 'F' AND stream_id IN ('restored-t16', 'fresh-t16')"
        )));
        assert!(one_bool(
            "SELECT xid_offset > 0 FROM es.position_base WHERE system_identifier = es._system_identifier()"
        ));
    }

    #[pg_test]
    fn restoring_this_clusters_offset_row_merges_into_ours() {
        Spi::run(
            "INSERT INTO es.position_base (system_identifier, xid_offset) VALUES (es._system_identifier(), 7)",
        )
        .unwrap();
        assert_eq!(
            one_text("SELECT count(*) || ':' || max(xid_offset) || ':' || bool_or(restored_foreign) FROM es.position_base WHERE system_identifier = es._system_identifier()"),
            "1:7:false"
        );
    }

    // ---- immutability ---------------------------------------------------

    #[pg_test]
    fn events_cannot_be_updated_deleted_or_truncated() {
        Spi::run("SELECT es.append_event('imm-t15', 'A', '{}')").unwrap();
        assert_error(
            "UPDATE es.events SET data = '{\"x\":1}' WHERE stream_id = 'imm-t15'",
            "55000",
            "es.events is append-only: UPDATE is not allowed",
        );
        assert_error(
            "DELETE FROM es.events WHERE stream_id = 'imm-t15'",
            "55000",
            "es.events is append-only: DELETE is not allowed",
        );
        assert_error(
            "TRUNCATE es.events",
            "55000",
            "es.events is append-only: TRUNCATE is not allowed",
        );
        Spi::run("SET LOCAL session_replication_role = replica").unwrap();
        assert_error(
            "DELETE FROM es.events WHERE stream_id = 'imm-t15'",
            "55000",
            "append-only",
        );
        Spi::run("SET LOCAL session_replication_role = origin").unwrap();
        assert_eq!(events_in("imm-t15"), 1);
    }

    // ---- several streams in one call, positions, bounds --------------------

    /// "stream/version/position-matches" of each row es.append_multi returned
    /// (checked against es.events by a later statement: the call's own
    /// statement does not see what it wrote).
    fn multi(batches: &str) -> String {
        run(&format!(
            "CREATE TEMP TABLE multi_rows ON COMMIT DROP AS
             SELECT m.* FROM es.append_multi($b${batches}$b$)
                  WITH ORDINALITY AS m(stream_id, version, global_position, ord)"
        ));
        let out = one_text(
            "SELECT string_agg(m.stream_id || '/' || m.version || '/' ||
                               (e.global_position IS NOT NULL)::text, ' ' ORDER BY m.ord)
               FROM multi_rows m
               LEFT JOIN es.events e ON e.global_position = m.global_position
                                    AND e.stream_id = m.stream_id AND e.version = m.version",
        );
        run("DROP TABLE multi_rows");
        out
    }

    #[pg_test]
    fn append_multi_writes_every_stream_and_returns_each_event_in_order() {
        run("SELECT es.append_event('am-b-t40', 'Opened', '{}')");
        assert_eq!(
            multi(
                r#"[{"stream_id": "am-b-t40", "expected_version": 1,
                     "events": [{"type": "Deposited", "data": {"n": 1}}, {"type": "Deposited", "data": {"n": 2}}]},
                    {"stream_id": "am-a-t40", "stream_type": "other",
                     "events": [{"type": "Opened", "data": {}}]},
                    {"stream_id": "am-b-t40", "events": [{"type": "Closed", "data": {}}]}]"#
            ),
            "am-b-t40/2/true am-b-t40/3/true am-a-t40/1/true am-b-t40/4/true"
        );
        assert_eq!(
            one_text("SELECT stream_type FROM es.streams WHERE stream_id = 'am-a-t40'"),
            "other"
        );
        // positions grow with each stream's versions
        assert!(one_bool(
            "SELECT bool_and(ok) FROM (SELECT global_position > lag(global_position, 1, 0::bigint)
                                         OVER (ORDER BY version) AS ok
                                       FROM es.events WHERE stream_id = 'am-b-t40') x"
        ));
    }

    #[pg_test]
    fn append_multi_is_all_or_nothing() {
        run("SELECT es.append_event('am-x-t41', 'Opened', '{}')");
        // the second batch's expected version is wrong: the first batch is not written either
        assert_error(
            r#"PERFORM es.append_multi('[{"stream_id": "am-y-t41", "events": [{"type": "A", "data": {}}]},
                                        {"stream_id": "am-x-t41", "expected_version": 5,
                                         "events": [{"type": "B", "data": {}}]}]')"#,
            "40001",
            "expected 5, actual 1",
        );
        assert_eq!(events_in("am-y-t41"), 0);
        assert_eq!(events_in("am-x-t41"), 1);
        for (batches, code, msg) in [
            ("'{}'", "22023", "batches must be a JSON array"),
            ("'[]'", "22023", "batches must not be empty"),
            ("NULL", "22004", "batches must not be NULL"),
            ("'[1]'", "22023", "batches[0] must be a JSON object"),
            (
                r#"'[{"stream_id": "am-z-t41", "events": [], "extra": 1}]'"#,
                "22023",
                "unknown key \"extra\"",
            ),
            (
                r#"'[{"events": [{"type": "A", "data": {}}]}]'"#,
                "22004",
                "batches[0].stream_id must not be NULL",
            ),
            (
                r#"'[{"stream_id": 7, "events": []}]'"#,
                "22023",
                "batches[0].stream_id must be a string",
            ),
            (
                r#"'[{"stream_id": "am-z-t41"}]'"#,
                "22023",
                "batches[0] has no \"events\"",
            ),
            (
                r#"'[{"stream_id": "am-z-t41", "expected_version": 1.5, "events": [{"type": "A", "data": {}}]}]'"#,
                "22023",
                "expected_version must be an integer",
            ),
            (
                r#"'[{"stream_id": "am-z-t41", "expected_version": -1, "events": [{"type": "A", "data": {}}]}]'"#,
                "22023",
                "must not be negative",
            ),
            (
                r#"'[{"stream_id": "am-z-t41", "events": [{"type": "A", "data": {}}]},
                  {"stream_id": "am-w-t41", "events": [{"data": {}}]}]'"#,
                "22023",
                "batches[1].events[0] has no \"type\"",
            ),
            (
                r#"'[{"stream_id": "am-z-t41", "events": [{"type": "$Mine", "data": {}}]}]'"#,
                "22023",
                "the store's own",
            ),
        ] {
            assert_error(&format!("PERFORM es.append_multi({batches})"), code, msg);
        }
        assert_eq!(events_in("am-z-t41"), 0);
        assert_eq!(events_in("am-w-t41"), 0);
    }

    #[pg_test]
    fn append_multi_retried_with_ids_returns_where_the_events_are() {
        let batches = r#"[{"stream_id": "am-r-t42", "events": [
                              {"type": "A", "data": {"n": 1}, "id": "0190b2a0-0000-7000-8000-00000000a421"},
                              {"type": "B", "data": {"n": 2}, "id": "0190b2a0-0000-7000-8000-00000000a422"}]},
                           {"stream_id": "am-s-t42", "events": [
                              {"type": "C", "data": {}, "id": "0190b2a0-0000-7000-8000-00000000a423"}]}]"#;
        let first = one_text(&format!(
            "SELECT string_agg(stream_id || '/' || version || '/' || global_position, ' ')
               FROM es.append_multi($b${batches}$b$)"
        ));
        let again = one_text(&format!(
            "SELECT string_agg(stream_id || '/' || version || '/' || global_position, ' ')
               FROM es.append_multi($b${batches}$b$)"
        ));
        assert_eq!(first, again);
        assert_eq!(events_in("am-r-t42"), 2);
        assert_eq!(events_in("am-s-t42"), 1);
    }

    #[pg_test]
    fn last_position_and_read_all_up_to_position_stay_below_open_appends() {
        // committed events are checked in tests/regress/sql/append.sql; here: the
        // caller's own uncommitted events are not handed out, as by es.read_all
        run("SELECT es.append_event('lp-t43', 'LpOpened_t43', '{}')");
        assert!(one_bool(
            "SELECT es.last_position() < min(global_position) FROM es.events WHERE stream_id = 'lp-t43'"
        ));
        assert_eq!(one_i64("SELECT es.last_position(ARRAY['LpOpened_t43'])"), 0);
        assert_eq!(
            one_i64("SELECT es.last_position(stream_types => ARRAY['lp'])"),
            0
        );
        assert_eq!(
            one_i64("SELECT count(*) FROM es.read_all(0, up_to_position => 0)"),
            0
        );
    }

    // ---- helpers --------------------------------------------------------

    #[pg_test]
    fn uuid_v7_ids_are_version_7_and_unique() {
        assert!(one_bool(
            "SELECT count(DISTINCT u) = 1000 AND bool_and(substr(u::text, 15, 1) = '7')
                    AND bool_and(substr(u::text, 20, 1) IN ('8', '9', 'a', 'b'))
             FROM (SELECT es.uuid_generate_v7() u FROM generate_series(1, 1000)) s"
        ));
    }

    #[pg_test]
    fn check_stream_id_passes_good_ids_through() {
        assert_eq!(one_text("SELECT es._check_stream_id('a-1')"), "a-1");
        assert_error(
            "PERFORM es._check_stream_id(repeat('x', 1001))",
            "22001",
            "1001 bytes",
        );
    }
}
