//! In-backend tests of aggregates (`cargo pgrx test`): definitions, native
//! reducers, fold functions, snapshots, es.load / es.load_at / es.fold.
//! Each test runs in its own rolled-back transaction, in parallel with the
//! others and in one database: every test uses its own stream ids and its
//! own stream types (suffix `_aNN`), since definitions are per stream type.

// pgrx-tests calls every test as "tests".<name>() (the schema is fixed in
// pgrx_tests::run_test), so this module, too, must be the SQL schema `tests`.
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    use crate::test_harness::*;

    fn snapshots_of(stream: &str) -> String {
        one_text(&format!(
            "SELECT coalesce(string_agg(version::text, ',' ORDER BY revision, version), '')
               FROM es.snapshots WHERE stream_id = '{stream}'"
        ))
    }

    /// jsonb's canonical text of a JSON document (keys sorted, numbers kept
    /// with their scale).
    fn canon(json: &str) -> String {
        one_text(&format!("SELECT $j${json}$j$::jsonb::text"))
    }

    fn define_reducers(stream_type: &str, reducers: &str, initial: &str, every: i32) {
        run(&format!(
            "SELECT es.define_aggregate('{stream_type}', reducers => $r${reducers}$r$,
                    initial_state => $i${initial}$i$, snapshot_every => {every})"
        ));
    }

    fn append(stream: &str, event_type: &str, data: &str) -> i64 {
        one_i64(&format!(
            "SELECT es.append_event('{stream}', '{event_type}', $d${data}$d$)"
        ))
    }

    /// "version state" of es.load(stream, at).
    fn load(stream: &str, at: Option<i64>) -> String {
        let at = at.map_or("NULL".to_owned(), |v| v.to_string());
        one_text(&format!(
            "SELECT version || ' ' || state::text FROM es.load('{stream}', {at})"
        ))
    }

    fn load_state(stream: &str) -> String {
        one_text(&format!("SELECT state::text FROM es.load('{stream}')"))
    }

    /// es.fold over the stream's events up to `upto` (no snapshots involved).
    fn fold_upto(stream: &str, upto: i64) -> Option<String> {
        opt_text(&format!(
            "SELECT es.fold(e ORDER BY e.version)::text FROM es.events e
              WHERE e.stream_id = '{stream}' AND e.version <= {upto}"
        ))
    }

    fn assert_load(stream: &str, at: Option<i64>, version: i64, json: &str) {
        assert_eq!(
            load(stream, at),
            format!("{version} {}", canon(json)),
            "es.load('{stream}', {at:?})"
        );
    }

    /// An event position of this transaction that appends never hand out
    /// (they count from 1): for events written directly, as a restore does.
    fn raw_position(n: i64) -> String {
        format!(
            "(((pg_current_xact_id()::text::bigint + (SELECT xid_offset FROM es.position_base
                 WHERE system_identifier = es._system_identifier())) << 20) | {})",
            900_000 + n
        )
    }

    /// Events to append: (event type, data).
    type Events<'a> = &'a [(&'a str, &'a str)];

    const BANK: &str = r#"{
        "AccountOpened": [{"set": "owner", "from": "$.owner"},
                          {"set": "balance", "value": 0},
                          {"set": "isActive", "value": true}],
        "MoneyDeposited": [{"add": "balance", "from": "$.amount"}],
        "MoneyWithdrawn": [{"sub": "balance", "from": "$.amount"}],
        "AccountClosed": [{"set": "isActive", "value": false}],
        "*": [{"inc": "transactionCount"}]
    }"#;

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

    // ---- 3. snapshots -----------------------------------------------------

    #[pg_test]
    fn snapshots_are_taken_at_multiples_of_snapshot_every() {
        define_reducers("snap_a15", BANK, "{}", 3);
        append("snap_a15-a", "AccountOpened", r#"{"owner": "A"}"#);
        for i in 2..=10 {
            append(
                "snap_a15-a",
                "MoneyDeposited",
                &format!(r#"{{"amount": {i}.5}}"#),
            );
            let expected: Vec<String> = (1..=i)
                .filter(|v| v % 3 == 0)
                .map(|v| v.to_string())
                .collect();
            assert_eq!(snapshots_of("snap_a15-a"), expected.join(","), "after {i}");
        }
        let batch = |n: usize| {
            let items: Vec<&str> =
                vec![r#"{"type": "MoneyDeposited", "data": {"amount": 0.25}}"#; n];
            format!("[{}]", items.join(","))
        };
        // a batch from 0 to 7 crosses 3 and 6
        run(&format!(
            "SELECT es.append_events('snap_a15-b', '{}')",
            batch(7)
        ));
        assert_eq!(snapshots_of("snap_a15-b"), "3,6");
        run(&format!(
            "SELECT es.append_events('snap_a15-b', '{}', 7)",
            batch(6)
        ));
        assert_eq!(snapshots_of("snap_a15-b"), "3,6,9,12");
        append("snap_a15-b", "MoneyWithdrawn", r#"{"amount": 1}"#);
        assert_eq!(snapshots_of("snap_a15-b"), "3,6,9,12");
        run(&format!(
            "SELECT es.append_events('snap_a15-b', '{}')",
            batch(2)
        ));
        assert_eq!(snapshots_of("snap_a15-b"), "3,6,9,12,15");
        // what each snapshot records
        assert_eq!(
            one_text(
                "SELECT string_agg(DISTINCT stream_type || ':' || revision, ',') FROM es.snapshots
                  WHERE stream_id IN ('snap_a15-a', 'snap_a15-b')"
            ),
            "snap_a15:1"
        );
        // each snapshot's state is the fold from scratch up to its version
        assert!(one_bool(
            "SELECT count(*) = 8 AND bool_and(s.state::text =
                       (SELECT es.fold(e ORDER BY e.version)::text FROM es.events e
                         WHERE e.stream_id = s.stream_id AND e.version <= s.version))
               FROM es.snapshots s WHERE s.stream_id IN ('snap_a15-a', 'snap_a15-b')"
        ));
        assert_eq!(
            one_text("SELECT state->>'balance' FROM es.snapshots WHERE stream_id = 'snap_a15-b' AND version = 15"),
            "2.50"
        );
        assert_eq!(
            one_text("SELECT state::text FROM es.snapshots WHERE stream_id = 'snap_a15-a' AND version = 6"),
            canon(r#"{"owner": "A", "balance": 22.5, "isActive": true, "transactionCount": 6}"#)
        );
        // rows written directly (as a restore does) take none
        run(&format!(
            "INSERT INTO es.events (global_position, stream_id, stream_type, version, event_type, data, event_id)
             VALUES ({}, 'snap_a15-c', 'snap_a15', 3, 'X', '{{}}', es.uuid_generate_v7())",
            raw_position(1)
        ));
        assert_eq!(snapshots_of("snap_a15-c"), "");
    }

    #[pg_test]
    fn snapshot_every_zero_takes_none() {
        define_reducers("snapnone_a16", BANK, "{}", 0);
        for _ in 0..10 {
            append("snapnone_a16-1", "MoneyDeposited", r#"{"amount": 1}"#);
        }
        run(r#"SELECT es.append_events('snapnone_a16-1',
                 (SELECT jsonb_agg('{"type": "MoneyDeposited", "data": {"amount": 1}}'::jsonb) FROM generate_series(1, 100)))"#);
        assert_eq!(snapshots_of("snapnone_a16-1"), "");
        assert_eq!(
            one_text("SELECT version || ' ' || (state->>'balance') FROM es.load('snapnone_a16-1')"),
            "110 110"
        );
        // switching snapshots on later takes them from then on
        define_reducers("snapnone_a16", BANK, "{}", 50);
        append("snapnone_a16-1", "MoneyDeposited", r#"{"amount": 1}"#);
        assert_eq!(snapshots_of("snapnone_a16-1"), "");
        run(r#"SELECT es.append_events('snapnone_a16-1',
                 (SELECT jsonb_agg('{"type": "MoneyDeposited", "data": {"amount": 1}}'::jsonb) FROM generate_series(1, 100)))"#);
        assert_eq!(snapshots_of("snapnone_a16-1"), "150,200");
        assert_eq!(
            one_text("SELECT revision || ':' || (state->>'transactionCount') FROM es.snapshots WHERE stream_id = 'snapnone_a16-1' AND version = 200"),
            "2:200"
        );
    }

    #[pg_test]
    fn load_starts_from_snapshots_of_the_current_revision_only() {
        define_reducers("tamper_a17", BANK, "{}", 3);
        let s = "tamper_a17-1";
        append(s, "AccountOpened", r#"{"owner": "T"}"#);
        for _ in 2..=10 {
            append(s, "MoneyDeposited", r#"{"amount": 1}"#);
        }
        assert_eq!(snapshots_of(s), "3,6,9");
        let tampered = |v: i64| {
            one_bool(&format!(
                "SELECT coalesce((state->>'tampered')::boolean, false) FROM es.load('{s}', {v})"
            ))
        };
        run(&format!(
            "UPDATE es.snapshots SET state = state || '{{\"tampered\": true}}' WHERE stream_id = '{s}' AND version = 6"
        ));
        let seen: Vec<bool> = (0..=10).map(tampered).collect();
        assert_eq!(
            seen,
            [false, false, false, false, false, false, true, true, true, false, false]
        );
        // with no version given, the newest snapshot is used too
        run(&format!(
            "UPDATE es.snapshots SET state = state || '{{\"tampered\": true}}' WHERE stream_id = '{s}' AND version = 9"
        ));
        assert!(one_bool(&format!(
            "SELECT (state->>'tampered')::boolean AND version = 10 AND (state->>'balance') = '9' FROM es.load('{s}')"
        )));
        // es.fold never reads snapshots
        assert_eq!(
            fold_upto(s, 10).unwrap(),
            canon(r#"{"owner": "T", "balance": 9, "isActive": true, "transactionCount": 10}"#)
        );

        // redefining makes every old snapshot unusable
        define_reducers("tamper_a17", BANK, "{}", 3);
        assert_eq!(
            one_i64("SELECT revision FROM es.aggregates WHERE stream_type = 'tamper_a17'"),
            2
        );
        assert!((0..=10).all(|v| !tampered(v)));
        for v in 1..=10 {
            assert_eq!(
                load(s, Some(v)),
                format!("{v} {}", fold_upto(s, v).unwrap())
            );
        }
        // a new definition is seen at once, even where old snapshots exist
        define_reducers(
            "tamper_a17",
            r#"{"MoneyDeposited": [{"add": "deposits", "value": 10}]}"#,
            r#"{"deposits": 0}"#,
            3,
        );
        assert_eq!(
            one_i64("SELECT revision FROM es.aggregates WHERE stream_type = 'tamper_a17'"),
            3
        );
        assert_load(s, None, 10, r#"{"deposits": 90}"#);
        assert_load(s, Some(7), 7, r#"{"deposits": 60}"#);
        // new appends take snapshots of the new revision only, and load uses them
        append(s, "MoneyDeposited", r#"{"amount": 1}"#);
        append(s, "MoneyDeposited", r#"{"amount": 1}"#);
        assert_eq!(
            one_text(&format!(
                "SELECT string_agg(revision || ':' || version, ',' ORDER BY revision, version) FROM es.snapshots WHERE stream_id = '{s}'"
            )),
            "1:3,1:6,1:9,3:12"
        );
        assert_eq!(
            one_text(&format!(
                "SELECT state::text FROM es.snapshots WHERE stream_id = '{s}' AND revision = 3"
            )),
            r#"{"deposits": 110}"#
        );
        run(&format!(
            "UPDATE es.snapshots SET state = '{{\"deposits\": -1}}' WHERE stream_id = '{s}' AND revision = 3"
        ));
        assert_load(s, None, 12, r#"{"deposits": -1}"#);
        assert_load(s, Some(11), 11, r#"{"deposits": 100}"#);
    }

    // ---- 4. time travel ---------------------------------------------------

    #[pg_test]
    fn load_at_any_version_matches_the_fold_from_scratch() {
        define_reducers(
            "tt_a18",
            BANK,
            r#"{"balance": 0, "transactionCount": 0}"#,
            3,
        );
        let s = "tt_a18-1";
        append(s, "AccountOpened", r#"{"owner": "Tim"}"#);
        append(s, "MoneyDeposited", r#"{"amount": 10.10}"#);
        run(&format!(
            r#"SELECT es.append_events('{s}', '[{{"type": "MoneyDeposited", "data": {{"amount": 0.9}}}},
                                                 {{"type": "MoneyWithdrawn", "data": {{"amount": 3}}}},
                                                 {{"type": "MoneyDeposited", "data": {{"amount": 0.001}}}},
                                                 {{"type": "MoneyDeposited", "data": {{"amount": 2}}}}]')"#
        ));
        append(s, "MoneyWithdrawn", r#"{"amount": 0.011}"#);
        append(s, "AccountClosed", "{}");
        append(s, "MoneyDeposited", r#"{"amount": 5}"#);
        append(s, "MoneyDeposited", r#"{"amount": 5}"#);
        assert_eq!(snapshots_of(s), "3,6,9");
        // before, between, at and after snapshots, and beyond the end
        for v in 0..=13 {
            let expected = if v == 0 {
                format!("0 {}", canon(r#"{"balance": 0, "transactionCount": 0}"#))
            } else {
                format!("{} {}", v.min(10), fold_upto(s, v).unwrap())
            };
            assert_eq!(load(s, Some(v)), expected, "version {v}");
        }
        assert_load(
            s,
            Some(5),
            5,
            r#"{"owner": "Tim", "balance": 8.001, "isActive": true, "transactionCount": 5}"#,
        );
        assert_load(
            s,
            None,
            10,
            r#"{"owner": "Tim", "balance": 19.990, "isActive": false, "transactionCount": 10}"#,
        );
        assert_eq!(load(s, Some(i64::MAX)), load(s, None));
    }

    #[pg_test]
    fn load_at_takes_the_prefix_recorded_by_a_time() {
        define_reducers(
            "ttat_a19",
            r#"{"Add": [{"add": "n", "from": "$.v"}],
                "*": [{"set": "at", "from": "$recorded_at"}, {"inc": "count"}]}"#,
            r#"{"count": 0}"#,
            2,
        );
        let s = "ttat_a19-1";
        let times = [
            (1, "2024-01-01 10:00:00+00", "1"),
            (2, "2024-01-01 10:05:00+00", "2"),
            (3, "2024-01-01 10:10:00+00", "4"),
            (4, "2024-01-01 10:10:00+00", "8"),
            // recorded out of order: it ends the prefix at 10:30
            (5, "2024-01-01 10:30:00+00", "16"),
            (6, "2024-01-01 10:20:00+00", "32"),
        ];
        for (v, t, n) in times {
            run(&format!(
                "INSERT INTO es.events (global_position, stream_id, stream_type, version, event_type, data, event_id, recorded_at)
                 VALUES ({}, '{s}', 'ttat_a19', {v}, 'Add', '{{\"v\": {n}}}', es.uuid_generate_v7(), '{t}')",
                raw_position(v)
            ));
        }
        run(&format!(
            "INSERT INTO es.streams (stream_id, stream_type, version) VALUES ('{s}', 'ttat_a19', 6)"
        ));
        let at = |t: &str| {
            one_text(&format!(
                "SELECT version || ' ' || (state->>'count') || ' ' || coalesce(state->>'n', '-') || ' '
                        || coalesce(state->>'at', '-')
                   FROM es.load_at('{s}', '{t}')"
            ))
        };
        run("SET LOCAL timezone = 'UTC'");
        assert_eq!(at("2024-01-01 09:59:59.999999+00"), "0 0 - -");
        assert_eq!(at("-infinity"), "0 0 - -");
        assert_eq!(
            at("2024-01-01 10:00:00+00"),
            "1 1 1 2024-01-01T10:00:00+00:00"
        );
        assert_eq!(
            at("2024-01-01 10:04:59+00"),
            "1 1 1 2024-01-01T10:00:00+00:00"
        );
        assert_eq!(
            at("2024-01-01 10:07:00+00"),
            "2 2 3 2024-01-01T10:05:00+00:00"
        );
        // two events recorded at the same instant come together
        assert_eq!(
            at("2024-01-01 10:10:00+00"),
            "4 4 15 2024-01-01T10:10:00+00:00"
        );
        assert_eq!(
            at("2024-01-01 11:10:00+01"),
            "4 4 15 2024-01-01T10:10:00+00:00"
        );
        // event 6 is recorded at 10:20 but event 5 only at 10:30
        assert_eq!(
            at("2024-01-01 10:25:00+00"),
            "4 4 15 2024-01-01T10:10:00+00:00"
        );
        assert_eq!(
            at("2024-01-01 10:30:00+00"),
            "6 6 63 2024-01-01T10:20:00+00:00"
        );
        assert_eq!(
            at("2030-01-01 00:00:00+00"),
            "6 6 63 2024-01-01T10:20:00+00:00"
        );
        assert_eq!(at("infinity"), "6 6 63 2024-01-01T10:20:00+00:00");
        // a stream with no events: version 0 and the initial state
        assert_eq!(
            one_text("SELECT stream_type || ' ' || version || ' ' || state::text FROM es.load_at('ttat_a19-none', now())"),
            r#"ttat_a19 0 {"count": 0}"#
        );
        assert_error(
            &format!("PERFORM * FROM es.load_at('{s}', NULL)"),
            "22004",
            "at_time must not be NULL",
        );
        assert_error(
            "PERFORM * FROM es.load_at(NULL, now())",
            "22004",
            "stream_id must not be NULL",
        );

        // appended events, with snapshots, are all recorded at now()
        let a = "ttat_a19-2";
        for n in 1..=5 {
            append(a, "Add", &format!(r#"{{"v": {n}}}"#));
        }
        assert_eq!(snapshots_of(a), "2,4");
        assert_eq!(
            one_text(&format!(
                "SELECT version || ' ' || (state->>'n') FROM es.load_at('{a}', now())"
            )),
            "5 15"
        );
        assert!(one_bool(&format!(
            "SELECT (SELECT row(l.*)::text FROM es.load_at('{a}', now() + interval '1 day') l)
                  = (SELECT row(l.*)::text FROM es.load('{a}') l)"
        )));
        assert_eq!(
            one_text(&format!(
                "SELECT version || ' ' || state::text FROM es.load_at('{a}', now() - interval '1 microsecond')"
            )),
            r#"0 {"count": 0}"#
        );
    }

    // ---- 5. es.fold -------------------------------------------------------

    #[pg_test]
    fn fold_aggregate_matches_load_for_every_stream() {
        define_reducers("fa_a20", BANK, "{}", 2);
        let plan: [(&str, Events); 4] = [
            (
                "fa_a20-1",
                &[
                    ("AccountOpened", r#"{"owner": "A"}"#),
                    ("MoneyDeposited", r#"{"amount": 1.5}"#),
                    ("MoneyWithdrawn", r#"{"amount": 0.25}"#),
                ],
            ),
            ("fa_a20-2", &[("AccountOpened", r#"{"owner": "B"}"#)]),
            (
                "fa_a20-3",
                &[
                    ("AccountOpened", r#"{"owner": "C"}"#),
                    ("MoneyDeposited", r#"{"amount": 7}"#),
                    ("MoneyDeposited", r#"{"amount": 0.07}"#),
                    ("AccountClosed", "{}"),
                    ("MoneyWithdrawn", r#"{"amount": 7.07}"#),
                ],
            ),
            (
                "fa_a20-4",
                &[
                    ("MoneyDeposited", r#"{"amount": 3}"#),
                    ("MoneyDeposited", r#"{"amount": 4}"#),
                ],
            ),
        ];
        // interleaved appends
        for round in 0..5 {
            for (s, events) in plan.iter() {
                if let Some((ty, data)) = events.get(round) {
                    append(s, ty, data);
                }
            }
        }
        assert!(one_bool(
            "SELECT count(*) = 4 AND bool_and(f.state::text = l.state::text AND f.n = l.version)
               FROM (SELECT stream_id, count(*) n, es.fold(e ORDER BY version) state
                       FROM es.events e WHERE stream_type = 'fa_a20' GROUP BY stream_id) f,
                    LATERAL es.load(f.stream_id) l"
        ));
        assert_eq!(
            one_text(
                "SELECT string_agg(stream_id || '=' || (state->>'balance'), ',' ORDER BY stream_id)
                   FROM (SELECT stream_id, es.fold(e ORDER BY version) state
                           FROM es.events e WHERE stream_type = 'fa_a20' GROUP BY stream_id) f"
            ),
            "fa_a20-1=1.25,fa_a20-2=0,fa_a20-3=0.00,fa_a20-4=7"
        );
        // no rows: NULL
        assert!(one_bool(
            "SELECT es.fold(e ORDER BY version) IS NULL FROM es.events e WHERE stream_id = 'fa_a20-none'"
        ));
        // two stream types in one group
        define_reducers("fb_a20", BANK, "{}", 0);
        append("fb_a20-1", "MoneyDeposited", r#"{"amount": 1}"#);
        assert_error(
            "PERFORM es.fold(e ORDER BY global_position) FROM es.events e WHERE stream_id IN ('fa_a20-2', 'fb_a20-1')",
            "22023",
            "cannot fold events of stream types",
        );
        // out of version order
        assert_error(
            "PERFORM es.fold(e ORDER BY version DESC) FROM es.events e WHERE stream_id = 'fa_a20-3'",
            "22000",
            "not in version order",
        );
        // a type with no definition
        run("SELECT es.append_event('fnone_a20-1', 'E', '{}')");
        assert_error(
            "PERFORM es.fold(e) FROM es.events e WHERE stream_id = 'fnone_a20-1'",
            "42704",
            "no aggregate is defined for stream type \"fnone_a20\"",
        );
    }

    // ---- 6. bad definitions and bad load arguments ------------------------

    #[pg_test]
    fn bad_definitions_are_rejected() {
        let define = |args: &str| format!("PERFORM es.define_aggregate({args})");
        let good = r#"'{"E": [{"inc": "n"}]}'"#;
        assert_error(
            &define(&format!("NULL, reducers => {good}")),
            "22004",
            "stream_type must not be NULL",
        );
        assert_error(
            &define(&format!("'', reducers => {good}")),
            "22023",
            "stream_type must be 1 to 1000 bytes long",
        );
        assert_error(
            &define("'bad_a21'"),
            "22023",
            "give exactly one of fold and reducers",
        );
        run("CREATE FUNCTION public.es_a21_ok(s jsonb, e es.events) RETURNS jsonb LANGUAGE sql AS 'SELECT s'");
        assert_error(
            &define(&format!(
                "'bad_a21', 'public.es_a21_ok(jsonb, es.events)', {good}"
            )),
            "22023",
            "give exactly one of fold and reducers",
        );
        assert_error(
            &define(&format!(
                "'bad_a21', reducers => {good}, initial_state => NULL"
            )),
            "22004",
            "initial_state must not be NULL",
        );
        assert_error(
            &define(&format!(
                "'bad_a21', reducers => {good}, snapshot_every => -1"
            )),
            "22023",
            "snapshot_every must be 0 (never) or a positive number of events, got -1",
        );
        assert_error(
            &define(&format!(
                "'bad_a21', reducers => {good}, snapshot_every => NULL"
            )),
            "22023",
            "snapshot_every",
        );

        // fold functions of the wrong shape
        run("CREATE FUNCTION public.es_a21_one(s jsonb) RETURNS jsonb LANGUAGE sql AS 'SELECT s'");
        run("CREATE FUNCTION public.es_a21_text(s jsonb, e es.events) RETURNS text LANGUAGE sql AS 'SELECT s::text'");
        run("CREATE FUNCTION public.es_a21_swap(e es.events, s jsonb) RETURNS jsonb LANGUAGE sql AS 'SELECT s'");
        run("CREATE FUNCTION public.es_a21_json(s json, e es.events) RETURNS jsonb LANGUAGE sql AS 'SELECT s::jsonb'");
        run("CREATE FUNCTION public.es_a21_srf(s jsonb, e es.events) RETURNS SETOF jsonb LANGUAGE sql AS 'SELECT s'");
        run("CREATE FUNCTION public.es_a21_three(s jsonb, e es.events, k int DEFAULT 0) RETURNS jsonb LANGUAGE sql AS 'SELECT s'");
        run("CREATE PROCEDURE public.es_a21_proc(s jsonb, e es.events) LANGUAGE sql AS 'SELECT 1'");
        for f in [
            "public.es_a21_one(jsonb)",
            "public.es_a21_text(jsonb, es.events)",
            "public.es_a21_swap(es.events, jsonb)",
            "public.es_a21_json(json, es.events)",
            "public.es_a21_srf(jsonb, es.events)",
            "public.es_a21_three(jsonb, es.events, int)",
            "public.es_a21_proc(jsonb, es.events)",
        ] {
            assert_error(
                &define(&format!("'bad_a21', fold => '{f}'")),
                "42P13",
                "has the wrong signature",
            );
        }

        // reducers
        let bad_reducers = [
            (r#"[]"#, "reducers must be a JSON object"),
            (r#""E""#, "reducers must be a JSON object"),
            (r#"5"#, "reducers must be a JSON object"),
            (r#"null"#, "reducers must be a JSON object"),
            (
                r#"{"E": {"inc": "n"}}"#,
                "reducers.E must be a JSON array of steps",
            ),
            (
                r#"{"E": "inc"}"#,
                "reducers.E must be a JSON array of steps",
            ),
            (r#"{"": [{"inc": "n"}]}"#, "an event type must not be empty"),
            (
                r#"{"E": ["inc"]}"#,
                "reducers.E[0]: a step must be a JSON object",
            ),
            (
                r#"{"E": [{"bogus": "x"}]}"#,
                "reducers.E[0]: unknown key \"bogus\"",
            ),
            (
                r#"{"E": [{"inc": "n", "bogus": 1}]}"#,
                "reducers.E[0]: unknown key \"bogus\"",
            ),
            (
                r#"{"E": [{"value": 1}]}"#,
                "reducers.E[0]: a step needs one of set",
            ),
            (r#"{"E": [{}]}"#, "reducers.E[0]: a step needs one of set"),
            (
                r#"{"E": [{"set": "a", "add": "b", "value": 1}]}"#,
                "reducers.E[0]: a step has exactly one of set",
            ),
            (
                r#"{"E": [{"inc": "a", "unset": "b"}]}"#,
                "reducers.E[0]: a step has exactly one of set",
            ),
            (
                r#"{"E": [{"set": "a"}]}"#,
                r#"reducers.E[0]: "set" needs "from" or "value""#,
            ),
            (
                r#"{"E": [{"add": "a"}]}"#,
                r#"reducers.E[0]: "add" needs "from" or "value""#,
            ),
            (
                r#"{"E": [{"sub": "a"}]}"#,
                r#"reducers.E[0]: "sub" needs "from" or "value""#,
            ),
            (
                r#"{"E": [{"append": "a"}]}"#,
                r#"reducers.E[0]: "append" needs "from" or "value""#,
            ),
            (
                r#"{"E": [{"merge": "a"}]}"#,
                r#"reducers.E[0]: "merge" needs "from" or "value""#,
            ),
            (
                r#"{"E": [{"set": "a", "from": "$.x", "value": 1}]}"#,
                r#"reducers.E[0]: a step has "from" or "value", not both"#,
            ),
            (
                r#"{"E": [{"set": "a", "value": 1, "from": "$.x"}]}"#,
                r#"not both"#,
            ),
            (
                r#"{"E": [{"inc": "a", "value": 1}]}"#,
                r#"reducers.E[0]: "inc" takes no "from" or "value""#,
            ),
            (
                r#"{"E": [{"inc": "a", "from": "$.x"}]}"#,
                r#""inc" takes no "from" or "value""#,
            ),
            (
                r#"{"E": [{"unset": "a", "from": "$.x"}]}"#,
                r#"reducers.E[0]: "unset" takes no "from" or "value""#,
            ),
            (
                r#"{"E": [{"unset": "a", "value": null}]}"#,
                r#""unset" takes no"#,
            ),
            (
                r#"{"E": [{"set": "a.", "value": 1}]}"#,
                r#"reducers.E[0]: "a." is not a path (empty segment)"#,
            ),
            (
                r#"{"E": [{"set": ".a", "value": 1}]}"#,
                r#"".a" is not a path"#,
            ),
            (
                r#"{"E": [{"set": "a..b", "value": 1}]}"#,
                r#""a..b" is not a path"#,
            ),
            (
                r#"{"E": [{"set": "", "value": 1}]}"#,
                "reducers.E[0]: path must not be empty",
            ),
            (r#"{"E": [{"unset": ""}]}"#, "path must not be empty"),
            (r#"{"E": [{"inc": ""}]}"#, "path must not be empty"),
            (
                r#"{"E": [{"set": 5, "value": 1}]}"#,
                r#"reducers.E[0]: "set" must name a path as a string"#,
            ),
            (
                r#"{"E": [{"set": "a", "from": "amount"}]}"#,
                r#"reducers.E[0]: "from": "amount" is not a source"#,
            ),
            (
                r#"{"E": [{"set": "a", "from": "$foo"}]}"#,
                r#""from": "$foo" is not a source"#,
            ),
            (
                r#"{"E": [{"set": "a", "from": "$.a."}]}"#,
                r#""a." is not a path"#,
            ),
            (
                r#"{"E": [{"set": "a", "from": "$."}]}"#,
                "path must not be empty",
            ),
            (
                r#"{"E": [{"set": "a", "from": "$metadata."}]}"#,
                "path must not be empty",
            ),
            (
                r#"{"E": [{"set": "a", "from": 5}]}"#,
                r#"reducers.E[0]: "from" must be a source string or an object"#,
            ),
            (
                r#"{"E": [{"add": "a", "value": "1"}]}"#,
                r#"reducers.E[0]: "add" needs a number as "value""#,
            ),
            (
                r#"{"E": [{"sub": "a", "value": null}]}"#,
                r#""sub" needs a number as "value""#,
            ),
            (
                r#"{"E": [{"add": "a", "value": [1]}]}"#,
                r#""add" needs a number"#,
            ),
            (
                r#"{"E": [{"merge": "a", "value": 5}]}"#,
                r#"reducers.E[0]: "merge" needs an object as "value""#,
            ),
            (
                r#"{"E": [{"merge": "", "value": [1]}]}"#,
                r#""merge" needs an object"#,
            ),
            (
                r#"{"E": [{"merge": "a", "value": "s"}]}"#,
                r#""merge" needs an object"#,
            ),
            (
                r#"{"E": [{"inc": "n"}, {"inc": "n", "value": 2}]}"#,
                r#"reducers.E[1]: "inc" takes no"#,
            ),
            (
                r#"{"E": [{"inc": "n"}], "*": [{"set": "x"}]}"#,
                r#"reducers.*[0]: "set" needs"#,
            ),
            (
                r#"{"Money Deposited": [{"inc": "n"}, {"inc": "n"}, {"add": "x.y", "from": "$amount"}]}"#,
                r#"reducers.Money Deposited[2]: "from": "$amount" is not a source"#,
            ),
        ];
        for (reducers, msg) in bad_reducers {
            assert_error(
                &define(&format!("'bad_a21', reducers => $r${reducers}$r$")),
                "22023",
                msg,
            );
            assert_error(
                &define(&format!("'bad_a21', reducers => $r${reducers}$r$")),
                "22023",
                "invalid reducers: ",
            );
        }
        assert_eq!(
            one_i64("SELECT count(*) FROM es.aggregates WHERE stream_type = 'bad_a21'"),
            0
        );

        // and the good ones are accepted; each redefinition counts
        let good_reducers = [
            r#"{}"#,
            r#"{"E": []}"#,
            r#"{"E": [{"merge": "", "from": "$"}, {"set": "a.b.c", "from": "$metadata.x.y"},
                      {"append": "l", "value": null}, {"set": "s", "value": "text"},
                      {"add": "n", "value": -1.5e3}, {"sub": "n", "from": "$global_position"},
                      {"unset": "q.r"}, {"set": "t", "from": "$stream_type"},
                      {"set": "m", "from": "$metadata"}, {"set": "i", "from": "$event_id"}]}"#,
        ];
        for (i, r) in good_reducers.iter().enumerate() {
            run(&format!(
                "SELECT es.define_aggregate('good_a21', reducers => $r${r}$r$)"
            ));
            assert_eq!(
                one_i64("SELECT revision FROM es.aggregates WHERE stream_type = 'good_a21'"),
                i as i64 + 1
            );
        }
        run("SELECT es.define_aggregate('good_a21', 'public.es_a21_ok(jsonb, es.events)', initial_state => '[]', snapshot_every => 0)");
        assert_eq!(
            one_text(
                "SELECT revision || ' ' || (fold::regprocedure = 'public.es_a21_ok(jsonb, es.events)'::regprocedure) || ' ' || (reducers IS NULL)
                        || ' ' || initial_state::text || ' ' || snapshot_every
                   FROM es.aggregates WHERE stream_type = 'good_a21'"
            ),
            "4 true true [] 0"
        );
        assert_load("good_a21-1", None, 0, "[]");
    }

    #[pg_test]
    fn load_rejects_bad_arguments_and_unknown_types() {
        define_reducers("lerr_a22", r#"{"E": [{"inc": "n"}]}"#, r#"{"n": 0}"#, 100);
        assert_error(
            "PERFORM * FROM es.load(NULL)",
            "22004",
            "stream_id must not be NULL",
        );
        assert_error(
            "PERFORM * FROM es.load('')",
            "22023",
            "stream_id must not be empty",
        );
        assert_error(
            "PERFORM * FROM es.load('lerr_a22-1', -1)",
            "22023",
            "at_version must not be negative, got -1",
        );
        assert_error(
            "PERFORM * FROM es.load('nodef_a22-1')",
            "42704",
            "no aggregate is defined for stream type \"nodef_a22\"",
        );
        assert_error(
            "PERFORM * FROM es.load_at('nodef_a22-1', now())",
            "42704",
            "no aggregate is defined for stream type \"nodef_a22\"",
        );
        // the recorded type counts, not the id's prefix
        run("SELECT es.append_event('lerr_a22-2', 'E', '{}', stream_type => 'lerrother_a22')");
        assert_error(
            "PERFORM * FROM es.load('lerr_a22-2')",
            "42704",
            "no aggregate is defined for stream type \"lerrother_a22\"",
        );
        // an id without '-' is its own type
        define_reducers(
            "lerr_a22solo",
            r#"{"E": [{"inc": "n"}]}"#,
            r#"{"solo": true}"#,
            100,
        );
        assert_eq!(
            one_text("SELECT stream_type || ' ' || version || ' ' || state::text FROM es.load('lerr_a22solo')"),
            r#"lerr_a22solo 0 {"solo": true}"#
        );
        // a stream with no events: version 0, initial state, type from its id
        assert_eq!(
            one_text("SELECT stream_id || ' ' || stream_type || ' ' || version || ' ' || state::text FROM es.load('lerr_a22-9-x')"),
            r#"lerr_a22-9-x lerr_a22 0 {"n": 0}"#
        );
        assert_eq!(
            one_text("SELECT version || ' ' || state::text FROM es.load('lerr_a22-9', 5)"),
            r#"0 {"n": 0}"#
        );
        // at_version beyond the end is the end
        append("lerr_a22-3", "E", "{}");
        append("lerr_a22-3", "E", "{}");
        assert_load("lerr_a22-3", Some(100), 2, r#"{"n": 2}"#);
        assert_load("lerr_a22-3", Some(2), 2, r#"{"n": 2}"#);
        assert_load("lerr_a22-3", Some(0), 0, r#"{"n": 0}"#);
        assert_eq!(one_i64("SELECT count(*) FROM es.load('lerr_a22-3')"), 1);
    }

    // ---- 7. property: random bank streams -------------------------------

    /// A deterministic pseudo-random generator (64-bit LCG, high bits).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// mantissa × 10^-scale, as the reducers' exact decimals.
    #[derive(Clone, Copy)]
    struct Dec {
        m: i128,
        s: u32,
    }

    impl Dec {
        fn op(self, o: Dec, negate: bool) -> Dec {
            let s = self.s.max(o.s);
            let a = self.m * 10i128.pow(s - self.s);
            let b = o.m * 10i128.pow(s - o.s);
            Dec {
                m: if negate { a - b } else { a + b },
                s,
            }
        }

        fn text(self) -> String {
            let digits = self.m.unsigned_abs().to_string();
            let sign = if self.m < 0 { "-" } else { "" };
            let s = self.s as usize;
            if s == 0 {
                format!("{sign}{digits}")
            } else if digits.len() <= s {
                format!("{sign}0.{}{digits}", "0".repeat(s - digits.len()))
            } else {
                let (i, f) = digits.split_at(digits.len() - s);
                format!("{sign}{i}.{f}")
            }
        }
    }

    /// The test's own model of the account reducers below.
    #[derive(Clone, Default)]
    struct Account {
        owner: Option<String>,
        balance: Option<Dec>,
        active: Option<bool>,
        memos: Option<Vec<String>>,
        count: i64,
        last_type: Option<String>,
    }

    impl Account {
        fn apply(&mut self, ty: &str, owner: &str, amount: Option<Dec>, memo: Option<&str>) {
            match ty {
                "AccountOpened" => {
                    self.owner = Some(owner.to_owned());
                    self.balance = Some(Dec { m: 0, s: 0 });
                    self.active = Some(true);
                }
                "MoneyDeposited" | "MoneyWithdrawn" => {
                    let cur = self.balance.unwrap_or(Dec { m: 0, s: 0 });
                    self.balance = Some(cur.op(amount.unwrap(), ty == "MoneyWithdrawn"));
                }
                "AccountClosed" => self.active = Some(false),
                "OwnerChanged" => self.owner = Some(owner.to_owned()),
                "MemoAdded" => {
                    if let Some(m) = memo {
                        self.memos.get_or_insert_with(Vec::new).push(m.to_owned());
                    }
                }
                _ => {}
            }
            self.count += 1;
            self.last_type = Some(ty.to_owned());
        }

        fn json(&self, version: i64) -> String {
            if version == 0 {
                return "{}".to_owned();
            }
            let mut f = Vec::new();
            if let Some(o) = &self.owner {
                f.push(format!(r#""owner": "{o}""#));
            }
            if let Some(b) = self.balance {
                f.push(format!(r#""balance": {}"#, b.text()));
            }
            if let Some(a) = self.active {
                f.push(format!(r#""isActive": {a}"#));
            }
            if let Some(m) = &self.memos {
                let items: Vec<String> = m.iter().map(|x| format!("\"{x}\"")).collect();
                f.push(format!(r#""memos": [{}]"#, items.join(", ")));
            }
            f.push(format!(r#""transactionCount": {}"#, self.count));
            f.push(format!(r#""lastVersion": {version}"#));
            if let Some(t) = &self.last_type {
                f.push(format!(r#""lastType": "{t}""#));
            }
            format!("{{{}}}", f.join(", "))
        }
    }

    const PROP_REDUCERS: &str = r#"{
        "AccountOpened": [{"set": "owner", "from": "$.owner"}, {"set": "balance", "value": 0},
                          {"set": "isActive", "value": true}],
        "MoneyDeposited": [{"add": "balance", "from": "$.amount"}],
        "MoneyWithdrawn": [{"sub": "balance", "from": "$.amount"}],
        "AccountClosed": [{"set": "isActive", "value": false}],
        "OwnerChanged": [{"set": "owner", "from": "$.owner"}],
        "MemoAdded": [{"append": "memos", "from": "$.memo"}],
        "*": [{"inc": "transactionCount"}, {"set": "lastVersion", "from": "$version"},
              {"set": "lastType", "from": "$event_type"}]
    }"#;

    #[pg_test]
    fn random_streams_load_as_the_model_at_every_version() {
        const STREAMS: usize = 6;
        const TOTAL: usize = 260;
        let mut rng = Lcg(0x5eed_2024_0a23);
        let owners = ["Ann", "Bo", "Zoë", "O'Neil", "Chen Wei"];
        let (mut rev, mut every) = (1i64, 4i64);
        define_reducers("prop_a23", PROP_REDUCERS, "{}", every as i32);

        let ids: Vec<String> = (0..STREAMS).map(|i| format!("prop_a23-{i}")).collect();
        // per stream: the model's state after every version (index = version)
        let mut states: Vec<Vec<String>> = vec![vec![Account::default().json(0)]; STREAMS];
        let mut models: Vec<Account> = vec![Account::default(); STREAMS];
        let mut snaps: Vec<Vec<(i64, i64)>> = vec![Vec::new(); STREAMS];
        let mut appended = 0usize;
        let mut redefined = false;

        while appended < TOTAL {
            if !redefined && appended >= TOTAL / 2 {
                // same reducers, new revision and cadence: old snapshots are dropped
                // from use, the states must not change
                rev += 1;
                every = 3;
                define_reducers("prop_a23", PROP_REDUCERS, "{}", every as i32);
                redefined = true;
            }
            let k = rng.below(STREAMS as u64) as usize;
            let n = 1 + rng.below(5) as usize;
            let start = (states[k].len() - 1) as i64;
            let mut items = Vec::new();
            for j in 0..n {
                let version = start + 1 + j as i64;
                let ty = if version == 1 {
                    "AccountOpened"
                } else {
                    match rng.below(100) {
                        0..=39 => "MoneyDeposited",
                        40..=69 => "MoneyWithdrawn",
                        70..=79 => "MemoAdded",
                        80..=89 => "OwnerChanged",
                        90..=94 => "AccountClosed",
                        _ => "AccountOpened",
                    }
                };
                let owner = owners[rng.below(owners.len() as u64) as usize];
                let (data, amount, memo) = match ty {
                    "MoneyDeposited" | "MoneyWithdrawn" => {
                        let scale = rng.below(4) as u32;
                        let range = if rng.below(10) == 0 { 1_000_000 } else { 2_000 };
                        let int = rng.below(range);
                        let frac = rng.below(10u64.pow(scale));
                        let d = Dec {
                            m: int as i128 * 10i128.pow(scale) + frac as i128,
                            s: scale,
                        };
                        (format!(r#"{{"amount": {}}}"#, d.text()), Some(d), None)
                    }
                    "AccountOpened" | "OwnerChanged" => {
                        (format!(r#"{{"owner": "{owner}"}}"#), None, None)
                    }
                    "MemoAdded" => {
                        if rng.below(2) == 0 {
                            let m = format!("memo {version}");
                            (format!(r#"{{"memo": "{m}"}}"#), None, Some(m))
                        } else {
                            // no memo: the append step is skipped
                            (r#"{"note": 1}"#.to_owned(), None, None)
                        }
                    }
                    _ => ("{}".to_owned(), None, None),
                };
                models[k].apply(ty, owner, amount, memo.as_deref());
                states[k].push(models[k].json(version));
                if version % every == 0 {
                    snaps[k].push((rev, version));
                }
                items.push((ty, data));
            }
            let expected = match rng.below(3) {
                0 => start.to_string(),
                _ => "NULL".to_owned(),
            };
            let sid = &ids[k];
            let got = if n == 1 && rng.below(2) == 0 {
                let (ty, data) = &items[0];
                one_i64(&format!(
                    "SELECT es.append_event('{sid}', '{ty}', $d${data}$d$, expected_version => {expected})"
                ))
            } else {
                let batch: Vec<String> = items
                    .iter()
                    .map(|(ty, data)| format!(r#"{{"type": "{ty}", "data": {data}}}"#))
                    .collect();
                one_i64(&format!(
                    "SELECT es.append_events('{sid}', $d$[{}]$d$, expected_version => {expected})",
                    batch.join(", ")
                ))
            };
            assert_eq!(got, start + n as i64);
            appended += n;
        }

        for k in 0..STREAMS {
            let sid = &ids[k];
            let last = (states[k].len() - 1) as i64;
            if last == 0 {
                continue;
            }
            // the model's states, as jsonb text, "version state" per line
            let expected = one_text(&format!(
                "SELECT string_agg((o - 1) || ' ' || x::text, E'\\n' ORDER BY o)
                   FROM jsonb_array_elements($j$[{}]$j$) WITH ORDINALITY t(x, o)",
                states[k].join(",")
            ));
            let expected_lines: Vec<&str> = expected.lines().collect();
            // es.load at every version (from snapshots)
            let loaded = one_text(&format!(
                "SELECT string_agg(l.version || ' ' || l.state::text, E'\\n' ORDER BY v)
                   FROM generate_series(0, {last}) v, LATERAL es.load('{sid}', v) l"
            ));
            for (v, (got, want)) in loaded.lines().zip(&expected_lines).enumerate() {
                assert_eq!(got, *want, "es.load('{sid}', {v})");
            }
            assert_eq!(loaded.lines().count(), expected_lines.len(), "{sid}");
            // es.fold over the events up to every version (no snapshots)
            let folded = one_text(&format!(
                "SELECT string_agg(v || ' ' || (SELECT es.fold(e ORDER BY e.version)::text FROM es.events e
                                                 WHERE e.stream_id = '{sid}' AND e.version <= v),
                                   E'\\n' ORDER BY v)
                   FROM generate_series(1, {last}) v"
            ));
            for (i, (got, want)) in folded.lines().zip(&expected_lines[1..]).enumerate() {
                assert_eq!(got, *want, "es.fold of '{sid}' up to {}", i + 1);
            }
            assert_eq!(folded.lines().count(), last as usize, "{sid}");
            // the balance, exactly as the model has it
            if let Some(b) = models[k].balance {
                assert_eq!(
                    one_text(&format!("SELECT state->>'balance' FROM es.load('{sid}')")),
                    b.text(),
                    "{sid}"
                );
            }
            // snapshots: exactly where due, each holding the model's state
            let want: Vec<String> = snaps[k].iter().map(|(r, v)| format!("{r}:{v}")).collect();
            assert_eq!(
                one_text(&format!(
                    "SELECT coalesce(string_agg(revision || ':' || version, ',' ORDER BY revision, version), '')
                       FROM es.snapshots WHERE stream_id = '{sid}'"
                )),
                want.join(","),
                "snapshots of {sid}"
            );
            let snap_states = one_text(&format!(
                "SELECT coalesce(string_agg(version || ' ' || state::text, E'\\n' ORDER BY revision, version), '')
                   FROM es.snapshots WHERE stream_id = '{sid}'"
            ));
            for line in snap_states.lines() {
                let v: usize = line.split(' ').next().unwrap().parse().unwrap();
                assert_eq!(line, expected_lines[v], "snapshot of {sid}");
            }
            assert_eq!(one_i64(&format!("SELECT es.stream_version('{sid}')")), last);
        }
        assert_eq!(
            one_i64("SELECT revision FROM es.aggregates WHERE stream_type = 'prop_a23'"),
            2
        );
        // the run really exercised snapshots of both revisions
        assert!(snaps.iter().flatten().filter(|(r, _)| *r == 1).count() >= 10);
        assert!(snaps.iter().flatten().filter(|(r, _)| *r == 2).count() >= 10);
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
