//! In-backend tests of schema evolution (`cargo pgrx test`): schemas checked
//! on append, every bad definition, upcaster chains against hand-migrated
//! events, renames, every read path, snapshots and projections.
//! Event types are global: each test uses its own (suffix `_eNN`).

use crate::test_harness::*;

/// jsonb's canonical text of a JSON document.
fn canon(json: &str) -> String {
    one_text(&format!("SELECT $j${json}$j$::jsonb::text"))
}

fn append(stream: &str, event_type: &str, data: &str) -> i64 {
    one_i64(&format!(
        "SELECT es.append_event('{stream}', '{event_type}', $d${data}$d$)"
    ))
}

/// "type/version data" of every event of a stream as es.read_stream hands them out.
fn read(stream: &str, raw: bool) -> String {
    one_text(&format!(
        "SELECT string_agg(event_type || '/' || schema_version || ' ' || data::text, ' | ' ORDER BY version)
           FROM es.read_stream('{stream}', raw => {raw})"
    ))
}

#[pgrx::pg_schema]
mod tests {
    use super::*;
    use pgrx::prelude::*;

    const DEPOSIT_SCHEMA: &str = r#"{
        "type": "object",
        "required": ["amount", "currency"],
        "additionalProperties": false,
        "properties": {
            "amount": {"type": "number", "exclusiveMinimum": 0, "maximum": 1000000.00},
            "currency": {"enum": ["EUR", "USD"]},
            "note": {"type": "string", "maxLength": 20}
        }
    }"#;

    #[pg_test]
    fn enforce_rejects_with_the_failing_place_and_writes_nothing() {
        let v = one_i64(&format!(
            "SELECT es.define_event_schema('Deposited_e01', $s${DEPOSIT_SCHEMA}$s$)"
        ));
        assert_eq!(v, 1);
        append(
            "acc_e01",
            "Deposited_e01",
            r#"{"amount": 5, "currency": "EUR"}"#,
        );
        assert_error(
            r#"PERFORM es.append_event('acc_e01', 'Deposited_e01', '{"amount": "x", "currency": "EUR"}')"#,
            "23514",
            r#"data.amount: "x" is not a number"#,
        );
        assert_error(
            r#"PERFORM es.append_event('acc_e01', 'Deposited_e01', '{"amount": 1}')"#,
            "23514",
            "currency",
        );
        assert_error(
            r#"PERFORM es.append_event('acc_e01', 'Deposited_e01', '{"amount": 1000000.001, "currency": "EUR"}')"#,
            "23514",
            "data.amount",
        );
        // exact decimals: 1000000.00 is the maximum itself
        append(
            "acc_e01",
            "Deposited_e01",
            r#"{"amount": 1000000.0000, "currency": "USD"}"#,
        );
        // a batch is all or nothing, the place names the element
        assert_error(
            r#"PERFORM es.append_events('acc_e01', '[{"type": "Deposited_e01", "data": {"amount": 1, "currency": "EUR"}},
                                                    {"type": "Deposited_e01", "data": {"amount": 2, "currency": "GBP"}}]')"#,
            "23514",
            r#"events[1].data.currency: "GBP" is not one of"#,
        );
        assert_eq!(events_in("acc_e01"), 2);
        // other types are not checked
        append("acc_e01", "Other_e01", r#"{"amount": "x"}"#);
        assert_eq!(events_in("acc_e01"), 3);
    }

    #[pg_test]
    fn warn_writes_and_off_does_not_check() {
        run(&format!(
            "SELECT es.define_event_schema('Deposited_e02', $s${DEPOSIT_SCHEMA}$s$, 'warn')"
        ));
        append("acc_e02", "Deposited_e02", r#"{"amount": "x"}"#);
        run(&format!(
            "SELECT es.define_event_schema('Deposited_e02', $s${DEPOSIT_SCHEMA}$s$, 'off')"
        ));
        append("acc_e02", "Deposited_e02", r#"{"amount": "y"}"#);
        assert_eq!(events_in("acc_e02"), 2);
        // es.check_event checks whatever the mode
        assert!(opt_text(
            r#"SELECT es.check_event('Deposited_e02', '{"amount": -1, "currency": "EUR"}')"#
        )
        .unwrap()
        .contains("data.amount"));
        assert_eq!(
            opt_text(
                r#"SELECT es.check_event('Deposited_e02', '{"amount": 1, "currency": "EUR"}')"#
            ),
            None
        );
        assert_eq!(
            one_text("SELECT schema_mode FROM es.event_types WHERE event_type = 'Deposited_e02'"),
            "off"
        );
    }

    #[pg_test]
    fn every_bad_definition_is_rejected_with_22023() {
        let bad_schemas = [
            r#"{"type": "decimal"}"#,
            r#"{"dependentRequired": {}}"#,
            r#"{"required": "amount"}"#,
            r#"{"minLength": -1}"#,
            r#"{"pattern": "("}"#,
            r#"{"$ref": "https://example.com/schema.json"}"#,
            r##"{"$ref": "#/$defs/missing"}"##,
            r#"{"format": "ipv4"}"#,
            r#"{"properties": {"a": 5}}"#,
            r#"[1, 2]"#,
        ];
        for s in bad_schemas {
            assert_error(
                &format!("PERFORM es.define_event_schema('Bad_e03', $s${s}$s$)"),
                "22023",
                "invalid event schema",
            );
        }
        assert_error(
            r#"PERFORM es.define_event_schema('Bad_e03', '{}', 'strict')"#,
            "22023",
            "mode",
        );
        assert_error(
            r#"PERFORM es.define_event_schema('', '{}')"#,
            "22023",
            "event_type",
        );
        let bad_steps = [
            r#"{"rename": "a", "to": "b"}"#,
            r#"[]"#,
            r#"[{"rename": "a"}]"#,
            r#"[{"rename": "a", "to": "a"}]"#,
            r#"[{"set": "a"}]"#,
            r#"[{"set": "a", "value": 1, "from": "$.b"}]"#,
            r#"[{"set": "a", "from": "b"}]"#,
            r#"[{"unset": "a..b"}]"#,
            r#"[{"drop": "a"}]"#,
            r#"[{"unset": "a", "extra": 1}]"#,
        ];
        for s in bad_steps {
            assert_error(
                &format!("PERFORM es.define_upcaster('Bad_e03', 1, $s${s}$s$)"),
                "22023",
                "invalid upcaster steps",
            );
        }
        let ok_steps = r#"'[{"unset": "a"}]'"#;
        assert_error(
            "PERFORM es.define_upcaster('Bad_e03', 1)",
            "22023",
            "exactly one of steps and fn",
        );
        assert_error(
            &format!("PERFORM es.define_upcaster('Bad_e03', 1, {ok_steps}, 'jsonb_strip_nulls(jsonb)'::regprocedure)"),
            "22023",
            "exactly one of steps and fn",
        );
        assert_error(
            "PERFORM es.define_upcaster('Bad_e03', 1, fn => 'jsonb_strip_nulls(jsonb)'::regprocedure)",
            "22023",
            "wrong signature",
        );
        assert_error(
            &format!("PERFORM es.define_upcaster('Bad_e03', 2, {ok_steps})"),
            "22023",
            "between 1 and 1",
        );
        assert_error(
            &format!("PERFORM es.define_upcaster('Bad_e03', 0, {ok_steps})"),
            "22023",
            "between 1 and 1",
        );
        assert_error(
            &format!(
                "PERFORM es.define_upcaster('Bad_e03', 1, {ok_steps}, to_event_type => 'Bad_e03')"
            ),
            "22023",
            "same type",
        );
        // a cycle of renames
        run(&format!(
            "SELECT es.define_upcaster('CycleA_e03', 1, {ok_steps}, to_event_type => 'CycleB_e03')"
        ));
        assert_error(
            &format!("PERFORM es.define_upcaster('CycleB_e03', 1, {ok_steps}, to_event_type => 'CycleA_e03')"),
            "22023",
            "cycle",
        );
        // nothing after a rename
        assert_error(
            &format!("PERFORM es.define_upcaster('CycleA_e03', 2, {ok_steps})"),
            "22023",
            "is read as \"CycleB_e03\"",
        );
        assert_eq!(
            one_i64("SELECT count(*) FROM es.upcasters WHERE event_type LIKE 'Bad_e03'"),
            0
        );
    }

    /// v1 {"amt": n}, v2 {"amount": n, "currency": "EUR"} (steps), v3
    /// {"money": {"amount": n, "currency": c}} (a function).
    fn define_chain(t: &str) {
        run(&format!(
            r#"SELECT es.define_upcaster('{t}', 1, '[{{"rename": "amt", "to": "amount"}},
                                                   {{"set": "currency", "value": "EUR"}}]')"#
        ));
        run(&format!(
            "CREATE FUNCTION tests.up_{t}(data jsonb, metadata jsonb) RETURNS jsonb
             LANGUAGE sql IMMUTABLE
             RETURN jsonb_build_object('money', jsonb_build_object('amount', data->'amount',
                                                                    'currency', data->'currency'))
                    || (data - 'amount' - 'currency')"
        ));
        let v = one_i64(&format!(
            "SELECT es.define_upcaster('{t}', 2, fn => 'tests.up_{t}(jsonb, jsonb)'::regprocedure)"
        ));
        assert_eq!(v, 3);
    }

    #[pg_test]
    fn a_chain_folds_like_hand_migrated_events_at_every_version() {
        let t = "Dep_e04";
        // the reference stream holds the same events written in the newest
        // shape, under a type no upcaster touches
        let reducers = |t: &str| {
            format!(
                r#"{{"{t}": [{{"add": "balance", "from": "$.money.amount"}}, {{"set": "currency", "from": "$.money.currency"}}],
                    "*": [{{"inc": "n"}}]}}"#
            )
        };
        for (st, ty) in [
            ("chain_e04", t.to_owned()),
            ("hand_e04", format!("{t}_hand")),
        ] {
            run(&format!(
                "SELECT es.define_aggregate('{st}', reducers => $r${}$r$, snapshot_every => 0)",
                reducers(&ty)
            ));
        }
        let amounts = ["1.10", "2.20", "3.30", "4.40", "5.50", "6.60"];
        let shapes = |i: usize, a: &str| match i / 2 {
            0 => format!(r#"{{"amt": {a}}}"#),
            1 => format!(r#"{{"amount": {a}, "currency": "EUR"}}"#),
            _ => format!(r#"{{"money": {{"amount": {a}, "currency": "EUR"}}}}"#),
        };
        let stream = "chain_e04-1";
        let hand = "hand_e04-1";
        for (i, a) in amounts.iter().enumerate() {
            if i == 2 {
                run(&format!(
                    r#"SELECT es.define_upcaster('{t}', 1, '[{{"rename": "amt", "to": "amount"}},
                                                           {{"set": "currency", "value": "EUR"}}]')"#
                ));
            }
            if i == 4 {
                run(&format!(
                    "CREATE FUNCTION tests.up_{t}(data jsonb, metadata jsonb) RETURNS jsonb
                     LANGUAGE sql IMMUTABLE
                     RETURN jsonb_build_object('money', jsonb_build_object('amount', data->'amount',
                                                                            'currency', data->'currency'))"
                ));
                run(&format!(
                    "SELECT es.define_upcaster('{t}', 2, fn => 'tests.up_{t}(jsonb, jsonb)'::regprocedure)"
                ));
            }
            run(&format!(
                "SELECT es.append_event('{stream}', '{t}', $d${}$d$, stream_type => 'chain_e04')",
                shapes(i, a)
            ));
            run(&format!(
                "SELECT es.append_event('{hand}', '{t}_hand', $d${}$d$, stream_type => 'hand_e04')",
                shapes(4, a)
            ));
        }
        // stored as written: versions 1, 1, 2, 2, 3, 3
        assert_eq!(
            one_text(&format!(
                "SELECT string_agg(schema_version::text, ',' ORDER BY version) FROM es.events WHERE stream_id = '{stream}'"
            )),
            "1,1,2,2,3,3"
        );
        for at in 1..=6 {
            let got = one_text(&format!(
                "SELECT state::text FROM es.load('{stream}', {at})"
            ));
            let want = one_text(&format!("SELECT state::text FROM es.load('{hand}', {at})"));
            assert_eq!(got, want, "es.load at version {at}");
            let folded = one_text(&format!(
                "SELECT es.fold(e ORDER BY e.version)::text FROM es.events e
                  WHERE e.stream_id = '{stream}' AND e.version <= {at}"
            ));
            assert_eq!(folded, want, "es.fold up to version {at}");
            let columns = one_text(&format!(
                "SELECT es.fold(stream_id, stream_type, version, event_type, data, metadata, schema_version
                                ORDER BY version)::text
                   FROM es.events e WHERE e.stream_id = '{stream}' AND e.version <= {at}"
            ));
            assert_eq!(columns, want, "es.fold's column form up to version {at}");
        }
        // every event reads as the hand-migrated one
        assert_eq!(
            one_text(&format!(
                "SELECT string_agg(data::text, '|' ORDER BY version) FROM es.read_stream('{stream}')"
            )),
            one_text(&format!(
                "SELECT string_agg(data::text, '|' ORDER BY version) FROM es.read_stream('{hand}')"
            ))
        );
        // upcast, then validated against the current version's schema
        run(&format!(
            r#"SELECT es.define_event_schema('{t}', '{{"type": "object", "required": ["money"], "additionalProperties": false,
                 "properties": {{"money": {{"type": "object", "required": ["amount", "currency"],
                    "properties": {{"amount": {{"type": "number", "minimum": 0}}, "currency": {{"enum": ["EUR"]}}}}}}}}}}')"#
        ));
        assert_eq!(
            one_i64(&format!(
                "SELECT count(*) FROM es.events e WHERE e.stream_id = '{stream}'
                    AND es.check_event(e.event_type, e.data) IS NULL"
            )),
            2,
            "only the v3 events match the v3 schema as stored"
        );
        assert_eq!(
            one_i64(&format!(
                "SELECT count(*) FROM es.events e, es.upcast(e) u WHERE e.stream_id = '{stream}'
                    AND es.check_event(u.event_type, u.data) IS NULL"
            )),
            6,
            "every upcast event matches it"
        );
    }

    #[pg_test]
    fn read_paths_hand_out_upcast_events_and_raw_as_stored() {
        let t = "Dep_e05";
        append("rd_e05-1", t, r#"{"amt": 7}"#);
        define_chain(t);
        append(
            "rd_e05-1",
            t,
            r#"{"money": {"amount": 8, "currency": "USD"}}"#,
        );
        assert_eq!(
            read("rd_e05-1", false),
            format!(
                r#"{t}/3 {{"money": {{"amount": 7, "currency": "EUR"}}}} | {t}/3 {{"money": {{"amount": 8, "currency": "USD"}}}}"#
            )
        );
        assert_eq!(
            read("rd_e05-1", true),
            format!(
                r#"{t}/1 {{"amt": 7}} | {t}/3 {{"money": {{"amount": 8, "currency": "USD"}}}}"#
            )
        );
        // es.read_all and es.poll hand out only committed events (the
        // regression and integration tests read them); the filter they use:
        assert_eq!(
            one_text(&format!("SELECT es._stored_types(ARRAY['{t}'])::text")),
            format!("{{{t}}}")
        );
        // the dry run
        assert_eq!(
            one_text(
                "SELECT (es.upcast(e)).data::text FROM es.events e WHERE e.stream_id = 'rd_e05-1' AND e.version = 1"
            ),
            r#"{"money": {"amount": 7, "currency": "EUR"}}"#
        );
        // es.event_types
        assert_eq!(
            one_text(&format!(
                "SELECT current_version || ' ' || events || ' ' || jsonb_array_length(upcasters)
                   FROM es.event_types WHERE event_type = '{t}'"
            )),
            "3 2 2"
        );
    }

    #[pg_test]
    fn a_rename_reads_old_events_as_the_new_type() {
        append("rn_e06-1", "AmountDeposited_e06", r#"{"amount": 1}"#);
        let v = one_i64(
            r#"SELECT es.define_upcaster('AmountDeposited_e06', 1, '[{"set": "currency", "value": "EUR"}]',
                                        to_event_type => 'MoneyDeposited_e06')"#,
        );
        assert_eq!(v, 2);
        // written under the old name after the rename: still read as the new type
        append("rn_e06-1", "AmountDeposited_e06", r#"{"amount": 2}"#);
        append(
            "rn_e06-1",
            "MoneyDeposited_e06",
            r#"{"amount": 3, "currency": "USD"}"#,
        );
        assert_eq!(
            read("rn_e06-1", false),
            r#"MoneyDeposited_e06/1 {"amount": 1, "currency": "EUR"} | MoneyDeposited_e06/1 {"amount": 2, "currency": "EUR"} | MoneyDeposited_e06/1 {"amount": 3, "currency": "USD"}"#
        );
        // a filter names the type as read: stored rows of both types
        assert_eq!(
            one_text("SELECT array_to_string(es._stored_types(ARRAY['MoneyDeposited_e06']), ',')"),
            "MoneyDeposited_e06,AmountDeposited_e06"
        );
        assert_eq!(
            one_text("SELECT array_to_string(es._stored_types(ARRAY['AmountDeposited_e06']), ',')"),
            ""
        );
        assert_eq!(
            one_text(
                "SELECT renamed_to || ' ' || current_version FROM es.event_types WHERE event_type = 'AmountDeposited_e06'"
            ),
            "MoneyDeposited_e06 2"
        );
        // a later upcaster of the new type applies to the renamed events too
        run(
            r#"SELECT es.define_upcaster('MoneyDeposited_e06', 1, '[{"rename": "amount", "to": "value"}]')"#,
        );
        assert_eq!(
            one_text(
                "SELECT string_agg(data->>'value', ',' ORDER BY version) FROM es.read_stream('rn_e06-1')"
            ),
            "1,2,3"
        );
    }

    #[pg_test]
    fn defining_an_upcaster_retires_the_snapshots_it_changes() {
        let t = "Dep_e07";
        run(&format!(
            r#"SELECT es.define_aggregate('snap_e07', reducers => '{{"{t}": [{{"add": "balance", "from": "$.amount"}}]}}',
                                          snapshot_every => 2)"#
        ));
        run(
            r#"SELECT es.define_aggregate('other_e07', reducers => '{"*": [{"inc": "n"}]}', snapshot_every => 2)"#,
        );
        for _ in 0..4 {
            run(&format!(
                r#"SELECT es.append_event('snap_e07-1', '{t}', '{{"amt": 5}}', stream_type => 'snap_e07')"#
            ));
            run("SELECT es.append_event('other_e07-1', 'Tick_e07', '{}', stream_type => 'other_e07')");
        }
        assert_eq!(
            one_text("SELECT state::text FROM es.load('snap_e07-1')"),
            "{}",
            "the stored shape has no amount"
        );
        let rev = |st: &str| {
            one_i64(&format!(
                "SELECT revision FROM es.aggregates WHERE stream_type = '{st}'"
            ))
        };
        let (snap_rev, other_rev) = (rev("snap_e07"), rev("other_e07"));
        run(&format!(
            r#"SELECT es.define_upcaster('{t}', 1, '[{{"rename": "amt", "to": "amount"}}]')"#
        ));
        assert_eq!(rev("snap_e07"), snap_rev + 1);
        assert_eq!(
            rev("other_e07"),
            other_rev,
            "no event of the type: untouched"
        );
        // the old snapshots are not used: the state is folded from upcast events
        assert_eq!(
            one_text("SELECT state::text FROM es.load('snap_e07-1')"),
            r#"{"balance": 20}"#
        );
    }

    #[pg_test]
    fn rebuilding_a_projection_after_an_upcaster_gives_the_new_shape() {
        let t = "Dep_e08";
        run("CREATE TABLE tests.totals_e08 (currency text PRIMARY KEY, total numeric)");
        run(
            "CREATE FUNCTION tests.on_dep_e08(e es.events) RETURNS void LANGUAGE sql AS $$
               INSERT INTO tests.totals_e08 VALUES (coalesce(e.data->>'currency', '?'), (e.data->>'amount')::numeric)
               ON CONFLICT (currency) DO UPDATE SET total = tests.totals_e08.total + EXCLUDED.total $$",
        );
        run(&format!(
            "SELECT es.create_projection('totals_e08', 'tests.on_dep_e08(es.events)'::regprocedure,
                                         'inline', ARRAY['{t}'], NULL,
                                         NULL)"
        ));
        append("pr_e08-1", t, r#"{"amount": 5}"#);
        append("pr_e08-1", t, r#"{"amount": 6}"#);
        assert_eq!(
            one_text("SELECT string_agg(currency || '=' || total, ',') FROM tests.totals_e08"),
            "?=11"
        );
        run(&format!(
            r#"SELECT es.define_upcaster('{t}', 1, '[{{"set": "currency", "value": "EUR"}}]')"#
        ));
        append("pr_e08-1", t, r#"{"amount": 1, "currency": "USD"}"#);
        run("TRUNCATE tests.totals_e08");
        run("SELECT es.rebuild_projection('totals_e08')");
        assert_eq!(
            one_text(
                "SELECT string_agg(currency || '=' || total, ',' ORDER BY currency) FROM tests.totals_e08"
            ),
            "EUR=11,USD=1"
        );
    }

    #[pg_test]
    fn steps_edit_only_what_they_name_and_never_fail_a_read() {
        let t = "Steps_e09";
        let cases = [
            // (stored data, read as)
            (
                r#"{"a": 1, "keep": {"deep": [1, {"x": 2}]}}"#,
                r#"{"b": {"c": 1}, "keep": {"deep": [1, {"x": 2}]}, "copy": {"deep": [1, {"x": 2}]}, "fixed": "v"}"#,
            ),
            // no "a": nothing to move; "keep" missing: nothing to copy
            (r#"{"z": true}"#, r#"{"z": true, "fixed": "v"}"#),
            // "b" is a string: the move into b.c cannot be written, "a" stays
            (
                r#"{"a": 1, "b": "text"}"#,
                r#"{"a": 1, "b": "text", "fixed": "v"}"#,
            ),
            // "gone" is removed, nested
            (
                r#"{"a": 2.50, "n": {"gone": 1, "stay": 2}}"#,
                r#"{"b": {"c": 2.50}, "n": {"stay": 2}, "fixed": "v"}"#,
            ),
            // nulls, booleans, long strings and numbers of every size keep their values
            (
                r#"{"a": null, "f": false, "t": true, "n": 1.5e3, "big": 123456789012345678901234567890.123, "s": "a longer string, with ünïcödé"}"#,
                r#"{"b": {"c": null}, "f": false, "t": true, "n": 1500, "big": 123456789012345678901234567890.123, "s": "a longer string, with ünïcödé", "fixed": "v"}"#,
            ),
            // data that is not an object: only a whole-value step could change it
            (r#"[1, 2]"#, r#"[1, 2]"#),
            (r#""scalar""#, r#""scalar""#),
        ];
        // more pairs than jsonb's offset stride (32 entries): offsets stored every 32nd
        let wide: Vec<String> = (0..40).map(|k| format!(r#""k{k:02}": "v{k}""#)).collect();
        let wide_in = format!("{{{}, \"a\": {{\"x\": [1, 2]}}}}", wide.join(", "));
        let wide_out = format!(
            "{{{}, \"b\": {{\"c\": {{\"x\": [1, 2]}}}}, \"fixed\": \"v\"}}",
            wide.join(", ")
        );
        let mut cases: Vec<(&str, &str)> = cases.to_vec();
        cases.push((&wide_in, &wide_out));
        for (i, (data, _)) in cases.iter().enumerate() {
            run(&format!(
                "SELECT es.append_event('st_e09-{i}', '{t}', $d${data}$d$)"
            ));
        }
        run(&format!(
            r#"SELECT es.define_upcaster('{t}', 1, '[{{"rename": "a", "to": "b.c"}},
                                                  {{"set": "copy", "from": "$.keep"}},
                                                  {{"unset": "n.gone"}},
                                                  {{"set": "fixed", "value": "v"}}]')"#
        ));
        for (i, (_, want)) in cases.iter().enumerate() {
            assert_eq!(
                one_text(&format!(
                    "SELECT data::text FROM es.read_stream('st_e09-{i}')"
                )),
                canon(want),
                "case {i}"
            );
        }
    }
}
