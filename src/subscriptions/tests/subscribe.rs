//! In-backend tests of subscriptions: es.subscribe.

// pgrx-tests calls every test as "tests".<name>(): the module is the SQL schema `tests`.
#[pgrx::pg_schema]
mod tests {
    // The helpers of subscriptions::tests, and through them the harness's.
    use super::super::*;

    // ---- subscribe -------------------------------------------------------

    #[pg_test]
    fn subscribe_creates_a_subscription_at_from_position() {
        run("SELECT es.subscribe('s01-all')");
        run("SELECT es.subscribe('s01-late', ARRAY['A'], ARRAY['t'], from_position => 42)");
        assert_eq!(
            one_text(
                "SELECT concat_ws('|', consumer, event_types, stream_types, position,
                                  owner = current_user::regrole, created_at = now(), updated_at = now())
                   FROM es.subscriptions WHERE consumer = 's01-all'"
            ),
            "s01-all|0|t|t|t"
        );
        assert_eq!(
            one_text(
                "SELECT concat_ws('|', event_types, stream_types, position)
                   FROM es.subscriptions WHERE consumer = 's01-late'"
            ),
            "{A}|{t}|42"
        );
    }

    #[pg_test]
    fn subscribing_again_with_the_same_filters_keeps_the_checkpoint() {
        history(10_000, &[("s02-1", "A"), ("s02-1", "B")]);
        run("SELECT es.subscribe('s02-c', ARRAY['B', 'A'], ARRAY['s02'], 10000)");
        // stored as a set: sorted, no repeats
        assert_eq!(
            one_text("SELECT event_types::text FROM es.subscriptions WHERE consumer = 's02-c'"),
            "{A,B}"
        );
        run("SELECT es.ack('s02-c', 10001)");
        // a restarting service subscribes again: same set of types in another order
        run("SELECT es.subscribe('s02-c', ARRAY['A', 'B', 'A'], ARRAY['s02'])");
        run("SELECT es.subscribe('s02-c', ARRAY['A', 'B'], ARRAY['s02'], from_position => 0)");
        assert_eq!(position_of("s02-c"), 10001);
        assert_eq!(polled("es.poll('s02-c')"), "s02-1/2");
        assert_eq!(subscriptions_named("s02-%"), 1);
    }

    #[pg_test]
    fn subscribing_again_with_other_filters_is_a_duplicate() {
        run("SELECT es.subscribe('s03-c', ARRAY['A'])");
        run("SELECT es.subscribe('s03-n')");
        for stmt in [
            "PERFORM es.subscribe('s03-c', ARRAY['A', 'B'])",
            "PERFORM es.subscribe('s03-c')",
            "PERFORM es.subscribe('s03-c', ARRAY['A'], ARRAY['x'])",
            "PERFORM es.subscribe('s03-n', ARRAY['A'])",
            "PERFORM es.subscribe('s03-n', stream_types => ARRAY['x'])",
        ] {
            assert_error(stmt, "42710", "is already subscribed with other filters");
            assert!(hint_of(stmt).contains("es.unsubscribe"), "{stmt}");
        }
        assert_error(
            "PERFORM es.subscribe('s03-c', ARRAY['B'])",
            "42710",
            "consumer \"s03-c\" is already subscribed with other filters (event_types {A}, stream_types NULL)",
        );
        assert_eq!(
            one_text("SELECT concat_ws('|', event_types, stream_types) FROM es.subscriptions WHERE consumer = 's03-c'"),
            "{A}"
        );
    }

    #[pg_test]
    fn subscribe_rejects_bad_input_and_writes_nothing() {
        let long = "x".repeat(201);
        let cases: Vec<(String, &str, &str)> = vec![
            (
                "es.subscribe(NULL)".into(),
                "22004",
                "consumer must not be NULL",
            ),
            (
                "es.subscribe('')".into(),
                "22023",
                "consumer must not be empty",
            ),
            (
                format!("es.subscribe('s04-{long}')"),
                "22001",
                "consumer is 205 characters long; at most 200 are allowed",
            ),
            (
                "es.subscribe('s04-c', from_position => -1)".into(),
                "22023",
                "from_position must not be negative, got -1",
            ),
            (
                "es.subscribe('s04-c', from_position => NULL)".into(),
                "22004",
                "from_position must not be NULL",
            ),
            (
                "es.subscribe('s04-c', from_position => es.read_horizon() + (1::bigint << 40))"
                    .into(),
                "22023",
                "is at or above the read horizon",
            ),
            (
                "es.subscribe('s04-c', ARRAY[]::text[])".into(),
                "22023",
                "event_types must not be an empty array",
            ),
            (
                "es.subscribe('s04-c', stream_types => '{}')".into(),
                "22023",
                "stream_types must not be an empty array",
            ),
            (
                "es.subscribe('s04-c', ARRAY['A', NULL])".into(),
                "22004",
                "event_types must not contain NULL",
            ),
            (
                "es.subscribe('s04-c', NULL, ARRAY[NULL]::text[])".into(),
                "22004",
                "stream_types must not contain NULL",
            ),
            (
                "es.subscribe('s04-c', ARRAY['A', ''])".into(),
                "22023",
                "event_types must not contain an empty string",
            ),
            (
                "es.subscribe('s04-c', ARRAY[['A'], ['B']])".into(),
                "22023",
                "event_types must be a one-dimensional array",
            ),
        ];
        for (call, state, message) in &cases {
            assert_error(&format!("PERFORM {call}"), state, message);
        }
        assert_eq!(subscriptions_named("s04-%"), 0);
        // 200 characters is fine, and counts characters, not bytes
        let ok = "é".repeat(196);
        run(&format!("SELECT es.subscribe('s04-{ok}')"));
        assert_eq!(subscriptions_named("s04-%"), 1);
        assert_eq!(
            hint_of("PERFORM es.subscribe('s04-c', ARRAY[]::text[])"),
            "Pass NULL to match every type."
        );
    }
}
