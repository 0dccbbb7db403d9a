//! In-backend tests of projections: inline handlers, the materializer, and
//! every error of es.create_projection / run / rebuild / drop. Each test runs
//! in its own rolled-back transaction with its own streams and names.
//!
//! Async catch-up hands out only committed events below the read horizon,
//! which a test's own (uncommitted) events never are; its handling is
//! tested by the regression suite and the out-of-process tests.

#[pgrx::pg_schema]
mod tests {
    use crate::test_harness::*;
    use pgrx::prelude::*;

    /// A read model "sum of amount per stream" and its handler and reset.
    fn balance_model(prefix: &str) {
        run(&format!(
            "CREATE TABLE {prefix}_bal (stream_id text PRIMARY KEY, total numeric NOT NULL, n int NOT NULL);
             CREATE FUNCTION {prefix}_h(e es.events) RETURNS void LANGUAGE sql AS $$
               INSERT INTO {prefix}_bal VALUES (e.stream_id, (e.data->>'amount')::numeric, 1)
               ON CONFLICT (stream_id) DO UPDATE
                 SET total = {prefix}_bal.total + EXCLUDED.total, n = {prefix}_bal.n + 1 $$;
             CREATE FUNCTION {prefix}_reset() RETURNS void LANGUAGE sql AS $$ DELETE FROM {prefix}_bal $$;"
        ));
    }

    /// Takes the lock that creating an inline projection takes, before this
    /// test appends: two transactions that append and then ask for it would
    /// deadlock (tests run in parallel).
    fn lock_out_appends() {
        run("LOCK TABLE es.events IN SHARE ROW EXCLUSIVE MODE");
    }

    fn total(prefix: &str, stream: &str) -> String {
        opt_text(&format!(
            "SELECT (SELECT total::text || '/' || n FROM {prefix}_bal WHERE stream_id = '{stream}')"
        ))
        .unwrap_or_else(|| "none".into())
    }

    /// A stream whose recorded type is not the one its id names: appends
    /// that do not name the type still reach its inline projections and
    /// snapshots (the row is read back rather than returned).
    #[pg_test]
    fn inline_projection_and_snapshot_follow_the_recorded_stream_type() {
        balance_model("pj30");
        lock_out_appends();
        run("SELECT es.create_projection('pj30', 'pj30_h(es.events)', 'inline', stream_types => ARRAY['pj30buy'])");
        run(
            r#"SELECT es.define_aggregate('pj30buy', reducers => '{"Deposited": [{"inc": "n"}]}', snapshot_every => 2)"#,
        );
        run("SELECT es.append_event('pj30ord-1', 'Deposited', '{\"amount\": 1}', stream_type => 'pj30buy')");
        run("SELECT es.append_event('pj30ord-1', 'Deposited', '{\"amount\": 2}')");
        run("SELECT es.append_event('pj30ord-1', 'Deposited', '{\"amount\": 4}', expected_version => 2)");
        assert_eq!(total("pj30", "pj30ord-1"), "7/3");
        assert_eq!(
            one_text("SELECT string_agg(version || '=' || state::text, ',' ORDER BY version) FROM es.snapshots WHERE stream_id = 'pj30ord-1'"),
            r#"2={"n": 2}"#
        );
    }

