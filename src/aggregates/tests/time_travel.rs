//! In-backend tests of aggregates: es.load at a version, es.load_at.

// pgrx-tests calls every test as "tests".<name>(): the module is the SQL schema `tests`.
#[pgrx::pg_schema]
mod tests {
    // The helpers of aggregates::tests, and through them the harness's.
    use super::super::*;
    use pgrx::prelude::*;

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
}
