//! In-backend tests of aggregates: bad definitions and bad load arguments.

// pgrx-tests calls every test as "tests".<name>(): the module is the SQL schema `tests`.
#[pgrx::pg_schema]
mod tests {
    // The helpers of aggregates::tests, and through them the harness's.
    use super::super::*;
    use pgrx::prelude::*;

    // ---- 6. bad definitions and bad load arguments ------------------------

    #[pg_test]
    fn bad_definitions_are_rejected() {
        let define = |args: &str| format!("PERFORM es.define_aggregate({args})");
        let good = r#"'{"E": [{"inc": "n"}]}'"#;
        run("CREATE FUNCTION public.es_a21_ok(s jsonb, e es.events) RETURNS jsonb LANGUAGE sql AS 'SELECT s'");
        for (args, code, message) in [
            (
                format!("NULL, reducers => {good}"),
                "22004",
                "stream_type must not be NULL",
            ),
            (
                format!("'', reducers => {good}"),
                "22023",
                "stream_type must be 1 to 1000 bytes long",
            ),
            (
                "'bad_a21'".to_owned(),
                "22023",
                "give exactly one of fold and reducers",
            ),
            (
                format!("'bad_a21', 'public.es_a21_ok(jsonb, es.events)', {good}"),
                "22023",
                "give exactly one of fold and reducers",
            ),
            (
                format!("'bad_a21', reducers => {good}, initial_state => NULL"),
                "22004",
                "initial_state must not be NULL",
            ),
            (
                format!("'bad_a21', reducers => {good}, snapshot_every => -1"),
                "22023",
                "snapshot_every must be 0 (never) or a positive number of events, got -1",
            ),
            (
                format!("'bad_a21', reducers => {good}, snapshot_every => NULL"),
                "22023",
                "snapshot_every",
            ),
        ] {
            assert_error(&define(&args), code, message);
        }

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
}
