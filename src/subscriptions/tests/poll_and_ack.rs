//! In-backend tests of subscriptions: es.poll and es.ack.

// pgrx-tests calls every test as "tests".<name>(): the module is the SQL schema `tests`.
#[pgrx::pg_schema]
mod tests {
    // The helpers of subscriptions::tests, and through them the harness's.
    use super::super::*;

    // ---- poll and ack -------------------------------------------------------

    #[pg_test]
    fn poll_returns_matching_events_after_the_checkpoint_in_order() {
        history(
            20_000,
            &[
                ("s05a-1", "Opened"),
                ("s05b-1", "Created"),
                ("s05a-1", "Paid"),
                ("s05a-2", "Opened"),
                ("s05b-1", "Paid"),
            ],
        );
        run("SELECT es.subscribe('s05-all', from_position => 20000)");
        run("SELECT es.subscribe('s05-opened', ARRAY['Opened'], from_position => 20000)");
        run("SELECT es.subscribe('s05-b', stream_types => ARRAY['s05b'], from_position => 20000)");
        run("SELECT es.subscribe('s05-paid-a', ARRAY['Paid', 'Nothing'], ARRAY['s05a', 's05z'], 20000)");
        assert_eq!(
            polled("es.poll('s05-all')"),
            "s05a-1/1 s05b-1/1 s05a-1/2 s05a-2/1 s05b-1/2"
        );
        assert_eq!(polled("es.poll('s05-all', 2)"), "s05a-1/1 s05b-1/1");
        assert_eq!(polled("es.poll('s05-all', max_count => 1)"), "s05a-1/1");
        assert_eq!(polled("es.poll('s05-opened')"), "s05a-1/1 s05a-2/1");
        assert_eq!(polled("es.poll('s05-b')"), "s05b-1/1 s05b-1/2");
        assert_eq!(polled("es.poll('s05-paid-a')"), "s05a-1/2");
        // every column of es.events comes back
        assert!(one_bool(
            "SELECT p = e FROM es.poll('s05-all', 1) p JOIN es.events e USING (global_position)"
        ));
        // from_position: events after it
        run("SELECT es.subscribe('s05-from3', from_position => 20003)");
        assert_eq!(polled("es.poll('s05-from3')"), "s05a-2/1 s05b-1/2");
    }

    #[pg_test]
    fn poll_does_not_move_the_checkpoint_ack_does() {
        let p = history(30_000, &[("s06-1", "A"), ("s06-1", "B"), ("s06-2", "A")]);
        run("SELECT es.subscribe('s06-c', from_position => 30000)");
        assert_eq!(polled("es.poll('s06-c', 2)"), "s06-1/1 s06-1/2");
        // polling again without an ack hands out the same events (at-least-once)
        assert_eq!(polled("es.poll('s06-c', 2)"), "s06-1/1 s06-1/2");
        assert_eq!(position_of("s06-c"), 30000);
        run(&format!("SELECT es.ack('s06-c', {})", p[1]));
        assert_eq!(position_of("s06-c"), p[1]);
        assert_eq!(polled("es.poll('s06-c', 2)"), "s06-2/1");
        run(&format!("SELECT es.ack('s06-c', {})", p[2]));
        assert_eq!(polled("es.poll('s06-c')"), "");
        // acking backwards, or the same position again, changes nothing
        run(&format!("SELECT es.ack('s06-c', {})", p[0]));
        run(&format!("SELECT es.ack('s06-c', {})", p[2]));
        run("SELECT es.ack('s06-c', 0)");
        assert_eq!(position_of("s06-c"), p[2]);
        // any position below the horizon may be acked, an event's or not (the
        // horizon only moves up, as other transactions end)
        let below = one_i64("SELECT es.read_horizon() - 1");
        run(&format!("SELECT es.ack('s06-c', {below})"));
        assert_eq!(position_of("s06-c"), below);
    }

