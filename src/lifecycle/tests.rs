//! In-backend tests of the deliberate exceptions to append-only: the guard
//! and its sanction, each lifecycle function's effect and its bad input,
//! es.verify's reading of es.audit. Each test runs in one transaction
//! (rolled back) with stream ids of its own. What needs other sessions
//! (concurrent writers, consumers, the worker, pg_dump) is tested out of
//! process: tests/integration/tests/lifecycle.rs, security_lifecycle.rs.

#[pgrx::pg_schema]
mod tests {
    use crate::test_harness::*;
    use pgrx::prelude::*;

    /// A stream type `t` folding `{"balance": sum of amounts, "email": last}`,
    /// a snapshot every 3 events, and `n` deposits on `stream`.
    fn account(t: &str, stream: &str, n: i64) {
        run(&format!(
            "SELECT es.define_aggregate('{t}', reducers => '{{\"Deposited\": [{{\"add\": \"balance\", \"from\": \"$.amount\"}}, {{\"set\": \"email\", \"from\": \"$.email\"}}]}}', initial_state => '{{\"balance\": 0}}', snapshot_every => 3)"
        ));
        run(&format!(
            "SELECT es.append_event('{stream}', 'Deposited', jsonb_build_object('amount', g, 'email', 'alice@example.com', 'address', jsonb_build_object('street', '1 Main St', 'city', 'Ghent')), stream_type => '{t}') FROM generate_series(1, {n}) g"
        ));
    }

    fn load(stream: &str) -> String {
        one_text(&format!(
            "SELECT version || ' ' || state::text FROM es.load('{stream}')"
        ))
    }

    fn versions(stream: &str) -> String {
        opt_text(&format!(
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM es.read_stream('{stream}')"
        ))
        .unwrap_or_default()
    }

    fn verify() -> String {
        opt_text("SELECT string_agg(check_name || ' ' || object || ': ' || detail, '; ') FROM es.verify()")
            .unwrap_or_default()
    }

    fn audit_rows(stream: &str) -> String {
        opt_text(&format!(
            "SELECT string_agg(operation || ' ' || versions::text || ' ' || event_count, '; ' ORDER BY id)
               FROM es.audit WHERE stream_id = '{stream}'"
        ))
        .unwrap_or_default()
    }

    #[pg_test]
    fn direct_changes_fail_for_every_role_and_every_replication_role() {
        account("lc1", "lc1-a", 3);
        for replica in [false, true] {
            if replica {
                run("SET LOCAL session_replication_role = replica");
            }
            for (stmt, what) in [
                (
                    "UPDATE es.events SET data = '{}' WHERE stream_id = 'lc1-a'",
                    "es.events is append-only: UPDATE",
                ),
                (
                    "DELETE FROM es.events WHERE stream_id = 'lc1-a'",
                    "es.events is append-only: DELETE",
                ),
                ("TRUNCATE es.events", "es.events is append-only: TRUNCATE"),
                (
                    "DELETE FROM es.archived_events",
                    "es.archived_events is append-only: DELETE",
                ),
                (
                    "TRUNCATE es.archived_events",
                    "es.archived_events is append-only: TRUNCATE",
                ),
            ] {
                assert_error(stmt, "55000", what);
            }
        }
        run("RESET session_replication_role");
        // after a sanctioned change in the same transaction the guard is closed again
        assert_eq!(one_i64("SELECT es.truncate_stream('lc1-a', 2)"), 1);
        assert_error(
            "DELETE FROM es.events WHERE stream_id = 'lc1-a'",
            "55000",
            "append-only",
        );
        for stmt in [
            "UPDATE es.audit SET reason = 'x'",
            "DELETE FROM es.audit",
            "TRUNCATE es.audit",
        ] {
            assert_error(stmt, "55000", "es.audit is append-only");
        }
        assert_eq!(events_in("lc1-a"), 2);
        assert_eq!(audit_rows("lc1-a"), "truncate_stream [1,2) 1");
    }

