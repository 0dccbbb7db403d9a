//! In-backend tests of aggregates: the es.fold aggregate against es.load.

// pgrx-tests calls every test as "tests".<name>(): the module is the SQL schema `tests`.
#[pgrx::pg_schema]
mod tests {
    // The helpers of aggregates::tests, and through them the harness's.
    use super::super::*;
    use pgrx::prelude::*;

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

    const COLUMNS: &str =
        "stream_id, stream_type, version, event_type, data, metadata, schema_version";

    #[pg_test]
    fn fold_column_form_matches_the_row_form() {
        define_reducers("fc_a21", BANK, "{}", 2);
        for s in 1..=3 {
            append(&format!("fc_a21-{s}"), "AccountOpened", r#"{"owner": "A"}"#);
            for i in 0..(s * 3) {
                append(
                    &format!("fc_a21-{s}"),
                    "MoneyDeposited",
                    &format!(r#"{{"amount": {i}.25}}"#),
                );
            }
            append(
                &format!("fc_a21-{s}"),
                "MoneyWithdrawn",
                r#"{"amount": 0.5}"#,
            );
        }
        // grouped, with and without ORDER BY (an ordered subquery), against
        // the row form and es.load
        assert!(one_bool(&format!(
            "SELECT count(*) = 3 AND bool_and(c.state = r.state AND c.state = l.state AND u.state = l.state)
               FROM (SELECT stream_id, es.fold({COLUMNS} ORDER BY version) state
                       FROM es.events WHERE stream_type = 'fc_a21' GROUP BY stream_id) c
               JOIN (SELECT stream_id, es.fold(e ORDER BY version) state
                       FROM es.events e WHERE stream_type = 'fc_a21' GROUP BY stream_id) r USING (stream_id)
               JOIN (SELECT stream_id, es.fold({COLUMNS}) state
                       FROM (SELECT * FROM es.events WHERE stream_type = 'fc_a21'
                              ORDER BY stream_id, version) o GROUP BY stream_id) u USING (stream_id),
                    LATERAL es.load(c.stream_id) l"
        )));
        assert_eq!(
            one_text(&format!(
                "SELECT es.fold({COLUMNS})->>'balance' FROM es.events WHERE stream_id = 'fc_a21-1'"
            )),
            "3.25"
        );
        // no rows, or only a LEFT JOIN's missing side: NULL
        assert!(one_bool(&format!(
            "SELECT es.fold({COLUMNS}) IS NULL FROM es.events WHERE stream_id = 'fc_a21-none'"
        )));
        assert!(one_bool(
            "SELECT es.fold(e.stream_id, e.stream_type, e.version, e.event_type, e.data, e.metadata, e.schema_version) IS NULL
               FROM (VALUES (1)) v LEFT JOIN es.events e ON e.stream_id = 'fc_a21-none'"
        ));
        // rows out of version order fail rather than fold wrongly
        assert_error(
            &format!("PERFORM es.fold({COLUMNS} ORDER BY version DESC) FROM es.events WHERE stream_id = 'fc_a21-2'"),
            "22000",
            "not in version order",
        );
        // a NULL column of an event
        assert_error(
            "PERFORM es.fold(stream_id, stream_type, version, event_type, data, NULL, schema_version)
               FROM es.events WHERE stream_id = 'fc_a21-2'",
            "22004",
            "an event's metadata must not be NULL",
        );
        // two stream types in one fold
        define_reducers("fd_a21", BANK, "{}", 0);
        append("fd_a21-1", "MoneyDeposited", r#"{"amount": 1}"#);
        assert_error(
            &format!(
                "PERFORM es.fold({COLUMNS} ORDER BY global_position) FROM es.events
                       WHERE stream_id IN ('fc_a21-1', 'fd_a21-1')"
            ),
            "22023",
            "cannot fold events of stream types",
        );
    }

    #[pg_test]
    fn fold_column_form_refuses_what_needs_whole_rows() {
        // reducers reading a column the form is not given
        run(
            r#"SELECT es.define_aggregate('fe_a21', reducers => '{"E": [{"set": "at", "from": "$recorded_at"}]}')"#,
        );
        run(
            r#"SELECT es.define_aggregate('ff_a21', reducers => '{"E": [{"set": "x", "from": {"id": "$event_id"}}]}')"#,
        );
        append("fe_a21-1", "E", "{}");
        append("ff_a21-1", "E", "{}");
        for (stream, source) in [("fe_a21-1", "$recorded_at"), ("ff_a21-1", "$event_id")] {
            assert_error(
                &format!("PERFORM es.fold({COLUMNS}) FROM es.events WHERE stream_id = '{stream}'"),
                "0A000",
                &format!("its reducers read \"{source}\""),
            );
            // the row form folds it
            assert!(one_bool(&format!(
                "SELECT es.fold(e) IS NOT NULL FROM es.events e WHERE stream_id = '{stream}'"
            )));
        }
        // a fold function is handed rows
        run(
            "CREATE FUNCTION public.es_a21_fold(s jsonb, e es.events) RETURNS jsonb
             LANGUAGE sql AS $$ SELECT s || jsonb_build_object('v', e.version) $$",
        );
        run("SELECT es.define_aggregate('fg_a21', 'public.es_a21_fold(jsonb, es.events)')");
        append("fg_a21-1", "E", "{}");
        assert_error(
            &format!("PERFORM es.fold({COLUMNS}) FROM es.events WHERE stream_id = 'fg_a21-1'"),
            "0A000",
            "fold function",
        );
    }
}