    #[pg_test]
    fn inline_projection_replays_history_then_follows_appends() {
        balance_model("pj1");
        lock_out_appends();
        run("SELECT es.append_event('pj1acc-1', 'Deposited', '{\"amount\": 10}')");
        run("SELECT es.create_projection('pj1', 'pj1_h(es.events)', 'inline', ARRAY['Deposited'], ARRAY['pj1acc'])");
        // history was handed over at creation
        assert_eq!(total("pj1", "pj1acc-1"), "10/1");
        run("SELECT es.append_event('pj1acc-1', 'Deposited', '{\"amount\": 2.5}')");
        run("SELECT es.append_events('pj1acc-2', '[{\"type\": \"Deposited\", \"data\": {\"amount\": 1}},
                                                  {\"type\": \"Noted\", \"data\": {}},
                                                  {\"type\": \"Deposited\", \"data\": {\"amount\": 2}}]')");
        assert_eq!(total("pj1", "pj1acc-1"), "12.5/2");
        // event type filter: Noted is not handed over
        assert_eq!(total("pj1", "pj1acc-2"), "3/2");
        // stream type filter: another type is not handed over
        run("SELECT es.append_event('pj1other-1', 'Deposited', '{\"amount\": 1}')");
        assert_eq!(total("pj1", "pj1other-1"), "none");
        assert_eq!(
            one_text("SELECT mode || ' ' || coalesce(position::text, '-') || ' ' || lag || ' ' || status FROM es.projections WHERE name = 'pj1'"),
            "inline - 0 running"
        );
    }

    /// A batch handler (`es.events[]`) as an inline projection: the history
    /// at creation in one call, then each appended event in a call of its
    /// own; a rebuild replays into it; its error fails the append.
    #[pg_test]
    fn inline_batch_handler_gets_history_then_each_event() {
        run("CREATE TABLE pj40_calls (seq serial, versions text);
             CREATE FUNCTION pj40_h(events es.events[]) RETURNS void LANGUAGE plpgsql AS $$ BEGIN
               IF EXISTS (SELECT FROM unnest(events) e WHERE e.data ? 'bad') THEN
                 RAISE EXCEPTION 'batch refuses' USING ERRCODE = '22P02';
               END IF;
               INSERT INTO pj40_calls (versions)
               SELECT string_agg(e.stream_id || '@' || e.version, ',' ORDER BY e.global_position) FROM unnest(events) e;
             END $$;
             CREATE FUNCTION pj40_reset() RETURNS void LANGUAGE sql AS $$ DELETE FROM pj40_calls $$;");
        lock_out_appends();
        run("SELECT es.append_events('pj40s-1', '[{\"type\": \"A\", \"data\": {}}, {\"type\": \"B\", \"data\": {}}]')");
        run("SELECT es.append_event('pj40s-2', 'A', '{}')");
        run("SELECT es.create_projection('pj40', 'pj40_h(es.events[])', 'inline', ARRAY['A', 'B'], ARRAY['pj40s'], 'pj40_reset()')");
        let calls = || one_text("SELECT string_agg(versions, ' | ' ORDER BY seq) FROM pj40_calls");
        assert_eq!(calls(), "pj40s-1@1,pj40s-1@2,pj40s-2@1");
        run("SELECT es.append_event('pj40s-2', 'B', '{}')");
        run("SELECT es.append_events('pj40s-1', '[{\"type\": \"A\", \"data\": {}}, {\"type\": \"C\", \"data\": {}}, {\"type\": \"B\", \"data\": {}}]')");
        assert_eq!(
            calls(),
            "pj40s-1@1,pj40s-1@2,pj40s-2@1 | pj40s-2@2 | pj40s-1@3 | pj40s-1@5"
        );
        assert_error(
            "PERFORM es.append_event('pj40s-2', 'A', '{\"bad\": 1}')",
            "22P02",
            "batch refuses",
        );
        assert_eq!(one_i64("SELECT es.stream_version('pj40s-2')"), 2);
        assert_eq!(one_i64("SELECT es.rebuild_projection('pj40')"), 6);
        assert_eq!(
            calls(),
            "pj40s-1@1,pj40s-1@2,pj40s-2@1,pj40s-2@2,pj40s-1@3,pj40s-1@5"
        );
    }

    /// The materializer's step without statements keeps what the UPDATE
    /// would: the table's CHECK constraint (23514, nothing written), a user's
    /// expression index, and a user's trigger (then the statement runs).
    #[pg_test]
    fn materializer_step_keeps_constraints_indexes_and_triggers() {
        run(r#"SELECT es.define_aggregate('pj50', reducers => '{"Up": [{"inc": "n"}]}')"#);
        run(
            "CREATE TABLE pj50_state (stream_id text PRIMARY KEY, version bigint, state jsonb,
                                      note text DEFAULT 'kept',
                                      CHECK ((state->>'n')::int < 4));
             CREATE INDEX pj50_n ON pj50_state ((state->>'n'));",
        );
        lock_out_appends();
        run("SELECT es.materialize_aggregate('pj50', 'pj50_state')");
        for _ in 0..3 {
            run("SELECT es.append_event('pj50-1', 'Up', '{}')");
        }
        run("SELECT es.append_event('pj50-2', 'Up', '{}')");
        assert_eq!(
            one_text("SELECT string_agg(stream_id || ':' || version || ':' || (state->>'n') || ':' || note, ',' ORDER BY stream_id) FROM pj50_state"),
            "pj50-1:3:3:kept,pj50-2:1:1:kept"
        );
        run("SET LOCAL enable_seqscan = off");
        assert_eq!(
            one_text("SELECT string_agg(stream_id, ',') FROM pj50_state WHERE state->>'n' = '3'"),
            "pj50-1"
        );
        assert_eq!(
            one_i64("SELECT count(*) FROM pj50_state WHERE state->>'n' = '2'"),
            0
        );
        run("RESET enable_seqscan");
        assert_error(
            "PERFORM es.append_event('pj50-1', 'Up', '{}')",
            "23514",
            "pj50_state_state_check",
        );
        assert_eq!(one_i64("SELECT es.stream_version('pj50-1')"), 3);
        run("CREATE TABLE pj50_log (old bigint, new bigint);
             CREATE FUNCTION pj50_t() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
               INSERT INTO public.pj50_log VALUES (OLD.version, NEW.version); RETURN NEW;
             END $$;
             CREATE TRIGGER pj50_t BEFORE UPDATE ON pj50_state FOR EACH ROW EXECUTE FUNCTION pj50_t();");
        run("SELECT es.append_event('pj50-2', 'Up', '{}')");
        assert_eq!(
            one_text("SELECT string_agg(old || '>' || new, ',') FROM pj50_log"),
            "1>2"
        );
        assert_eq!(
            one_text(
                "SELECT version || ':' || (state->>'n') FROM pj50_state WHERE stream_id = 'pj50-2'"
            ),
            "2:2"
        );
    }

    #[pg_test]
    fn failing_inline_handler_fails_the_append_and_writes_nothing() {
        run("CREATE TABLE pj2_log (v bigint);
             CREATE FUNCTION pj2_h(e es.events) RETURNS void LANGUAGE plpgsql AS $$ BEGIN
               INSERT INTO pj2_log VALUES (e.version);
               IF e.data ? 'bad' THEN RAISE EXCEPTION 'handler refuses %', e.version USING ERRCODE = '22P02'; END IF;
             END $$;");
        run("SELECT es.create_projection('pj2', 'pj2_h(es.events)')");
        run("SELECT es.append_event('pj2s-1', 'A', '{}')");
        assert_error(
            "PERFORM es.append_events('pj2s-1', '[{\"type\": \"A\", \"data\": {}}, {\"type\": \"A\", \"data\": {\"bad\": 1}}]')",
            "22P02",
            "handler refuses 3",
        );
        assert_error(
            "PERFORM es.append_event('pj2s-1', 'A', '{\"bad\": 1}')",
            "22P02",
            "handler refuses 2",
        );
        assert_eq!(events_in("pj2s-1"), 1);
        assert_eq!(one_i64("SELECT es.stream_version('pj2s-1')"), 1);
        assert_eq!(
            one_text("SELECT string_agg(v::text, ',') FROM pj2_log"),
            "1"
        );
    }

    #[pg_test]
    fn inline_handlers_run_in_name_then_event_order() {
        run("CREATE TABLE pj3_log (seq serial, who text, v bigint);
             CREATE FUNCTION pj3_a(e es.events) RETURNS void LANGUAGE sql AS $$ INSERT INTO pj3_log (who, v) VALUES ('a', e.version) $$;
             CREATE FUNCTION pj3_b(e es.events) RETURNS void LANGUAGE sql AS $$ INSERT INTO pj3_log (who, v) VALUES ('b', e.version) $$;");
        run("SELECT es.create_projection('pj3-b', 'pj3_b(es.events)', stream_types => ARRAY['pj3s'])");
        run("SELECT es.create_projection('pj3-a', 'pj3_a(es.events)', stream_types => ARRAY['pj3s'])");
        run("SELECT es.append_events('pj3s-1', '[{\"type\": \"X\", \"data\": 1}, {\"type\": \"X\", \"data\": 2}]')");
        assert_eq!(
            one_text("SELECT string_agg(who || v, ',' ORDER BY seq) FROM pj3_log"),
            "a1,b1,a2,b2"
        );
    }

    #[pg_test]
    fn handlers_run_as_the_projection_owner_with_its_search_path() {
        run("CREATE ROLE pj4_owner;
             CREATE SCHEMA pj4;
             GRANT USAGE, CREATE ON SCHEMA pj4 TO pj4_owner;
             GRANT USAGE ON SCHEMA es TO pj4_owner;
             GRANT EXECUTE ON FUNCTION es.create_projection(text, regprocedure, text, text[], text[], regprocedure) TO pj4_owner;
             SET ROLE pj4_owner;
             SET search_path = pj4, public;
             CREATE TABLE log (who text, v bigint);
             CREATE FUNCTION h(e es.events) RETURNS void LANGUAGE sql AS $$ INSERT INTO log VALUES (current_user, e.version) $$;
             SELECT es.create_projection('pj4', 'h(es.events)', stream_types => ARRAY['pj4s']);
             RESET ROLE;
             RESET search_path;");
        run("SELECT es.append_event('pj4s-1', 'A', '{}')");
        // unqualified "log" resolved with the creator's search_path, as the creator
        assert_eq!(
            one_text("SELECT string_agg(who || v, ',') FROM pj4.log"),
            "pj4_owner1"
        );
        assert_eq!(
            one_text("SELECT owner::text FROM es.projections WHERE name = 'pj4'"),
            "pj4_owner"
        );
    }

    #[pg_test]
    fn only_members_of_the_owner_may_run_rebuild_or_drop() {
        balance_model("pj5");
        run("SELECT es.create_projection('pj5', 'pj5_h(es.events)', 'async')");
        run("CREATE ROLE pj5_other;
             GRANT USAGE ON SCHEMA es TO pj5_other;
             GRANT EXECUTE ON FUNCTION es.run_projection(text, integer), es.rebuild_projection(text),
                                       es.drop_projection(text) TO pj5_other;
             SET ROLE pj5_other");
        assert_error(
            "PERFORM es.run_projection('pj5')",
            "42501",
            "must be a member",
        );
        assert_error(
            "PERFORM es.rebuild_projection('pj5')",
            "42501",
            "must be a member",
        );
        assert_error(
            "PERFORM es.drop_projection('pj5')",
            "42501",
            "must be a member",
        );
        // without EXECUTE on es.create_projection
        assert_error(
            "PERFORM es.create_projection('pj5b', 'pj5_h(es.events)')",
            "42501",
            "permission denied",
        );
        run("RESET ROLE");
        assert_eq!(
            one_i64("SELECT count(*) FROM es.projections WHERE name LIKE 'pj5%'"),
            1
        );
    }

    #[pg_test]
    fn create_projection_rejects_bad_input_and_writes_nothing() {
        balance_model("pj6");
        run("CREATE FUNCTION pj6_wrong(e es.events) RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;
             CREATE FUNCTION pj6_two(e es.events, x int) RETURNS void LANGUAGE sql AS $$ SELECT $$;");
        let h = "'pj6_h(es.events)'";
        for (stmt, code, frag) in [
            (
                format!("PERFORM es.create_projection(NULL, {h})"),
                "22004",
                "name must not be NULL",
            ),
            (
                format!("PERFORM es.create_projection('', {h})"),
                "22023",
                "name must not be empty",
            ),
            (
                "PERFORM es.create_projection('pj6', NULL)".into(),
                "22004",
                "handler must not be NULL",
            ),
            (
                "PERFORM es.create_projection('pj6', 'pj6_wrong(es.events)')".into(),
                "42P13",
                "wrong signature",
            ),
            (
                "PERFORM es.create_projection('pj6', 'pj6_two(es.events, int)')".into(),
                "42P13",
                "wrong signature",
            ),
            (
                "PERFORM es.create_projection('pj6', 'pj6_reset()')".into(),
                "42P13",
                "wrong signature",
            ),
            (
                format!("PERFORM es.create_projection('pj6', {h}, reset => 'pj6_h(es.events)')"),
                "42P13",
                "reset function has the wrong signature",
            ),
            (
                format!("PERFORM es.create_projection('pj6', {h}, 'later')"),
                "22023",
                "mode must be 'inline' or 'async'",
            ),
            (
                format!("PERFORM es.create_projection('pj6', {h}, NULL)"),
                "22023",
                "got NULL",
            ),
            (
                format!("PERFORM es.create_projection('pj6', {h}, event_types => '{{}}')"),
                "22023",
                "event_types must not be an empty array",
            ),
            (
                format!(
                    "PERFORM es.create_projection('pj6', {h}, stream_types => ARRAY['a', NULL])"
                ),
                "22004",
                "stream_types must not contain NULL",
            ),
            (
                format!("PERFORM es.create_projection('pj6', {h}, event_types => ARRAY[''])"),
                "22023",
                "must not be empty",
            ),
        ] {
            assert_error(&stmt, code, frag);
        }
        assert_eq!(
            one_i64("SELECT count(*) FROM es.projection_registry WHERE name LIKE 'pj6%'"),
            0
        );
        run(&format!("SELECT es.create_projection('pj6', {h}, 'async')"));
        assert_error(
            &format!("PERFORM es.create_projection('pj6', {h})"),
            "42710",
            "already exists",
        );
    }

    #[pg_test]
    fn run_rebuild_and_drop_reject_bad_input() {
        balance_model("pj7");
        run("SELECT es.create_projection('pj7', 'pj7_h(es.events)')");
        assert_error(
            "PERFORM es.run_projection('pj7-none')",
            "42704",
            "does not exist",
        );
        assert_error(
            "PERFORM es.rebuild_projection('pj7-none')",
            "42704",
            "does not exist",
        );
        assert_error(
            "PERFORM es.drop_projection('pj7-none')",
            "42704",
            "does not exist",
        );
        assert_error(
            "PERFORM es.run_projection(NULL)",
            "22004",
            "name must not be NULL",
        );
        assert_error("PERFORM es.run_projection('pj7')", "55000", "is inline");
        run("SELECT es.create_projection('pj7a', 'pj7_h(es.events)', 'async')");
        assert_error("PERFORM es.run_projection('pj7a', 0)", "22023", "positive");
        assert_error(
            "PERFORM es.run_projection('pj7a', NULL)",
            "22023",
            "got NULL",
        );
    }

    #[pg_test]
    fn async_projection_waits_for_the_horizon() {
        balance_model("pj8");
        run("SELECT es.create_projection('pj8', 'pj8_h(es.events)', 'async', stream_types => ARRAY['pj8s'])");
        run("SELECT es.append_event('pj8s-1', 'Deposited', '{\"amount\": 1}')");
        // this transaction's own events lie above the read horizon until it commits
        assert_eq!(one_i64("SELECT es.run_projection('pj8')"), 0);
        assert_eq!(total("pj8", "pj8s-1"), "none");
        assert_eq!(
            one_text("SELECT position || ' ' || lag || ' ' || status FROM es.projections WHERE name = 'pj8'"),
            "0 1 running"
        );
    }

    #[pg_test]
    fn rebuild_resets_and_replays_an_inline_projection() {
        balance_model("pj9");
        run("SELECT es.create_projection('pj9', 'pj9_h(es.events)', stream_types => ARRAY['pj9s'], reset => 'pj9_reset()')");
        run("SELECT es.append_event('pj9s-1', 'Deposited', '{\"amount\": 4}')");
        run("SELECT es.append_event('pj9s-1', 'Deposited', '{\"amount\": 5}')");
        run("UPDATE pj9_bal SET total = -1");
        assert_eq!(one_i64("SELECT es.rebuild_projection('pj9')"), 2);
        assert_eq!(total("pj9", "pj9s-1"), "9/2");
        assert_eq!(
            one_i64("SELECT events_handled FROM es.projections WHERE name = 'pj9'"),
            2
        );
    }

    #[pg_test]
    fn dropped_projection_is_no_longer_called() {
        balance_model("pj10");
        run("SELECT es.create_projection('pj10', 'pj10_h(es.events)', stream_types => ARRAY['pj10s'])");
        run("SELECT es.append_event('pj10s-1', 'Deposited', '{\"amount\": 1}')");
        run("SELECT es.drop_projection('pj10')");
        run("SELECT es.append_event('pj10s-1', 'Deposited', '{\"amount\": 1}')");
        assert_eq!(total("pj10", "pj10s-1"), "1/1");
        assert_eq!(
            one_i64("SELECT count(*) FROM es.projections WHERE name = 'pj10'"),
            0
        );
    }

    #[pg_test]
    fn a_dropped_handler_fails_appends_with_a_clear_error() {
        balance_model("pj11");
        run("SELECT es.create_projection('pj11', 'pj11_h(es.events)', stream_types => ARRAY['pj11s'])");
        run("DROP FUNCTION pj11_h(es.events)");
        assert_error(
            "PERFORM es.append_event('pj11s-1', 'Deposited', '{\"amount\": 1}')",
            "55000",
            "handler function of inline projection \"pj11\" was dropped",
        );
        assert_eq!(events_in("pj11s-1"), 0);
        // created again with the same signature, it is picked up
        run(
            "CREATE FUNCTION pj11_h(e es.events) RETURNS void LANGUAGE sql AS $$
               INSERT INTO pj11_bal VALUES (e.stream_id, 0, 1)
               ON CONFLICT (stream_id) DO UPDATE SET n = pj11_bal.n + 1 $$",
        );
        run("SELECT es.append_event('pj11s-1', 'Deposited', '{\"amount\": 1}')");
        assert_eq!(total("pj11", "pj11s-1"), "0/1");
        // dropped, it is no longer called
        run("SELECT es.drop_projection('pj11')");
        run("SELECT es.append_event('pj11s-1', 'Deposited', '{\"amount\": 1}')");
        assert_eq!(events_in("pj11s-1"), 2);
        assert_eq!(total("pj11", "pj11s-1"), "0/1");
    }

    /// An aggregate type with native reducers for the materializer tests.
    fn define_bank(stream_type: &str, every: i32) {
        run(&format!(
            "SELECT es.define_aggregate('{stream_type}', reducers => '{{
                 \"Deposited\": [{{\"add\": \"balance\", \"from\": \"$.amount\"}}],
                 \"Withdrawn\": [{{\"sub\": \"balance\", \"from\": \"$.amount\"}}]}}',
               initial_state => '{{\"balance\": 0}}', snapshot_every => {every})"
        ));
    }

    fn materialized_matches_load(table: &str, stream_type: &str) {
        assert!(one_bool(&format!(
            "SELECT count(*) = 0 FROM (
               (SELECT s.stream_id, l.version, l.state FROM es.streams s, es.load(s.stream_id) l
                 WHERE s.stream_type = '{stream_type}'
                EXCEPT SELECT stream_id, version, state FROM {table})
               UNION ALL
               (SELECT stream_id, version, state FROM {table}
                EXCEPT SELECT s.stream_id, l.version, l.state FROM es.streams s, es.load(s.stream_id) l
                 WHERE s.stream_type = '{stream_type}')) d"
        )));
    }

    #[pg_test]
    fn materializer_creates_fills_and_follows_each_append() {
        define_bank("pm1", 3);
        lock_out_appends();
        run("SELECT es.append_events('pm1-a', '[{\"type\": \"Deposited\", \"data\": {\"amount\": 0.1}},
                                               {\"type\": \"Deposited\", \"data\": {\"amount\": 0.2}}]')");
        run("SELECT es.materialize_aggregate('pm1', 'pm1_state')");
        assert_eq!(
            one_text(
                "SELECT version || ' ' || state::text FROM pm1_state WHERE stream_id = 'pm1-a'"
            ),
            "2 {\"balance\": 0.3}"
        );
        run("SELECT es.append_event('pm1-a', 'Withdrawn', '{\"amount\": 0.05}')");
        run("SELECT es.append_event('pm1-b', 'Deposited', '{\"amount\": 7}')");
        run("SELECT es.append_events('pm1-b', '[{\"type\": \"Deposited\", \"data\": {\"amount\": 1}},
                                               {\"type\": \"Withdrawn\", \"data\": {\"amount\": 3}},
                                               {\"type\": \"Deposited\", \"data\": {\"amount\": 1}}]')");
        assert_eq!(
            one_text("SELECT string_agg(stream_id || '@' || version || '=' || (state->>'balance'), ' ' ORDER BY stream_id) FROM pm1_state"),
            "pm1-a@3=0.25 pm1-b@4=6"
        );
        materialized_matches_load("pm1_state", "pm1");
        assert_eq!(
            one_text("SELECT kind || ' ' || mode || ' ' || stream_types::text FROM es.projections WHERE name = 'public.pm1_state'"),
            "materializer inline {pm1}"
        );
    }

    #[pg_test]
    fn materializer_refolds_a_missing_or_stale_row() {
        define_bank("pm2", 2);
        run("SELECT es.materialize_aggregate('pm2', 'pm2_state')");
        for i in 1..=5 {
            run(&format!(
                "SELECT es.append_event('pm2-a', 'Deposited', '{{\"amount\": {i}}}')"
            ));
        }
        run("DELETE FROM pm2_state");
        run("SELECT es.append_event('pm2-a', 'Deposited', '{\"amount\": 100}')");
        assert_eq!(
            one_text("SELECT version || '=' || (state->>'balance') FROM pm2_state"),
            "6=115"
        );
        run("UPDATE pm2_state SET version = 3, state = '{\"balance\": -1}'");
        run("SELECT es.append_event('pm2-a', 'Withdrawn', '{\"amount\": 15}')");
        assert_eq!(
            one_text("SELECT version || '=' || (state->>'balance') FROM pm2_state"),
            "7=100"
        );
        materialized_matches_load("pm2_state", "pm2");
        // a rebuild recomputes every row
        run("UPDATE pm2_state SET state = '{}'");
        assert_eq!(
            one_i64("SELECT es.rebuild_projection('public.pm2_state')"),
            1
        );
        materialized_matches_load("pm2_state", "pm2");
    }

    #[pg_test]
    fn materializer_with_a_fold_function() {
        run("CREATE FUNCTION pm3_fold(s jsonb, e es.events) RETURNS jsonb LANGUAGE sql AS
               $$ SELECT jsonb_build_object('n', coalesce((s->>'n')::int, 0) + 1, 'last', e.event_type) $$");
        run("SELECT es.define_aggregate('pm3', fold => 'pm3_fold(jsonb, es.events)', initial_state => '{}', snapshot_every => 0)");
        run("CREATE SCHEMA pm3s; SET search_path = pm3s, public");
        run("SELECT es.materialize_aggregate('pm3', 'st')");
        run("RESET search_path");
        run("SELECT es.append_event('pm3-x', 'A', '{}')");
        run("SELECT es.append_event('pm3-x', 'B', '{}')");
        assert_eq!(
            one_text("SELECT state::text FROM pm3s.st WHERE stream_id = 'pm3-x'"),
            "{\"n\": 2, \"last\": \"B\"}"
        );
    }

    #[pg_test]
    fn materializer_adopts_a_table_of_the_right_shape_only() {
        define_bank("pm4", 0);
        run("CREATE TABLE pm4_ok (stream_id text PRIMARY KEY, version bigint NOT NULL, state jsonb NOT NULL, note text);
             CREATE TABLE pm4_nokey (stream_id text, version bigint, state jsonb);
             CREATE TABLE pm4_types (stream_id text PRIMARY KEY, version int, state jsonb);");
        lock_out_appends();
        run("SELECT es.append_event('pm4-a', 'Deposited', '{\"amount\": 2}')");
        assert_error(
            "PERFORM es.materialize_aggregate('pm4', 'pm4_nokey')",
            "42P16",
            "cannot hold materialized states",
        );
        assert_error(
            "PERFORM es.materialize_aggregate('pm4', 'pm4_types')",
            "42P16",
            "cannot hold materialized states",
        );
        assert_error(
            "PERFORM es.materialize_aggregate('pm4-none', 'pm4_x')",
            "42704",
            "has no aggregate definition",
        );
        assert_error(
            "PERFORM es.materialize_aggregate('pm4', 'a.b.c')",
            "0A000",
            "cross-database references",
        );
        assert_error(
            "PERFORM es.materialize_aggregate('pm4', NULL)",
            "22004",
            "must not be NULL",
        );
        assert!(!one_bool("SELECT to_regclass('pm4_x') IS NOT NULL"));
        run("SELECT es.materialize_aggregate('pm4', 'pm4_ok')");
        assert_eq!(
            one_text("SELECT version || '=' || (state->>'balance') FROM pm4_ok"),
            "1=2"
        );
        assert_error(
            "PERFORM es.materialize_aggregate('pm4', 'pm4_ok')",
            "42710",
            "already exists",
        );
    }

    #[pg_test]
    fn a_failing_fold_in_the_materializer_fails_the_append() {
        define_bank("pm5", 0);
        run("SELECT es.materialize_aggregate('pm5', 'pm5_state')");
        assert_error(
            "PERFORM es.append_event('pm5-a', 'Deposited', '{\"amount\": \"lots\"}')",
            "22",
            "",
        );
        assert_eq!(events_in("pm5-a"), 0);
        assert_eq!(one_i64("SELECT count(*) FROM pm5_state"), 0);
    }
}
