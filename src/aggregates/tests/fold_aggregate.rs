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
}