    #[pg_test]
    fn a_primitive_that_fails_leaves_the_guard_closed() {
        account("lc2", "lc2-a", 3);
        // an error inside the sanctioned DELETE itself
        run("CREATE FUNCTION lc2_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no'; END $$;
             CREATE TRIGGER lc2_refuse BEFORE DELETE ON es.events FOR EACH ROW EXECUTE FUNCTION lc2_refuse()");
        assert_error("PERFORM es.truncate_stream('lc2-a', 3)", "P0001", "no");
        run("DROP TRIGGER lc2_refuse ON es.events");
        assert_error(
            "DELETE FROM es.events WHERE stream_id = 'lc2-a'",
            "55000",
            "append-only",
        );
        assert_eq!(events_in("lc2-a"), 3);
        assert_eq!(audit_rows("lc2-a"), "");
    }

    #[pg_test]
    fn truncate_keeps_what_load_returns() {
        account("lc3", "lc3-a", 10);
        let before = load("lc3-a");
        assert_eq!(one_i64("SELECT es.truncate_stream('lc3-a', 6, 'old')"), 5);
        assert_eq!(versions("lc3-a"), "6,7,8,9,10");
        assert_eq!(load("lc3-a"), before);
        assert_eq!(
            one_text("SELECT version || ' ' || state::text FROM es.load('lc3-a', 5)"),
            "5 {\"email\": \"alice@example.com\", \"balance\": 15}"
        );
        assert_error(
            "PERFORM es.load('lc3-a', 4)",
            "55000",
            "no longer stores its events below version 6",
        );
        // by time: from the first stored event's time on; before it, unknown
        assert_eq!(
            one_text("SELECT version::text FROM es.load_at('lc3-a', now())"),
            "10"
        );
        assert_error(
            "PERFORM es.load_at('lc3-a', now() - interval '1 day')",
            "55000",
            "no longer stores its events below version 6: the state at",
        );
        // a second cut below the first removes nothing; above it, more
        assert_eq!(one_i64("SELECT es.truncate_stream('lc3-a', 4)"), 0);
        assert_eq!(one_i64("SELECT es.truncate_stream('lc3-a', 8)"), 2);
        assert_eq!(load("lc3-a"), before);
        assert_eq!(
            audit_rows("lc3-a"),
            "truncate_stream [1,6) 5; truncate_stream [6,8) 2"
        );
        // a new revision of the aggregate keeps the state below the cut
        run("SELECT es.define_aggregate('lc3', reducers => '{\"Deposited\": [{\"add\": \"balance\", \"from\": \"$.amount\"}, {\"set\": \"email\", \"from\": \"$.email\"}]}', initial_state => '{\"balance\": 0}', snapshot_every => 3)");
        assert_eq!(load("lc3-a"), before);
        assert_eq!(verify(), "");
        // appends continue
        assert_eq!(
            one_i64("SELECT es.append_event('lc3-a', 'Deposited', '{\"amount\": 1}')"),
            11
        );
        assert_eq!(verify(), "");
    }

    #[pg_test]
    fn bad_input_is_refused_and_changes_nothing() {
        account("lc4", "lc4-a", 4);
        for (stmt, state, what) in [
            (
                "PERFORM es.truncate_stream('lc4-none', 2)",
                "42704",
                "stream \"lc4-none\" does not exist",
            ),
            (
                "PERFORM es.truncate_stream('lc4-a', NULL)",
                "22004",
                "before_version must not be NULL",
            ),
            (
                "PERFORM es.truncate_stream('lc4-a', 0)",
                "22023",
                "before_version 0 is beyond",
            ),
            (
                "PERFORM es.truncate_stream('lc4-a', 5)",
                "22023",
                "its last event always stays",
            ),
            (
                "PERFORM es.delete_stream('lc4-none')",
                "42704",
                "does not exist",
            ),
            (
                "PERFORM es.delete_stream(NULL)",
                "22004",
                "stream_id must not be NULL",
            ),
            (
                "PERFORM es.delete_stream('lc4-a', 3)",
                "40001",
                "wrong expected version for stream \"lc4-a\": expected 3, actual 4",
            ),
            (
                "PERFORM es.delete_stream('lc4-a', hard => NULL)",
                "22004",
                "hard must not be NULL",
            ),
            (
                "PERFORM es.redact('lc4-a', '[1]', 'r')",
                "22023",
                "mask must be a non-empty JSON object",
            ),
            (
                "PERFORM es.redact('lc4-a', '{}', 'r')",
                "22023",
                "mask must be a non-empty JSON object",
            ),
            (
                "PERFORM es.redact('lc4-a', '{\"a..b\": 1}', 'r')",
                "22023",
                "empty segment",
            ),
            (
                "PERFORM es.redact('lc4-a', '{\"email\": 1}', NULL)",
                "22004",
                "reason must not be NULL",
            ),
            (
                "PERFORM es.redact('lc4-a', NULL, 'r')",
                "22004",
                "mask must not be NULL",
            ),
            (
                "PERFORM es.redact('lc4-a', '{\"email\": 1}', 'r', '{}')",
                "22023",
                "event_types must be NULL",
            ),
            (
                "PERFORM es.redact('lc4-none', '{\"email\": 1}', 'r')",
                "42704",
                "does not exist",
            ),
            (
                "PERFORM es.archive_stream('lc4-none')",
                "42704",
                "does not exist",
            ),
            (
                "PERFORM es.unarchive_stream('lc4-a')",
                "55000",
                "is not archived",
            ),
            (
                "PERFORM es.set_retention('lc4', max_count => 0)",
                "22023",
                "max_count must be at least 1",
            ),
            (
                "PERFORM es.set_retention('lc4', max_age => '-1 day')",
                "22023",
                "max_age must be positive",
            ),
            (
                "PERFORM es.set_retention('lc4')",
                "42704",
                "stream type \"lc4\" has no retention",
            ),
            (
                "PERFORM es.set_retention(NULL, max_count => 1)",
                "22004",
                "stream_type must not be NULL",
            ),
            (
                "PERFORM es.apply_retention(0)",
                "22023",
                "max_events must be a positive number",
            ),
        ] {
            assert_error(stmt, state, what);
        }
        assert_eq!(versions("lc4-a"), "1,2,3,4");
        assert_eq!(
            one_i64("SELECT count(*) FROM es.audit WHERE stream_id LIKE 'lc4%'"),
            0
        );
        assert_eq!(
            one_i64("SELECT count(*) FROM es.retention WHERE stream_type = 'lc4'"),
            0
        );
    }

    #[pg_test]
    fn a_soft_delete_leaves_a_tombstone_and_the_stream_starts_afresh() {
        account("lc5", "lc5-a", 7);
        assert_eq!(
            one_i64("SELECT es.delete_stream('lc5-a', 7, reason => 'closed')"),
            7
        );
        assert_eq!(versions("lc5-a"), "8");
        assert_eq!(
            one_text("SELECT event_type || ' ' || data::text FROM es.read_stream('lc5-a')"),
            "$StreamDeleted {\"hard\": false, \"events\": 7, \"reason\": \"closed\", \"versions\": [1, 7]}"
        );
        assert_eq!(
            one_i64("SELECT count(*) FROM es.snapshots WHERE stream_id = 'lc5-a'"),
            0
        );
        assert_eq!(load("lc5-a"), "8 {\"balance\": 0}");
        assert_eq!(
            one_i64("SELECT es.append_event('lc5-a', 'Deposited', '{\"amount\": 5}')"),
            9
        );
        assert_eq!(load("lc5-a"), "9 {\"balance\": 5}");
        assert_eq!(audit_rows("lc5-a"), "delete_stream [1,8) 7");
        assert_eq!(verify(), "");
        // reducers that name the tombstone see it
        run("SELECT es.define_aggregate('lc5', reducers => '{\"$StreamDeleted\": [{\"inc\": \"deletions\"}], \"Deposited\": [{\"add\": \"balance\", \"from\": \"$.amount\"}]}', initial_state => '{\"balance\": 0}', snapshot_every => 0)");
        assert_eq!(load("lc5-a"), "9 {\"balance\": 5, \"deletions\": 1}");
    }

    #[pg_test]
    fn a_hard_delete_closes_the_stream() {
        account("lc6", "lc6-a", 3);
        assert_eq!(one_i64("SELECT es.delete_stream('lc6-a', hard => true)"), 3);
        for stmt in [
            "PERFORM es.append_event('lc6-a', 'Deposited', '{}')",
            "PERFORM es.append_event('lc6-a', 'Deposited', '{}', 4)",
            "PERFORM es.append_events('lc6-a', '[{\"type\": \"Deposited\", \"data\": {}}]')",
        ] {
            assert_error(stmt, "55000", "stream \"lc6-a\" was deleted");
        }
        assert_error(
            "PERFORM es.delete_stream('lc6-a')",
            "55000",
            "already deleted",
        );
        assert_eq!(one_i64("SELECT es.stream_version('lc6-a')"), 4);
        assert_eq!(events_in("lc6-a"), 1);
        assert_eq!(verify(), "");
    }

    #[pg_test]
    fn redact_rewrites_and_keeps_no_old_value() {
        account("lc7", "lc7-a", 5);
        run("SELECT es.append_event('lc7-a', 'Noted', '{\"email\": \"alice@example.com\"}')");
        let before = one_text("SELECT state->>'balance' FROM es.load('lc7-a')");
        assert_eq!(
            one_i64("SELECT es.redact('lc7-a', '{\"email\": \"[redacted]\", \"address.street\": null, \"absent.path\": 1}', 'gdpr art. 17', ARRAY['Deposited'])"),
            5
        );
        assert_eq!(
            one_text("SELECT data::text FROM es.read_stream('lc7-a') WHERE version = 2"),
            "{\"email\": \"[redacted]\", \"amount\": 2, \"address\": {\"city\": \"Ghent\", \"street\": null}}"
        );
        // not of the types named: kept
        assert_eq!(
            one_text("SELECT data->>'email' FROM es.read_stream('lc7-a') WHERE version = 6"),
            "alice@example.com"
        );
        assert_eq!(
            one_text("SELECT event_type || ' ' || data::text FROM es.read_stream('lc7-a') WHERE version = 7"),
            "$EventsRedacted {\"paths\": [\"absent.path\", \"address.street\", \"email\"], \"events\": 5, \"reason\": \"gdpr art. 17\", \"versions\": [1, 5]}"
        );
        assert_eq!(
            one_text("SELECT state->>'balance' FROM es.load('lc7-a')"),
            before
        );
        assert_eq!(
            one_text("SELECT state->>'email' FROM es.load('lc7-a')"),
            "[redacted]"
        );
        // the rest of the address goes too; nothing of it is left in the
        // events, the snapshots or the audit
        assert_eq!(
            one_i64("SELECT es.redact('lc7-a', '{\"email\": \"[redacted]\", \"address\": null}', 'gdpr art. 17')"),
            6
        );
        for table in [
            "events",
            "snapshots",
            "audit",
            "archived_events",
            "stream_lifecycle",
            "streams",
        ] {
            assert_eq!(
                one_i64(&format!(
                    "SELECT count(*) FROM es.{table} t WHERE t::text LIKE '%alice@%' OR t::text LIKE '%Main St%'"
                )),
                0,
                "es.{table}"
            );
        }
        assert_eq!(verify(), "");
        assert_eq!(audit_rows("lc7-a"), "redact [1,6) 5; redact [1,7) 6");
        // a mask that changes nothing writes nothing
        assert_eq!(
            one_i64("SELECT es.redact('lc7-a', '{\"email\": \"[redacted]\"}', 'again')"),
            0
        );
        assert_eq!(one_i64("SELECT es.stream_version('lc7-a')"), 8);
    }

    #[pg_test]
    fn read_models_reflect_a_redaction_and_a_delete() {
        // the lock creating a read model takes, before appending: tests run in
        // parallel, and two that append and then ask for it deadlock
        run("LOCK TABLE es.events IN SHARE ROW EXCLUSIVE MODE");
        account("lc14", "lc14-a", 4);
        account("lc14", "lc14-b", 2);
        run("SELECT es.materialize_aggregate('lc14', 'lc14_states')");
        run(
            "CREATE TABLE lc14_emails (stream_id text PRIMARY KEY, email text);
             CREATE FUNCTION lc14_h(e es.events) RETURNS void LANGUAGE plpgsql AS $$
             BEGIN
                 IF e.event_type = '$StreamDeleted' THEN
                     DELETE FROM lc14_emails WHERE stream_id = e.stream_id;
                 ELSIF e.data ? 'email' THEN
                     INSERT INTO lc14_emails VALUES (e.stream_id, e.data->>'email')
                     ON CONFLICT (stream_id) DO UPDATE SET email = EXCLUDED.email;
                 END IF;
             END $$;
             CREATE FUNCTION lc14_reset() RETURNS void LANGUAGE sql AS 'DELETE FROM lc14_emails';
             SELECT es.create_projection('lc14_emails', 'lc14_h(es.events)', 'inline',
                                         stream_types => ARRAY['lc14'], reset => 'lc14_reset()')",
        );
        assert_eq!(
            one_i64("SELECT count(*) FROM lc14_emails WHERE email LIKE 'alice@%'"),
            2
        );
        run("SELECT es.redact('lc14-a', '{\"email\": \"[redacted]\"}', 'r')");
        assert_eq!(
            one_text("SELECT version || ' ' || (state->>'email') FROM lc14_states WHERE stream_id = 'lc14-a'"),
            "5 [redacted]"
        );
        assert_eq!(
            one_text("SELECT email FROM lc14_emails WHERE stream_id = 'lc14-a'"),
            "[redacted]"
        );
        run("SELECT es.delete_stream('lc14-b', hard => true)");
        assert_eq!(
            one_text(
                "SELECT version || ' ' || state::text FROM lc14_states WHERE stream_id = 'lc14-b'"
            ),
            "3 {\"balance\": 0}"
        );
        assert_eq!(
            one_i64("SELECT count(*) FROM lc14_emails WHERE stream_id = 'lc14-b'"),
            0
        );
        assert_eq!(verify(), "");
    }

    #[pg_test]
    fn redact_refuses_a_stream_whose_chain_is_broken() {
        account("lc8", "lc8-a", 3);
        run("ALTER TABLE es.events DISABLE TRIGGER events_no_update_delete;
             UPDATE es.events SET data = data || '{\"amount\": 100}' WHERE stream_id = 'lc8-a' AND version = 2;
             ALTER TABLE es.events ENABLE ALWAYS TRIGGER events_no_update_delete");
        assert_error(
            "PERFORM es.redact('lc8-a', '{\"email\": \"x\"}', 'r')",
            "XX001",
            "do not give its recorded hash chain",
        );
        assert_eq!(
            one_i64(
                "SELECT count(*) FROM es.events WHERE stream_id = 'lc8-a' AND data->>'email' = 'x'"
            ),
            0
        );
        assert!(verify().contains("stream_hash lc8-a"));
    }

    #[pg_test]
    fn verify_reports_exactly_the_holes_the_audit_does_not_explain() {
        account("lc9", "lc9-a", 6);
        account("lc9", "lc9-b", 6);
        run("SELECT es.truncate_stream('lc9-a', 3)");
        assert_eq!(verify(), "");
        // a row removed past the guard
        run(
            "ALTER TABLE es.events DISABLE TRIGGER events_no_update_delete;
             DELETE FROM es.events WHERE stream_id = 'lc9-b' AND version = 4;
             DELETE FROM es.events WHERE stream_id = 'lc9-a' AND version = 5;
             ALTER TABLE es.events ENABLE ALWAYS TRIGGER events_no_update_delete",
        );
        let v = verify();
        assert!(
            v.contains("stream_versions lc9-b: versions 1..6 in 5 events"),
            "{v}"
        );
        assert!(
            v.contains("stream_versions lc9-a: versions 3..6 in 3 events; es.audit explains versions {[1,3)} as removed"),
            "{v}"
        );
        assert!(
            v.contains("stream_hash lc9-b") && v.contains("stream_hash lc9-a"),
            "{v}"
        );
    }

    #[pg_test]
    fn an_archived_stream_is_read_but_not_written() {
        account("lc10", "lc10-a", 4);
        let before = load("lc10-a");
        assert_eq!(
            one_i64("SELECT es.archive_stream('lc10-a', 'closed account')"),
            4
        );
        assert_eq!(events_in("lc10-a"), 0);
        assert_eq!(
            one_i64("SELECT count(*) FROM es.archived_events WHERE stream_id = 'lc10-a'"),
            4
        );
        assert_eq!(versions("lc10-a"), "1,2,3,4");
        assert_eq!(
            one_text("SELECT string_agg(version::text, ',') FROM es.read_stream('lc10-a', 3, 1)"),
            "3"
        );
        // no snapshot below: a fold from the archive
        run("DELETE FROM es.snapshots WHERE stream_id = 'lc10-a'");
        assert_eq!(load("lc10-a"), before);
        assert_eq!(
            one_text("SELECT version::text FROM es.load_at('lc10-a', now())"),
            "4"
        );
        assert_eq!(
            one_text("SELECT version::text FROM es.load_at('lc10-a', now() - interval '1 day')"),
            "0"
        );
        for stmt in [
            "PERFORM es.append_event('lc10-a', 'Deposited', '{}')",
            "PERFORM es.append_events('lc10-a', '[{\"type\": \"Deposited\", \"data\": {}}]', 4)",
        ] {
            assert_error(stmt, "55000", "stream \"lc10-a\" is archived");
        }
        assert_error(
            "PERFORM es.archive_stream('lc10-a')",
            "55000",
            "already archived",
        );
        assert_error(
            "PERFORM es.truncate_stream('lc10-a', 2)",
            "55000",
            "is archived",
        );
        assert_error("PERFORM es.delete_stream('lc10-a')", "55000", "is archived");
        assert_eq!(verify(), "");
        assert_eq!(one_i64("SELECT es.unarchive_stream('lc10-a')"), 4);
        assert_eq!(events_in("lc10-a"), 4);
        assert_eq!(
            one_i64("SELECT es.append_event('lc10-a', 'Deposited', '{\"amount\": 1}')"),
            5
        );
        assert_eq!(verify(), "");
        assert_eq!(
            audit_rows("lc10-a"),
            "archive_stream [1,5) 4; unarchive_stream [1,5) 4"
        );
    }

    #[pg_test]
    fn retention_by_count_keeps_the_newest_and_load() {
        account("lc11", "lc11-a", 10);
        run("SELECT es.append_event('lc11-b', 'Deposited', jsonb_build_object('amount', g), stream_type => 'lc11') FROM generate_series(1, 2) g");
        let before = load("lc11-a");
        run("SELECT es.set_retention('lc11', max_count => 3)");
        assert_eq!(
            one_text("SELECT max_count || ' ' || (max_age IS NULL) FROM es.retention WHERE stream_type = 'lc11'"),
            "3 true"
        );
        // at most max_events in all: a stream may be cut part of the way
        assert_eq!(one_i64("SELECT es.apply_retention(4)"), 4);
        assert_eq!(versions("lc11-a"), "5,6,7,8,9,10");
        assert_eq!(one_i64("SELECT es.apply_retention()"), 3);
        assert_eq!(versions("lc11-a"), "8,9,10");
        assert_eq!(versions("lc11-b"), "1,2");
        assert_eq!(load("lc11-a"), before);
        assert_eq!(one_i64("SELECT es.apply_retention()"), 0);
        assert_eq!(
            audit_rows("lc11-a"),
            "apply_retention [1,5) 4; apply_retention [5,8) 3"
        );
        assert_eq!(verify(), "");
        run("SELECT es.set_retention('lc11')");
        assert_eq!(
            one_i64("SELECT count(*) FROM es.retention WHERE stream_type = 'lc11'"),
            0
        );
    }

    #[pg_test]
    fn only_admins_change_history_and_the_audit_names_them() {
        account("lc12", "lc12-a", 4);
        run("CREATE ROLE lc12_writer; SELECT es.grant_writer('lc12_writer')");
        run("CREATE ROLE lc12_reader; SELECT es.grant_reader('lc12_reader')");
        run("CREATE ROLE lc12_admin; SELECT es.grant_admin('lc12_admin')");
        let calls = [
            "PERFORM es.delete_stream('lc12-a')",
            "PERFORM es.truncate_stream('lc12-a', 2)",
            "PERFORM es.set_retention('lc12', max_count => 1)",
            "PERFORM es.apply_retention()",
            "PERFORM es.redact('lc12-a', '{\"email\": 1}', 'r')",
            "PERFORM es.archive_stream('lc12-a')",
            "PERFORM es.unarchive_stream('lc12-a')",
            "PERFORM es._remove_events('lc12-a', 3, 'x', NULL, NULL)",
            "PERFORM es._redact_events('lc12-a', '{\"email\": 1}', NULL, NULL, NULL)",
            "PERFORM es._move_events('lc12-a', true, NULL)",
            "PERFORM es._append_marker('lc12-a', '$StreamDeleted', '{}', NULL)",
        ];
        for role in ["lc12_writer", "lc12_reader"] {
            run(&format!("SET ROLE {role}"));
            for stmt in calls {
                assert_error(stmt, "42501", "permission denied");
            }
            run("RESET ROLE");
        }
        run("SET ROLE lc12_admin");
        assert_eq!(one_i64("SELECT es.truncate_stream('lc12-a', 2, 'tidy')"), 1);
        assert_error(
            "PERFORM es._remove_events('lc12-a', 3, 'x', NULL, NULL)",
            "42501",
            "permission denied",
        );
        assert_error(
            "DELETE FROM es.events WHERE stream_id = 'lc12-a'",
            "42501",
            "permission denied",
        );
        run("RESET ROLE");
        assert_eq!(
            one_text("SELECT by_role || ' ' || operation || ' ' || reason FROM es.audit WHERE stream_id = 'lc12-a'"),
            "lc12_admin truncate_stream tidy"
        );
        run("SELECT es.revoke_admin('lc12_admin')");
        run("SET ROLE lc12_admin");
        assert_error(
            "PERFORM es.truncate_stream('lc12-a', 3)",
            "42501",
            "permission denied",
        );
        assert_eq!(
            one_i64("SELECT es.append_event('lc12-a', 'Deposited', '{}')"),
            5
        );
        run("RESET ROLE");
    }

    #[pg_test]
    fn the_store_s_own_event_types_are_reserved() {
        assert_error(
            "PERFORM es.append_event('lc13-a', '$StreamDeleted', '{}')",
            "22023",
            "event_type \"$StreamDeleted\" begins with \"$\"",
        );
        assert_error(
            "PERFORM es.append_events('lc13-a', '[{\"type\": \"A\", \"data\": 1}, {\"type\": \"$X\", \"data\": 1}]')",
            "22023",
            "events[1].type \"$X\" begins with \"$\"",
        );
        assert_eq!(events_in("lc13-a"), 0);
    }
}
