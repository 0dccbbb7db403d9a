//! In-backend tests of aggregates: fold functions (SQL, plpgsql), their errors and SQLSTATEs.

// pgrx-tests calls every test as "tests".<name>(): the module is the SQL schema `tests`.
#[pgrx::pg_schema]
mod tests {
    // The helpers of aggregates::tests, and through them the harness's.
    use super::super::*;
    use pgrx::prelude::*;

    // ---- 2. fold functions --------------------------------------------------

    #[pg_test]
    fn fold_functions_in_sql_and_plpgsql_match_reducers() {
        run(
            r#"CREATE FUNCTION public.es_a12_sql(state jsonb, e es.events) RETURNS jsonb
               LANGUAGE sql AS $f$
               SELECT CASE
                 WHEN e.event_type NOT IN ('AccountOpened', 'MoneyDeposited', 'MoneyWithdrawn', 'AccountClosed')
                   THEN state
                 ELSE state
                   || CASE e.event_type
                        WHEN 'AccountOpened' THEN jsonb_build_object('owner', e.data->'owner', 'balance', 0, 'isActive', true)
                        WHEN 'MoneyDeposited' THEN jsonb_build_object('balance', coalesce((state->>'balance')::numeric, 0) + (e.data->>'amount')::numeric)
                        WHEN 'MoneyWithdrawn' THEN jsonb_build_object('balance', coalesce((state->>'balance')::numeric, 0) - (e.data->>'amount')::numeric)
                        ELSE jsonb_build_object('isActive', false)
                      END
                   || jsonb_build_object('transactionCount', coalesce((state->>'transactionCount')::bigint, 0) + 1)
               END
               $f$"#,
        );
        run(
            r#"CREATE FUNCTION public.es_a12_pl(st jsonb, ev es.events) RETURNS jsonb
               LANGUAGE plpgsql AS $f$
               BEGIN
                 IF ev.event_type = 'AccountOpened' THEN
                   st := st || jsonb_build_object('owner', ev.data->'owner', 'balance', 0, 'isActive', true);
                 ELSIF ev.event_type = 'MoneyDeposited' THEN
                   st := jsonb_set(st, '{balance}', to_jsonb(coalesce((st->>'balance')::numeric, 0) + (ev.data->>'amount')::numeric));
                 ELSIF ev.event_type = 'MoneyWithdrawn' THEN
                   st := jsonb_set(st, '{balance}', to_jsonb(coalesce((st->>'balance')::numeric, 0) - (ev.data->>'amount')::numeric));
                 ELSIF ev.event_type = 'AccountClosed' THEN
                   st := st || '{"isActive": false}';
                 ELSE
                   RETURN st;
                 END IF;
                 RETURN st || jsonb_build_object('transactionCount', coalesce((st->>'transactionCount')::bigint, 0) + 1);
               END
               $f$"#,
        );
        let init = r#"{"transactionCount": 0}"#;
        run(&format!(
            "SELECT es.define_aggregate('foldsql_a12', 'public.es_a12_sql(jsonb, es.events)'::regprocedure,
                    initial_state => '{init}', snapshot_every => 2)"
        ));
        run(&format!(
            "SELECT es.define_aggregate('foldpl_a12', fold => 'public.es_a12_pl'::regproc::oid::regprocedure,
                    initial_state => '{init}', snapshot_every => 2)"
        ));
        define_reducers(
            "foldred_a12",
            r#"{"AccountOpened": [{"set": "owner", "from": "$.owner"}, {"set": "balance", "value": 0},
                                  {"set": "isActive", "value": true}, {"inc": "transactionCount"}],
                "MoneyDeposited": [{"add": "balance", "from": "$.amount"}, {"inc": "transactionCount"}],
                "MoneyWithdrawn": [{"sub": "balance", "from": "$.amount"}, {"inc": "transactionCount"}],
                "AccountClosed": [{"set": "isActive", "value": false}, {"inc": "transactionCount"}]}"#,
            init,
            2,
        );
        let events = [
            ("AccountOpened", r#"{"owner": "Ann"}"#),
            ("MoneyDeposited", r#"{"amount": 100.50}"#),
            ("Noop", "{}"),
            ("MoneyWithdrawn", r#"{"amount": 30.25}"#),
            ("MoneyDeposited", r#"{"amount": 0.1}"#),
            ("MoneyDeposited", r#"{"amount": 0.2}"#),
            ("MoneyWithdrawn", r#"{"amount": 1000.005}"#),
            ("Noop", "{}"),
            ("AccountClosed", "{}"),
        ];
        let types = ["foldsql_a12", "foldpl_a12", "foldred_a12"];
        for t in types {
            let s = format!("{t}-1");
            // singles, then one batch
            for (ty, data) in &events[..4] {
                append(&s, ty, data);
            }
            let batch: Vec<String> = events[4..]
                .iter()
                .map(|(ty, data)| format!(r#"{{"type": "{ty}", "data": {data}}}"#))
                .collect();
            run(&format!(
                "SELECT es.append_events('{s}', $b$[{}]$b$)",
                batch.join(",")
            ));
            assert_eq!(snapshots_of(&s), "2,4,6,8", "{s}");
        }
        for v in 0..=9 {
            let states: Vec<String> = types
                .iter()
                .map(|t| load(&format!("{t}-1"), Some(v)))
                .collect();
            assert_eq!(states[0], states[1], "sql vs plpgsql at {v}");
            assert_eq!(states[0], states[2], "sql vs reducers at {v}");
            if v > 0 {
                let folds: Vec<Option<String>> = types
                    .iter()
                    .map(|t| fold_upto(&format!("{t}-1"), v))
                    .collect();
                assert_eq!(folds[0], folds[1], "es.fold sql vs plpgsql at {v}");
                assert_eq!(folds[0], folds[2], "es.fold sql vs reducers at {v}");
                assert_eq!(
                    format!("{v} {}", folds[0].as_deref().unwrap()),
                    states[0],
                    "es.fold vs es.load at {v}"
                );
            }
        }
        assert_load(
            "foldsql_a12-1",
            None,
            9,
            r#"{"owner": "Ann", "balance": -929.455, "isActive": false, "transactionCount": 7}"#,
        );
        assert_load("foldpl_a12-1", Some(0), 0, init);
        // a fold function is used for snapshots too: they hold its result
        assert!(one_bool(
            "SELECT bool_and(s.state = (SELECT l.state FROM es.load('foldred_a12-1', s.version) l))
                    AND count(*) = 4
               FROM es.snapshots s WHERE s.stream_id = 'foldpl_a12-1'"
        ));
    }

    #[pg_test]
    fn fold_returning_null_is_an_error() {
        run("CREATE FUNCTION public.es_a13_null(state jsonb, e es.events) RETURNS jsonb
             LANGUAGE sql AS $f$ SELECT CASE WHEN e.event_type = 'Null' THEN NULL ELSE state || '{\"ok\": 1}' END $f$");
        run("SELECT es.define_aggregate('null_a13', 'public.es_a13_null(jsonb, es.events)', snapshot_every => 0)");
        append("null_a13-1", "Fine", "{}");
        append("null_a13-1", "Null", "{}");
        assert_load("null_a13-1", Some(1), 1, r#"{"ok": 1}"#);
        assert_error(
            "PERFORM * FROM es.load('null_a13-1')",
            "22004",
            "fold function returned NULL",
        );
        assert_error(
            "PERFORM es.fold(e ORDER BY version) FROM es.events e WHERE stream_id = 'null_a13-1'",
            "22004",
            "returned NULL",
        );
        // with snapshots due on every event, the append itself fails
        run("SELECT es.define_aggregate('nullsnap_a13', 'public.es_a13_null(jsonb, es.events)', snapshot_every => 1)");
        append("nullsnap_a13-1", "Fine", "{}");
        assert_error(
            "PERFORM es.append_event('nullsnap_a13-1', 'Null', '{}')",
            "22004",
            "returned NULL",
        );
        assert_eq!(events_in("nullsnap_a13-1"), 1);
        assert_eq!(snapshots_of("nullsnap_a13-1"), "1");
    }

    #[pg_test]
    fn a_failing_fold_fails_the_append() {
        run(
            r#"CREATE FUNCTION public.es_a14_boom(state jsonb, e es.events) RETURNS jsonb
               LANGUAGE plpgsql AS $f$
               BEGIN
                 IF e.event_type = 'Boom' THEN
                   RAISE EXCEPTION 'boom at %', e.version USING ERRCODE = 'check_violation';
                 END IF;
                 RETURN state || jsonb_build_object('n', coalesce((state->>'n')::int, 0) + 1);
               END $f$"#,
        );
        run("SELECT es.define_aggregate('boom_a14', 'public.es_a14_boom(jsonb, es.events)', snapshot_every => 2)");
        let s = "boom_a14-1";
        append(s, "Ok", "{}");
        assert_error(
            &format!("PERFORM es.append_event('{s}', 'Boom', '{{}}')"),
            "23514",
            "boom at 2",
        );
        // the batch takes a good snapshot at 2 and fails at 4: nothing stays
        assert_error(
            &format!(
                r#"PERFORM es.append_events('{s}', '[{{"type": "Ok", "data": {{}}}}, {{"type": "Boom", "data": {{}}}}, {{"type": "Ok", "data": {{}}}}]')"#
            ),
            "23514",
            "boom at 3",
        );
        assert_eq!(events_in(s), 1);
        assert_eq!(one_i64(&format!("SELECT es.stream_version('{s}')")), 1);
        assert_eq!(snapshots_of(s), "");
        // a new stream that fails on its first event is not created
        run("SELECT es.define_aggregate('boomone_a14', 'public.es_a14_boom(jsonb, es.events)', snapshot_every => 1)");
        assert_error(
            "PERFORM es.append_event('boomone_a14-1', 'Boom', '{}')",
            "23514",
            "boom at 1",
        );
        assert_eq!(
            one_i64("SELECT count(*) FROM es.streams WHERE stream_id = 'boomone_a14-1'"),
            0
        );
        assert_eq!(events_in("boomone_a14-1"), 0);
        // the stream goes on normally afterwards
        append(s, "Ok", "{}");
        assert_eq!(snapshots_of(s), "2");
        assert_load(s, None, 2, r#"{"n": 2}"#);

        // native reducers that fail at fold time fail the append the same way
        define_reducers(
            "boomred_a14",
            r#"{"Ok": [{"inc": "n"}], "Bad": [{"add": "n", "from": "$.v"}]}"#,
            "{}",
            1,
        );
        append("boomred_a14-1", "Ok", "{}");
        assert_error(
            r#"PERFORM es.append_event('boomred_a14-1', 'Bad', '{"v": "x"}')"#,
            "22000",
            "not a number",
        );
        assert_error(
            r#"PERFORM es.append_events('boomred_a14-1', '[{"type": "Ok", "data": {}}, {"type": "Bad", "data": {"v": []}}]')"#,
            "22000",
            "not a number",
        );
        assert_eq!(events_in("boomred_a14-1"), 1);
        assert_eq!(snapshots_of("boomred_a14-1"), "1");
        assert_eq!(
            one_i64("SELECT version FROM es.streams WHERE stream_id = 'boomred_a14-1'"),
            1
        );
        // after failed appends, rows written directly (as a restore does) take no snapshot
        run(&format!(
            "INSERT INTO es.events (global_position, stream_id, stream_type, version, event_type, data, event_id)
             VALUES ({}, 'boomred_a14-2', 'boomred_a14', 1, 'Ok', '{{}}', es.uuid_generate_v7())",
            raw_position(1)
        ));
        assert_eq!(snapshots_of("boomred_a14-2"), "");
    }

    #[pg_test]
    fn fold_function_errors_keep_their_sqlstate_in_load_and_fold() {
        run(
            r#"CREATE FUNCTION public.es_a24_custom(state jsonb, e es.events) RETURNS jsonb
               LANGUAGE plpgsql AS $f$
               BEGIN
                 IF e.event_type = 'Boom' THEN
                   RAISE EXCEPTION 'custom boom at %', e.version USING ERRCODE = 'P0042';
                 END IF;
                 RETURN state;
               END $f$"#,
        );
        run("SELECT es.define_aggregate('custom_a24', 'public.es_a24_custom(jsonb, es.events)', snapshot_every => 0)");
        append("custom_a24-1", "Ok", "{}");
        append("custom_a24-1", "Boom", "{}");
        assert_error(
            "PERFORM * FROM es.load('custom_a24-1')",
            "P0042",
            "custom boom at 2",
        );
        assert_error(
            "PERFORM es.fold(e ORDER BY version) FROM es.events e WHERE stream_id = 'custom_a24-1'",
            "P0042",
            "custom boom at 2",
        );
    }

    /// BUG: an error raised by a fold function while an append takes a
    /// snapshot reaches the caller as XX000 when its SQLSTATE is not one of
    /// PostgreSQL's predefined codes (here P0042): the append path calls SPI
    /// through pgrx's FFI guard, which re-raises the caught error through
    /// `PgSqlErrorCode`, and that enum maps every unknown code to
    /// ERRCODE_INTERNAL_ERROR. (es.load and es.fold keep the code: see the
    /// test above. Predefined codes such as 23514 survive the append too.)
    #[pg_test]
    #[ignore = "known limitation: pgrx 0.18 re-raises SQLSTATEs outside PostgreSQL's own list as XX000 when an error crosses es.append_event(s)"]
    fn fold_function_errors_keep_their_sqlstate_in_appends() {
        run(
            r#"CREATE FUNCTION public.es_a25_custom(state jsonb, e es.events) RETURNS jsonb
               LANGUAGE plpgsql AS $f$
               BEGIN
                 IF e.event_type = 'Boom' THEN
                   RAISE EXCEPTION 'custom boom at %', e.version USING ERRCODE = 'P0042';
                 END IF;
                 RETURN state;
               END $f$"#,
        );
        run("SELECT es.define_aggregate('custom_a25', 'public.es_a25_custom(jsonb, es.events)', snapshot_every => 1)");
        append("custom_a25-1", "Ok", "{}");
        assert_error(
            "PERFORM es.append_event('custom_a25-1', 'Boom', '{}')",
            "P0042",
            "custom boom at 2",
        );
        assert_error(
            r#"PERFORM es.append_events('custom_a25-1', '[{"type": "Boom", "data": {}}]')"#,
            "P0042",
            "custom boom at 2",
        );
        assert_eq!(events_in("custom_a25-1"), 1);
    }

    /// BUG: a backend keeps the fold function's `FmgrInfo` (looked up once,
    /// when it compiled the definitions, in TopMemoryContext) until
    /// `es.aggregates` changes. A `CREATE OR REPLACE FUNCTION` that keeps the
    /// signature but changes the language (or adds SECURITY DEFINER / SET
    /// options, which fmgr_info turns into a different entry point) is not
    /// seen by backends that have already used the definition. In the same
    /// transaction the old SQL body keeps running (this test); in later
    /// transactions of that backend the plpgsql body is handed to the SQL
    /// function handler and fails with "syntax error at or near RETURN".
    /// New sessions are fine; re-running es.define_aggregate works around it.
    #[pg_test]
    fn replacing_the_fold_function_takes_effect() {
        run(
            r#"CREATE FUNCTION public.es_a26_lang(state jsonb, e es.events) RETURNS jsonb
               LANGUAGE sql AS $f$ SELECT state || '{"lang": "sql"}' $f$"#,
        );
        run("SELECT es.define_aggregate('lang_a26', 'public.es_a26_lang(jsonb, es.events)', snapshot_every => 0)");
        append("lang_a26-1", "Ok", "{}");
        assert_eq!(load_state("lang_a26-1"), r#"{"lang": "sql"}"#);
        run(
            r#"CREATE OR REPLACE FUNCTION public.es_a26_lang(state jsonb, e es.events) RETURNS jsonb
               LANGUAGE plpgsql AS $f$ BEGIN RETURN state || '{"lang": "plpgsql"}'; END $f$"#,
        );
        assert_eq!(error_of("PERFORM * FROM es.load('lang_a26-1')"), "00000");
        assert_eq!(load_state("lang_a26-1"), r#"{"lang": "plpgsql"}"#);
    }

    #[pg_test]
    fn a_missing_or_dropped_fold_function_breaks_only_its_own_type() {
        assert_error(
            "PERFORM es.define_aggregate('ghost_a27', fold => 0::oid::regprocedure)",
            "42883",
            "does not exist",
        );
        assert_eq!(
            one_i64("SELECT count(*) FROM es.aggregates WHERE stream_type = 'ghost_a27'"),
            0
        );
        run(
            r#"CREATE FUNCTION public.es_a27_fold(state jsonb, e es.events) RETURNS jsonb
               LANGUAGE sql AS $f$ SELECT state $f$"#,
        );
        run("SELECT es.define_aggregate('drop_a27', 'public.es_a27_fold(jsonb, es.events)', snapshot_every => 1)");
        run(
            r#"SELECT es.define_aggregate('fine_a27', reducers => '{"E": [{"inc": "n"}]}', snapshot_every => 1)"#,
        );
        run("SELECT es.append_event('drop_a27-1', 'E', '{}')");
        run("DROP FUNCTION public.es_a27_fold(jsonb, es.events)");
        // other types keep working, appends and loads alike
        run("SELECT es.append_event('fine_a27-1', 'E', '{}')");
        assert_eq!(
            one_text("SELECT state::text FROM es.load('fine_a27-1')"),
            r#"{"n": 1}"#
        );
        assert_error(
            "PERFORM * FROM es.load('drop_a27-1')",
            "42883",
            "no longer exists",
        );
        assert_error(
            "PERFORM es.append_event('drop_a27-1', 'E', '{}')",
            "42883",
            "define the type again",
        );
        assert_eq!(events_in("drop_a27-1"), 1);
        // The definition names the function by signature: creating it again
        // (as a restore or a deploy script does) brings the type back.
        run(
            r#"CREATE FUNCTION public.es_a27_fold(state jsonb, e es.events) RETURNS jsonb
               LANGUAGE sql AS $f$ SELECT state || '{"back": true}' $f$"#,
        );
        run("SELECT es.append_event('drop_a27-1', 'E', '{}')");
        assert_eq!(
            one_text("SELECT state::text FROM es.load('drop_a27-1')"),
            r#"{"back": true}"#
        );
    }
}
