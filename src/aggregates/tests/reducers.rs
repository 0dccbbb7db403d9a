//! In-backend tests of aggregates: native reducer steps.

// pgrx-tests calls every test as "tests".<name>(): the module is the SQL schema `tests`.
#[pgrx::pg_schema]
mod tests {
    // The helpers of aggregates::tests, and through them the harness's.
    use super::super::*;
    use pgrx::prelude::*;

    // ---- 1. reducer steps -----------------------------------------------

    #[pg_test]
    fn bank_reducers_fold_the_account_example() {
        define_reducers("bank_a01", BANK, "{}", 100);
        let s = "bank_a01-1";
        assert_eq!(append(s, "AccountOpened", r#"{"owner": "Ann"}"#), 1);
        append(s, "MoneyDeposited", r#"{"amount": 100.50}"#);
        append(s, "MoneyWithdrawn", r#"{"amount": 30.25}"#);
        append(s, "MoneyDeposited", r#"{"amount": 0.1}"#);
        append(s, "MoneyDeposited", r#"{"amount": 0.2}"#);
        append(s, "AccountClosed", "{}");
        append(s, "Audited", r#"{"by": "x"}"#);
        assert_load(s, Some(0), 0, "{}");
        assert_load(
            s,
            Some(1),
            1,
            r#"{"owner": "Ann", "balance": 0, "isActive": true, "transactionCount": 1}"#,
        );
        assert_load(
            s,
            Some(2),
            2,
            r#"{"owner": "Ann", "balance": 100.50, "isActive": true, "transactionCount": 2}"#,
        );
        assert_load(
            s,
            Some(3),
            3,
            r#"{"owner": "Ann", "balance": 70.25, "isActive": true, "transactionCount": 3}"#,
        );
        assert_load(
            s,
            Some(5),
            5,
            r#"{"owner": "Ann", "balance": 70.55, "isActive": true, "transactionCount": 5}"#,
        );
        assert_load(
            s,
            Some(6),
            6,
            r#"{"owner": "Ann", "balance": 70.55, "isActive": false, "transactionCount": 6}"#,
        );
        // an event type without steps still runs the "*" steps
        assert_load(
            s,
            None,
            7,
            r#"{"owner": "Ann", "balance": 70.55, "isActive": false, "transactionCount": 7}"#,
        );
        assert_eq!(
            one_text(&format!(
                "SELECT stream_id || ':' || stream_type || ':' || (state->>'balance') FROM es.load('{s}')"
            )),
            "bank_a01-1:bank_a01:70.55"
        );
    }

    #[pg_test]
    fn a_long_stream_loads_whole_across_batches() {
        // es.load reads reducers' events where the executor leaves them and
        // frees per-event garbage every thousand: what the state keeps (the
        // last name, a list) must survive those resets; no snapshot here
        define_reducers(
            "long_a20",
            r#"{"Named": [{"set": "name", "from": "$.name"}, {"add": "total", "from": "$.n"},
                          {"append": "last", "from": "$.name"}]}"#,
            "{}",
            0,
        );
        run(r#"SELECT es.append_events('long_a20-1',
                 (SELECT jsonb_agg(jsonb_build_object('type', 'Named',
                          'data', jsonb_build_object('name', 'n' || i, 'n', 0.5)) ORDER BY i)
                    FROM generate_series(1, 2500) i))"#);
        assert_eq!(
            one_text(
                "SELECT version || ' ' || (state->>'name') || ' ' || (state->>'total')
                        || ' ' || pg_catalog.jsonb_array_length(state->'last')
                        || ' ' || (state->'last'->>1234)
                   FROM es.load('long_a20-1')"
            ),
            "2500 n2500 1250.0 2500 n1235"
        );
        assert_eq!(
            one_text("SELECT state->>'name' FROM es.load('long_a20-1', 1001)"),
            "n1001"
        );
        // the same state as the fold over the rows
        assert_eq!(
            one_text(
                "SELECT ((SELECT state FROM es.load('long_a20-1'))
                         = es.fold(e ORDER BY version))::text
                   FROM es.events e WHERE stream_id = 'long_a20-1'"
            ),
            "true"
        );
    }

    #[pg_test]
    fn decimals_are_exact() {
        define_reducers(
            "dec_a02",
            r#"{"Add": [{"add": "total", "from": "$.n"}], "Sub": [{"sub": "total", "from": "$.n"}]}"#,
            "{}",
            7,
        );
        append("dec_a02-a", "Add", r#"{"n": 0.1}"#);
        append("dec_a02-a", "Add", r#"{"n": 0.2}"#);
        assert_eq!(load_state("dec_a02-a"), r#"{"total": 0.3}"#);

        // 1000 deposits of 0.01: half in one batch, half one by one
        run(r#"SELECT es.append_events('dec_a02-b',
                 (SELECT jsonb_agg('{"type": "Add", "data": {"n": 0.01}}'::jsonb) FROM generate_series(1, 500)))"#);
        run(r#"DO $x$ BEGIN FOR i IN 1..500 LOOP
                 PERFORM es.append_event('dec_a02-b', 'Add', '{"n": 0.01}');
               END LOOP; END $x$"#);
        assert_eq!(
            one_text("SELECT version || ' ' || (state->>'total') FROM es.load('dec_a02-b')"),
            "1000 10.00"
        );
        assert_eq!(
            one_text("SELECT state->>'total' FROM es.load('dec_a02-b', 700)"),
            "7.00"
        );
        assert_eq!(
            one_text("SELECT state->>'total' FROM es.snapshots WHERE stream_id = 'dec_a02-b' AND version = 994"),
            "9.94"
        );
        assert_eq!(fold_upto("dec_a02-b", 1000).unwrap(), r#"{"total": 10.00}"#);

        // negative results, mixed scales, exponent notation, back to zero
        for (ty, n) in [
            ("Sub", "0.01"),
            ("Add", "0.005"),
            ("Add", "1e2"),
            ("Add", "0.10"),
            ("Sub", "100.095"),
        ] {
            append("dec_a02-c", ty, &format!(r#"{{"n": {n}}}"#));
        }
        let steps: Vec<String> = (1..=5)
            .map(|v| {
                one_text(&format!(
                    "SELECT state->>'total' FROM es.load('dec_a02-c', {v})"
                ))
            })
            .collect();
        assert_eq!(steps, ["-0.01", "-0.005", "99.995", "100.095", "0.000"]);
        // the same as PostgreSQL's numeric arithmetic
        assert_eq!(
            one_text("SELECT (0 - 0.01 + 0.005 + '1e2'::numeric + 0.10 - 100.095)::text"),
            "0.000"
        );
    }

    #[pg_test]
    fn numbers_read_from_events_keep_their_value_and_scale() {
        // Each read straight from the event's jsonb (Num::from_numeric: 64-bit
        // up to 16 digits, then 128-bit, then PostgreSQL's numeric) and added
        // to 0 and to 0.0000: the same text as PostgreSQL's numeric gives.
        define_reducers(
            "numread_a04",
            r#"{"Set": [{"set": "n", "from": "$.v"}, {"set": "m", "value": 0},
                        {"add": "m", "from": "$.v"}, {"set": "k", "value": 0.0000},
                        {"add": "k", "from": "$.v"}]}"#,
            "{}",
            0,
        );
        let values = [
            "1.25",
            "0.5",
            "12.50",
            "-0.01",
            "0",
            "-0",
            "10000",
            "1e16",
            "1234567890123456",
            "123456789012.3456",
            "9999999999999999.99",
            "0.0001",
            "0.00000001",
            "1e-18",
            "1e-19",
            "1.000000000000000001",
            "12345678901234567.5",
            "-99999999.9999",
            "1e20",
            "100.000",
            "5e-3",
            "170141183460469231731687303715884105727",
        ];
        for (i, v) in values.iter().enumerate() {
            append("numread_a04-1", "Set", &format!(r#"{{"v": {v}}}"#));
            let got = one_text(&format!(
                "SELECT concat_ws(' ', state->>'n', state->>'m', state->>'k') FROM es.load('numread_a04-1', {})",
                i + 1
            ));
            let expected = one_text(&format!(
                "SELECT concat_ws(' ', ('{v}'::numeric)::text, (0 + '{v}'::numeric)::text, (0.0000 + '{v}'::numeric)::text)"
            ));
            assert_eq!(got, expected, "{v}");
        }
    }

    #[pg_test]
    fn big_numbers_stay_exact() {
        define_reducers(
            "big_a03",
            r#"{"Set": [{"set": "n", "from": "$.v"}],
                "Add": [{"add": "n", "from": "$.v"}],
                "Sub": [{"sub": "n", "from": "$.v"}]}"#,
            "{}",
            2,
        );
        let cases = [
            ("123456789012345678901234567890123456789012", "Add", "1"),
            ("170141183460469231731687303715884105727", "Add", "1"),
            ("-170141183460469231731687303715884105728", "Sub", "1"),
            (
                "99999999999999999999999999999999999999",
                "Add",
                "0.00000000000000000000000000000000000001",
            ),
            ("0.000000000000000000000000000000000000000001", "Add", "1"),
            ("1e40", "Add", "0.001"),
            ("1e45", "Sub", "1e45"),
            (
                "12345678901234567890.123456789",
                "Add",
                "98765432109876543210.987654321",
            ),
            ("-5", "Add", "1234567890123456789012345678901234567890.5"),
        ];
        for (i, (a, op, b)) in cases.iter().enumerate() {
            let s = format!("big_a03-{i}");
            append(&s, "Set", &format!(r#"{{"v": {a}}}"#));
            append(&s, op, &format!(r#"{{"v": {b}}}"#));
            // folded on top of the snapshot taken at version 2
            append(&s, "Add", r#"{"v": 0}"#);
            let sign = if *op == "Sub" { "-" } else { "+" };
            let expected = one_text(&format!(
                "SELECT ('{a}'::numeric {sign} '{b}'::numeric)::text"
            ));
            let expected_plus0 = one_text(&format!(
                "SELECT ('{a}'::numeric {sign} '{b}'::numeric + 0)::text"
            ));
            assert_eq!(snapshots_of(&s), "2", "{s}");
            assert_eq!(
                one_text(&format!(
                    "SELECT state->>'n' FROM es.snapshots WHERE stream_id = '{s}'"
                )),
                expected,
                "snapshot of {a} {op} {b}"
            );
            assert_eq!(
                one_text(&format!("SELECT state->>'n' FROM es.load('{s}', 2)")),
                expected,
                "{a} {op} {b}"
            );
            assert_eq!(
                one_text(&format!("SELECT state->>'n' FROM es.load('{s}')")),
                expected_plus0,
                "{a} {op} {b} + 0"
            );
            assert_eq!(
                one_text(&format!(
                    "SELECT (es.fold(e ORDER BY version))->>'n' FROM es.events e WHERE stream_id = '{s}'"
                )),
                expected_plus0,
                "es.fold of {a} {op} {b} + 0"
            );
        }
        // spot-check that the reference itself is what we think
        assert_eq!(
            one_text("SELECT ('170141183460469231731687303715884105727'::numeric + 1)::text"),
            "170141183460469231731687303715884105728"
        );
    }

    #[pg_test]
    fn every_from_source() {
        define_reducers(
            "src_a04",
            r#"{"E": [{"set": "whole", "from": "$"},
                      {"set": "deep", "from": "$.a.b"},
                      {"set": "ver", "from": "$version"},
                      {"set": "at", "from": "$recorded_at"},
                      {"set": "et", "from": "$event_type"},
                      {"set": "sid", "from": "$stream_id"},
                      {"set": "st", "from": "$stream_type"},
                      {"set": "gp", "from": "$global_position"},
                      {"set": "eid", "from": "$event_id"},
                      {"set": "meta", "from": "$metadata"},
                      {"set": "corr", "from": "$metadata.trace.id"},
                      {"set": "ca", "from": "$metadata.c"}]}"#,
            "{}",
            0,
        );
        // the stream's type is not its id's prefix
        let s = "other_a04-1";
        run(&format!(
            r#"SELECT es.append_event('{s}', 'E', '{{"a": {{"b": [1, "x", {{"y": 2.50}}]}}, "k": 1.50}}',
                      metadata => '{{"trace": {{"id": "t-1"}}, "c": 2}}', stream_type => 'src_a04')"#
        ));
        let expected_v1 = "SELECT jsonb_build_object(
                'whole', e.data, 'deep', e.data->'a'->'b', 'ver', e.version,
                'at', to_jsonb(e.recorded_at), 'et', e.event_type, 'sid', e.stream_id,
                'st', e.stream_type, 'gp', e.global_position, 'eid', e.event_id,
                'meta', e.metadata, 'corr', e.metadata->'trace'->'id', 'ca', e.metadata->'c')::text
              FROM es.events e WHERE e.stream_id = 'other_a04-1' AND e.version = 1";
        assert_eq!(load_state(s), one_text(expected_v1));
        // spell some of it out, so that the reference query is not the only witness
        assert!(one_bool(&format!(
            r#"SELECT state->'deep' = '[1, "x", {{"y": 2.50}}]' AND state->>'st' = 'src_a04'
                      AND state->>'sid' = '{s}' AND state->>'et' = 'E' AND state->'ver' = '1'
                      AND state->>'corr' = 't-1' AND state->'ca' = '2'
                      AND (state->>'eid')::uuid = (SELECT event_id FROM es.events WHERE stream_id = '{s}')
                      AND (state->>'gp')::bigint = (SELECT global_position FROM es.events WHERE stream_id = '{s}')
                      AND state->'at' = to_jsonb(now())
                 FROM es.load('{s}')"#
        )));

        // paths the event lacks leave the previous values alone
        run(&format!(
            r#"SELECT es.append_event('{s}', 'E', '{{"a": {{"c": 1}}, "z": true}}', metadata => '{{"c": null}}')"#
        ));
        let expected_v2 = "SELECT jsonb_build_object(
                'whole', e2.data, 'deep', e1.data->'a'->'b', 'ver', e2.version,
                'at', to_jsonb(e2.recorded_at), 'et', e2.event_type, 'sid', e2.stream_id,
                'st', e2.stream_type, 'gp', e2.global_position, 'eid', e2.event_id,
                'meta', e2.metadata, 'corr', e1.metadata->'trace'->'id', 'ca', 'null'::jsonb)::text
              FROM es.events e1 JOIN es.events e2 ON e2.stream_id = e1.stream_id AND e2.version = 2
             WHERE e1.stream_id = 'other_a04-1' AND e1.version = 1";
        assert_eq!(load_state(s), one_text(expected_v2));

        // scalar and array data: "$" takes them whole, "$.a.b" is missing
        run(&format!("SELECT es.append_event('{s}', 'E', '7')"));
        assert!(one_bool(&format!(
            r#"SELECT state->'whole' = '7' AND state->'deep' = '[1, "x", {{"y": 2.50}}]' AND state->'ver' = '3'
                 FROM es.load('{s}')"#
        )));
        run(&format!(
            "SELECT es.append_event('{s}', 'E', '[{{\"a\": 1}}]')"
        ));
        run(&format!("SELECT es.append_event('{s}', 'E', 'null')"));
        assert!(one_bool(&format!(
            r#"SELECT state->'whole' = 'null' AND state ? 'whole' AND state->'deep' = '[1, "x", {{"y": 2.50}}]'
                      AND state->'ver' = '5' FROM es.load('{s}')"#
        )));
        assert_eq!(
            one_text(&format!(
                "SELECT (state->'whole')::text FROM es.load('{s}', 4)"
            )),
            r#"[{"a": 1}]"#
        );
    }

    #[pg_test]
    fn recorded_at_source_matches_to_jsonb() {
        define_reducers(
            "at_a05",
            r#"{"*": [{"set": "at", "from": "$recorded_at"}, {"append": "all", "from": "$recorded_at"}]}"#,
            "{}",
            0,
        );
        for (v, t) in [
            (1, "2024-01-01 10:00:00+00"),
            (2, "2024-07-01 10:00:00.123456+02"),
            (3, "1999-12-31 23:59:59.5-08"),
        ] {
            run(&format!(
                "INSERT INTO es.events (global_position, stream_id, stream_type, version, event_type, data, event_id, recorded_at)
                 VALUES ({}, 'at_a05-1', 'at_a05', {v}, 'T', '{{}}', es.uuid_generate_v7(), '{t}')",
                raw_position(v)
            ));
        }
        run("INSERT INTO es.streams (stream_id, stream_type, version) VALUES ('at_a05-1', 'at_a05', 3)");
        assert_eq!(
            load_state("at_a05-1"),
            one_text(
                "SELECT jsonb_build_object('at', to_jsonb(max(recorded_at) FILTER (WHERE version = 3)),
                                           'all', jsonb_agg(to_jsonb(recorded_at) ORDER BY version))::text
                   FROM es.events WHERE stream_id = 'at_a05-1'"
            )
        );
        run("SET LOCAL timezone = 'Asia/Kolkata'");
        assert_eq!(
            one_text("SELECT state->>'at' FROM es.load('at_a05-1')"),
            "2000-01-01T13:29:59.5+05:30"
        );
    }

    #[pg_test]
    fn star_steps_run_after_the_types_own() {
        define_reducers(
            "star_a06",
            r#"{"*": [{"append": "log", "from": "$event_type"}, {"set": "last", "value": "*"}],
                "A": [{"append": "log", "value": "A-own"}, {"set": "last", "value": "A"}]}"#,
            "{}",
            0,
        );
        append("star_a06-1", "A", "{}");
        append("star_a06-1", "B", "{}");
        append("star_a06-1", "A", "{}");
        assert_eq!(
            load_state("star_a06-1"),
            canon(r#"{"log": ["A-own", "A", "B", "A-own", "A"], "last": "*"}"#)
        );
        // only "*" steps
        define_reducers(
            "staronly_a06",
            r#"{"*": [{"inc": "n"}]}"#,
            r#"{"n": 10}"#,
            0,
        );
        append("staronly_a06-1", "X", "{}");
        append("staronly_a06-1", "Y", "{}");
        assert_eq!(load_state("staronly_a06-1"), r#"{"n": 12}"#);
    }

    #[pg_test]
    fn steps_whose_from_is_missing_are_skipped() {
        define_reducers(
            "miss_a07",
            r#"{"E": [{"set": "x", "from": "$.x"},
                      {"add": "n", "from": "$.amt"},
                      {"sub": "m", "from": "$.amt"},
                      {"append": "l", "from": "$.item"},
                      {"merge": "p", "from": "$.patch"},
                      {"set": "deep", "from": "$.a.b.c"},
                      {"set": "mk", "from": "$metadata.k"}],
                "*": [{"inc": "count"}]}"#,
            r#"{"x": "init", "count": 10}"#,
            0,
        );
        let s = "miss_a07-1";
        append(s, "E", "{}");
        assert_load(s, None, 1, r#"{"x": "init", "count": 11}"#);
        append(s, "E", r#"{"a": "not an object", "other": 1}"#);
        append(s, "E", r#"{"a": {"b": 5}}"#);
        append(s, "E", r#"{"a": {"b": {"d": 1}}}"#);
        append(s, "E", "[1, 2]");
        append(s, "E", "3");
        assert_load(s, None, 6, r#"{"x": "init", "count": 16}"#);
        // present values are used, JSON null included
        append(
            s,
            "E",
            r#"{"x": null, "amt": 2, "item": "i", "patch": {"q": 1}, "a": {"b": {"c": false}}}"#,
        );
        run(&format!(
            r#"SELECT es.append_event('{s}', 'E', '{{"amt": 0.5}}', metadata => '{{"k": "mv"}}')"#
        ));
        assert_load(
            s,
            None,
            8,
            r#"{"x": null, "n": 2.5, "m": -2.5, "l": ["i"], "p": {"q": 1}, "deep": false, "mk": "mv", "count": 18}"#,
        );
    }

    #[pg_test]
    fn merge_is_a_json_merge_patch() {
        define_reducers(
            "merge_a08",
            r#"{"Profile": [{"merge": "profile", "from": "$"}],
                "Root": [{"merge": "", "from": "$"}],
                "Const": [{"merge": "settings", "value": {"theme": "dark", "flags": {"a": true}}}],
                "Top": [{"merge": "top", "from": "$"}],
                "Deep": [{"merge": "x.y", "from": "$"}]}"#,
            "{}",
            0,
        );
        let s = "merge_a08-1";
        append(
            s,
            "Profile",
            r#"{"name": "Ann", "address": {"city": "Oslo", "zip": "0150"}, "tags": ["a"]}"#,
        );
        assert_load(
            s,
            None,
            1,
            r#"{"profile": {"name": "Ann", "address": {"city": "Oslo", "zip": "0150"}, "tags": ["a"]}}"#,
        );
        // null removes a key, nested objects merge, arrays are replaced, nulls
        // inside a new object are dropped
        append(
            s,
            "Profile",
            r#"{"address": {"zip": null, "street": "Main 1"}, "tags": ["b", "c"], "name": null,
                "nick": {"x": null, "y": 1}, "gone": null}"#,
        );
        assert_load(
            s,
            None,
            2,
            r#"{"profile": {"address": {"city": "Oslo", "street": "Main 1"}, "tags": ["b", "c"], "nick": {"y": 1}}}"#,
        );
        append(s, "Const", "{}");
        append(
            s,
            "Root",
            r#"{"top": 1, "settings": {"flags": {"b": false}}, "profile": null}"#,
        );
        assert_load(
            s,
            None,
            4,
            r#"{"top": 1, "settings": {"theme": "dark", "flags": {"a": true, "b": false}}}"#,
        );
        // a non-object target is replaced by the patched object
        append(s, "Top", r#"{"k": "v", "n": null}"#);
        // a missing path is created
        append(s, "Deep", r#"{"z": [1]}"#);
        assert_load(
            s,
            None,
            6,
            r#"{"top": {"k": "v"}, "settings": {"theme": "dark", "flags": {"a": true, "b": false}}, "x": {"y": {"z": [1]}}}"#,
        );
    }

    #[pg_test]
    fn unset_removes_paths() {
        define_reducers(
            "unset_a09",
            r#"{"U": [{"unset": "a.b"}, {"unset": "d"}, {"unset": "x.y.z"}, {"unset": "keep.sub"}],
                "V": [{"unset": "a"}]}"#,
            r#"{"a": {"b": 1, "c": 2}, "d": 3, "keep": true}"#,
            0,
        );
        append("unset_a09-1", "U", "{}");
        assert_load("unset_a09-1", None, 1, r#"{"a": {"c": 2}, "keep": true}"#);
        append("unset_a09-1", "U", "{}");
        append("unset_a09-1", "V", "{}");
        assert_load("unset_a09-1", None, 3, r#"{"keep": true}"#);
        // the initial state is untouched for the next stream
        assert_load(
            "unset_a09-2",
            None,
            0,
            r#"{"a": {"b": 1, "c": 2}, "d": 3, "keep": true}"#,
        );
    }

    #[pg_test]
    fn append_set_and_inc_steps() {
        define_reducers(
            "app_a10",
            r#"{"Add": [{"append": "items", "from": "$"},
                        {"append": "names", "from": "$.name"},
                        {"append": "consts", "value": {"k": [1]}},
                        {"append": "a.b", "from": "$version"}],
                "Set": [{"set": "x.y.z", "from": "$.v"},
                        {"set": "lit", "value": [1, {"q": null}]},
                        {"inc": "c"}, {"inc": "f"}, {"inc": "x.cnt"}]}"#,
            r#"{"f": 1.5}"#,
            0,
        );
        let s = "app_a10-1";
        append(s, "Add", r#"{"name": "a"}"#);
        append(s, "Add", r#"{"n": 2}"#);
        append(s, "Add", r#"{"name": null}"#);
        assert_load(
            s,
            None,
            3,
            r#"{"f": 1.5,
                "items": [{"name": "a"}, {"n": 2}, {"name": null}],
                "names": ["a", null],
                "consts": [{"k": [1]}, {"k": [1]}, {"k": [1]}],
                "a": {"b": [1, 2, 3]}}"#,
        );
        let t = "app_a10-2";
        append(t, "Set", r#"{"v": {"deep": true}}"#);
        append(t, "Set", r#"{"v": 2}"#);
        assert_load(
            t,
            None,
            2,
            r#"{"f": 3.5, "c": 2, "x": {"y": {"z": 2}, "cnt": 2}, "lit": [1, {"q": null}]}"#,
        );
    }

    #[pg_test]
    fn from_objects_build_an_object_from_the_event() {
        define_reducers(
            "tpl_a30",
            r#"{"Paid": [{"append": "log", "from": {"type": "$event_type", "amount": "$.amount",
                                                    "at": {"v": "$version", "who": "$metadata.by"}}},
                         {"merge": "", "from": {"last": "$.amount"}}]}"#,
            r#"{"log": []}"#,
            0,
        );
        let s = "tpl_a30-1";
        run(&format!(
            "SELECT es.append_event('{s}', 'Paid', '{{\"amount\": 1.50}}', metadata => '{{\"by\": \"ann\"}}')"
        ));
        // a field the event does not have is left out
        append(s, "Paid", r#"{"note": "no amount"}"#);
        assert_load(
            s,
            None,
            2,
            r#"{"log": [{"type": "Paid", "amount": 1.50, "at": {"v": 1, "who": "ann"}},
                        {"type": "Paid", "at": {"v": 2}}],
                "last": 1.50}"#,
        );
        for (bad, fragment) in [
            (
                r#"{"E": [{"append": "l", "from": {"x": 1}}]}"#,
                "must be a source string",
            ),
            (
                r#"{"E": [{"append": "l", "from": {"x": "amount"}}]}"#,
                "is not a source",
            ),
            (
                r#"{"E": [{"add": "n", "from": {"x": "$.a"}}]}"#,
                "needs a number",
            ),
            (
                r#"{"E": [{"set": "n", "from": [1]}]}"#,
                "must be a source string or an object",
            ),
        ] {
            assert_error(
                &format!("PERFORM es.define_aggregate('tplbad_a30', reducers => '{bad}')"),
                "22023",
                fragment,
            );
        }
    }

    #[pg_test]
    fn fold_time_errors_are_data_exceptions() {
        define_reducers(
            "ferr_a11",
            r#"{"AddV": [{"add": "n", "from": "$.v"}],
                "SubV": [{"sub": "n", "from": "$.v"}],
                "SetA": [{"set": "a", "from": "$.v"}],
                "SetAB": [{"set": "a.b", "value": 1}],
                "IncA": [{"inc": "a"}],
                "AddA": [{"add": "a", "value": 1}],
                "AppA": [{"append": "a", "value": 1}]}"#,
            "{}",
            0,
        );
        let cases: [(&str, Events, &str); 8] = [
            ("1", &[("AddV", r#"{"v": "10"}"#)], "is not a number"),
            ("2", &[("AddV", r#"{"v": true}"#)], "is not a number"),
            ("3", &[("SubV", r#"{"v": null}"#)], "is not a number"),
            ("4", &[("AddV", r#"{"v": {"x": 1}}"#)], "is not a number"),
            (
                "5",
                &[("SetA", r#"{"v": 5}"#), ("SetAB", "{}")],
                "state.a is not an object",
            ),
            (
                "6",
                &[("SetA", r#"{"v": "s"}"#), ("IncA", "{}")],
                "state.a is not a number",
            ),
            (
                "7",
                &[("SetA", r#"{"v": [1]}"#), ("AddA", "{}")],
                "state.a is not a number",
            ),
            (
                "8",
                &[("SetA", r#"{"v": {}}"#), ("AppA", "{}")],
                "state.a is not an array",
            ),
        ];
        for (n, events, msg) in cases {
            let s = format!("ferr_a11-{n}");
            for (ty, data) in events {
                append(&s, ty, data);
            }
            let v = events.len();
            assert_error(
                &format!("PERFORM * FROM es.load('{s}')"),
                "22000",
                &format!("folding stream \"{s}\" version {v}"),
            );
            assert_error(&format!("PERFORM * FROM es.load('{s}')"), "22000", msg);
            assert_error(
                &format!(
                    "PERFORM es.fold(e ORDER BY version) FROM es.events e WHERE stream_id = '{s}'"
                ),
                "22000",
                msg,
            );
            // the state before the bad event still loads
            assert_eq!(
                one_i64(&format!("SELECT version FROM es.load('{s}', {})", v - 1)),
                (v - 1) as i64
            );
        }
        // setting into a root that is not an object
        define_reducers(
            "ferrroot_a11",
            r#"{"E": [{"set": "x", "value": 1}]}"#,
            "[1]",
            0,
        );
        append("ferrroot_a11-1", "E", "{}");
        assert_error(
            "PERFORM * FROM es.load('ferrroot_a11-1')",
            "22000",
            "is not an object",
        );
        assert_load("ferrroot_a11-1", Some(0), 0, "[1]");
    }
}