    #[pg_test]
    fn poll_holds_back_events_of_open_transactions() {
        history(40_000, &[("s07-1", "A")]);
        run("SELECT es.subscribe('s07-c', stream_types => ARRAY['s07'], from_position => 40000)");
        // appended in this (still open) transaction: at or above the horizon
        run("SELECT es.append_event('s07-1', 'B', '{}')");
        run("SELECT es.append_event('s07-2', 'A', '{}')");
        assert_eq!(events_in("s07-1"), 2);
        assert_eq!(polled("es.poll('s07-c')"), "s07-1/1");
        assert!(one_bool(
            "SELECT count(*) = 2 AND min(global_position) >= es.read_horizon() FROM es.events
              WHERE (stream_id, version) IN (('s07-1', 2), ('s07-2', 1))"
        ));
        // nor can they be acked: that would skip them
        assert_error(
            "PERFORM es.ack('s07-c', (SELECT max(global_position) FROM es.events WHERE stream_id = 's07-2'))",
            "22023",
            "is at or above the read horizon",
        );
        assert_eq!(position_of("s07-c"), 40000);
    }

    #[pg_test]
    fn poll_and_ack_reject_bad_input() {
        run("SELECT es.subscribe('s08-c', from_position => 50000)");
        for (stmt, state, message) in [
            (
                "PERFORM es.poll('s08-nope')",
                "42704",
                "consumer \"s08-nope\" does not exist",
            ),
            (
                "PERFORM es.poll(NULL)",
                "22004",
                "consumer must not be NULL",
            ),
            ("PERFORM es.poll('')", "22023", "consumer must not be empty"),
            (
                "PERFORM es.poll('s08-c', 0)",
                "22023",
                "max_count must be a positive number of events, got 0",
            ),
            ("PERFORM es.poll('s08-c', -5)", "22023", "got -5"),
            ("PERFORM es.poll('s08-c', NULL)", "22023", "got NULL"),
            (
                "PERFORM es.ack('s08-nope', 1)",
                "42704",
                "consumer \"s08-nope\" does not exist",
            ),
            (
                "PERFORM es.ack(NULL, 1)",
                "22004",
                "consumer must not be NULL",
            ),
            (
                "PERFORM es.ack('s08-c', NULL)",
                "22004",
                "global_position must not be NULL",
            ),
            (
                "PERFORM es.ack('s08-c', -1)",
                "22023",
                "global_position must not be negative",
            ),
            (
                "PERFORM es.ack('s08-c', es.read_horizon() + (1::bigint << 40))",
                "22023",
                "at or above the read horizon",
            ),
            (
                "PERFORM es.ack('s08-c', 9223372036854775807)",
                "22023",
                "at or above the read horizon",
            ),
            (
                "PERFORM es.unsubscribe('s08-nope')",
                "42704",
                "consumer \"s08-nope\" does not exist",
            ),
            (
                "PERFORM es.unsubscribe(NULL)",
                "22004",
                "consumer must not be NULL",
            ),
        ] {
            assert_error(stmt, state, message);
        }
        assert_eq!(
            hint_of("PERFORM es.poll('s08-nope')"),
            "Create it with es.subscribe."
        );
        assert_eq!(position_of("s08-c"), 50000);
        assert_eq!(subscriptions_named("s08-%"), 1);
    }

    #[pg_test]
    fn unsubscribe_deletes_the_subscription_and_its_members() {
        history(60_000, &[("s09-1", "A"), ("s09-2", "A")]);
        run("SELECT es.subscribe('s09-c', from_position => 60000)");
        run("SELECT es.ack('s09-c', 60001, 0, 2)");
        assert_eq!(
            one_i64("SELECT count(*) FROM es.subscription_members WHERE consumer = 's09-c'"),
            1
        );
        run("SELECT es.unsubscribe('s09-c')");
        assert_eq!(subscriptions_named("s09-%"), 0);
        assert_eq!(
            one_i64("SELECT count(*) FROM es.subscription_members WHERE consumer = 's09-c'"),
            0
        );
        assert_error("PERFORM es.unsubscribe('s09-c')", "42704", "does not exist");
        assert_error("PERFORM es.poll('s09-c')", "42704", "does not exist");
        // subscribing again starts afresh, with other filters if wanted
        run("SELECT es.subscribe('s09-c', ARRAY['A'], from_position => 60000)");
        assert_eq!(polled("es.poll('s09-c')"), "s09-1/1 s09-2/1");
    }
}
