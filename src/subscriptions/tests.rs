//! In-backend tests of subscriptions (`cargo pgrx test`): es.subscribe,
//! es.poll, es.ack, es.unsubscribe, consumer groups, es.subscription_status,
//! row-level security. Each test runs in its own rolled-back transaction, in
//! parallel with the others: every test uses its own consumers (`sNN-...`),
//! streams and event positions.
//!
//! Events appended in the test's own transaction lie above the read horizon
//! (the transaction is still open), so es.poll rightly holds them back. To
//! have events that earlier, committed transactions left, `history` writes
//! rows straight into es.events at small positions (base + 1, base + 2, ...):
//! real positions are at least 3 << 20 and the horizon lies above them all.

// pgrx-tests calls every test as "tests".<name>(): this module is schema `tests` too.
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    use crate::test_harness::*;

    /// Writes events at positions base+1, base+2, ... as committed history,
    /// with their streams' rows (streams must be new).
    /// Each item is (stream_id, event_type); the stream type is the part of
    /// stream_id before its first '-'. Returns their positions.
    fn history(base: i64, events: &[(&str, &str)]) -> Vec<i64> {
        let mut versions = std::collections::HashMap::new();
        let mut rows = Vec::new();
        let mut positions = Vec::new();
        for (i, (stream, event_type)) in events.iter().enumerate() {
            let version = versions.entry(*stream).or_insert(0_i64);
            *version += 1;
            let position = base + 1 + i as i64;
            let stream_type = stream.split('-').next().unwrap();
            rows.push(format!(
                "({position}, '{stream}', '{stream_type}', {version}, '{event_type}', '{{\"i\": {i}}}', es.uuid_generate_v7())"
            ));
            positions.push(position);
        }
        run(&format!(
            "INSERT INTO es.events (global_position, stream_id, stream_type, version, event_type, data, event_id)
             VALUES {}",
            rows.join(", ")
        ));
        // and the streams' rows, so that appends after them get the next version
        run(&format!(
            "INSERT INTO es.streams (stream_id, stream_type, version)
             SELECT stream_id, min(stream_type), max(version) FROM es.events
              WHERE global_position BETWEEN {} AND {} GROUP BY stream_id",
            base + 1,
            base + events.len() as i64
        ));
        positions
    }

    /// "stream/version" of each event a poll returns, in the order returned.
    fn polled(call: &str) -> String {
        one_text(&format!(
            "SELECT coalesce(string_agg(p.stream_id || '/' || p.version, ' '), '') FROM {call} p"
        ))
    }

    fn position_of(consumer: &str) -> i64 {
        one_i64(&format!(
            "SELECT position FROM es.subscriptions WHERE consumer = '{consumer}'"
        ))
    }

    fn subscriptions_named(pattern: &str) -> i64 {
        one_i64(&format!(
            "SELECT count(*) FROM es.subscriptions WHERE consumer LIKE '{pattern}'"
        ))
    }

    /// The HINT of the error a PL/pgSQL statement raises ("" if none).
    fn hint_of(stmt: &str) -> String {
        run(&format!(
            "DO $do$ DECLARE h text; BEGIN {stmt}; PERFORM set_config('es_test.hint', '', true);
             EXCEPTION WHEN OTHERS THEN
               GET STACKED DIAGNOSTICS h = PG_EXCEPTION_HINT;
               PERFORM set_config('es_test.hint', h, true); END $do$"
        ));
        one_text("SELECT current_setting('es_test.hint')")
    }

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

    // ---- consumer groups -----------------------------------------------------

    /// For a group of `size`: each member's poll, and whether together they
    /// are exactly the subscription's events, each stream wholly in the member
    /// its hash names, in global order within the member.
    fn check_group(consumer: &str, size: i32) {
        let all = polled(&format!("es.poll('{consumer}', 1000)"));
        let mut union = Vec::new();
        for member in 0..size {
            let got = polled(&format!("es.poll('{consumer}', 1000, {member}, {size})"));
            for ev in got.split(' ').filter(|s| !s.is_empty()) {
                let stream = ev.split('/').next().unwrap();
                assert_eq!(
                    one_i64(&format!(
                        "SELECT ((hashtext('{stream}') & 2147483647) % {size})::bigint"
                    )),
                    i64::from(member),
                    "{ev} polled by member {member} of {size}"
                );
                union.push(ev.to_owned());
            }
            assert!(one_bool(&format!(
                "SELECT coalesce(bool_and(global_position > prev), true) FROM (
                   SELECT global_position, lag(global_position) OVER () AS prev
                     FROM es.poll('{consumer}', 1000, {member}, {size})) x WHERE prev IS NOT NULL"
            )));
        }
        let mut expected: Vec<String> = all.split(' ').map(str::to_owned).collect();
        expected.sort();
        union.sort();
        assert_eq!(union, expected, "group of {size}");
    }

    #[pg_test]
    fn a_group_splits_streams_among_its_members_disjointly() {
        let mut evs = Vec::new();
        let names: Vec<String> = (0..12).map(|i| format!("s10-{i}")).collect();
        for round in 0..3 {
            for name in &names {
                evs.push((name.as_str(), if round == 0 { "Opened" } else { "Changed" }));
            }
        }
        history(70_000, &evs);
        run("SELECT es.subscribe('s10-c', from_position => 70000)");
        assert_eq!(polled("es.poll('s10-c', 1000)").split(' ').count(), 36);
        for size in 1..=4 {
            check_group("s10-c", size);
        }
        // the streams really are spread: with 3 members none gets them all
        assert!(one_bool(
            "SELECT count(DISTINCT (hashtext(stream_id) & 2147483647) % 3) > 1 FROM es.events WHERE stream_id LIKE 's10-%'"
        ));
        // a group of 1 is the whole subscription
        assert_eq!(
            polled("es.poll('s10-c', 1000, 0, 1)"),
            polled("es.poll('s10-c', 1000)")
        );
        // filters apply to members too
        run("SELECT es.subscribe('s10-opened', ARRAY['Opened'], from_position => 70000)");
        check_group("s10-opened", 3);
        assert_eq!(
            one_i64("SELECT (SELECT count(*) FROM es.poll('s10-opened', 1000, 0, 2)) + (SELECT count(*) FROM es.poll('s10-opened', 1000, 1, 2))"),
            12
        );
        // max_count per member
        assert!(one_bool(
            "SELECT count(*) <= 2 FROM es.poll('s10-c', 2, 0, 3)"
        ));
    }

    #[pg_test]
    fn member_acks_move_member_checkpoints_and_the_low_water_mark() {
        // two streams, one per member of a group of 2
        let (s0, s1) = pick_streams_for_members("s11", 2);
        let p = history(
            80_000,
            &[(&s0, "A"), (&s1, "A"), (&s0, "B"), (&s1, "B"), (&s0, "C")],
        );
        run("SELECT es.subscribe('s11-c', from_position => 80000)");
        assert_eq!(
            polled("es.poll('s11-c', 10, 0, 2)"),
            format!("{s0}/1 {s0}/2 {s0}/3")
        );
        assert_eq!(
            polled("es.poll('s11-c', 10, 1, 2)"),
            format!("{s1}/1 {s1}/2")
        );
        // member 0 acks its second event: its own checkpoint moves, the
        // subscription's waits for member 1
        run(&format!("SELECT es.ack('s11-c', {}, 0, 2)", p[2]));
        assert_eq!(polled("es.poll('s11-c', 10, 0, 2)"), format!("{s0}/3"));
        assert_eq!(
            polled("es.poll('s11-c', 10, 1, 2)"),
            format!("{s1}/1 {s1}/2")
        );
        assert_eq!(position_of("s11-c"), 80000);
        assert_eq!(
            one_text("SELECT string_agg(concat_ws(':', group_size, member, position, owner = current_user::regrole), ',') FROM es.subscription_members WHERE consumer = 's11-c'"),
            format!("2:0:{}:t", p[2])
        );
        // member 1 acks its first: now both have checkpoints, the lower one is the mark
        run(&format!("SELECT es.ack('s11-c', {}, 1, 2)", p[1]));
        assert_eq!(position_of("s11-c"), p[1]);
        run(&format!("SELECT es.ack('s11-c', {}, 1, 2)", p[3]));
        assert_eq!(position_of("s11-c"), p[2]);
        assert_eq!(polled("es.poll('s11-c', 10, 1, 2)"), "");
        // acking a member backwards changes nothing
        run(&format!("SELECT es.ack('s11-c', {}, 1, 2)", p[0]));
        assert_eq!(
            one_i64("SELECT position FROM es.subscription_members WHERE consumer = 's11-c' AND member = 1"),
            p[3]
        );
        assert_eq!(position_of("s11-c"), p[2]);
        // regrouping to 3 members starts at the mark: nothing is lost, events
        // after it may be seen again (at-least-once)
        let three: Vec<String> = (0..3)
            .map(|m| polled(&format!("es.poll('s11-c', 10, {m}, 3)")))
            .collect();
        let mut seen: Vec<&str> = three
            .iter()
            .flat_map(|s| s.split(' '))
            .filter(|s| !s.is_empty())
            .collect();
        seen.sort();
        let mut want = vec![format!("{s0}/3"), format!("{s1}/2")];
        want.sort();
        assert_eq!(seen, want);
        // the plain poll goes from the mark as well
        assert_eq!(polled("es.poll('s11-c')"), format!("{s1}/2 {s0}/3"));
    }

    /// Two stream ids with the given prefix that fall to members 0 and 1 of a
    /// group of `size`.
    fn pick_streams_for_members(prefix: &str, size: i32) -> (String, String) {
        let pick = |member: i32| {
            one_text(&format!(
                "SELECT '{prefix}-' || i FROM generate_series(1, 1000) i
                  WHERE (hashtext('{prefix}-' || i) & 2147483647) % {size} = {member}
                  ORDER BY i LIMIT 1"
            ))
        };
        (pick(0), pick(1))
    }

    #[pg_test]
    fn a_member_starts_at_the_later_of_its_own_and_the_subscriptions_checkpoint() {
        let (s0, _) = pick_streams_for_members("s12", 2);
        let p = history(90_000, &[(&s0, "A"), (&s0, "B"), (&s0, "C")]);
        run("SELECT es.subscribe('s12-c', from_position => 90000)");
        // no member checkpoint yet: from the subscription's
        run(&format!("SELECT es.ack('s12-c', {})", p[0]));
        assert_eq!(
            polled("es.poll('s12-c', 10, 0, 2)"),
            format!("{s0}/2 {s0}/3")
        );
        // a member checkpoint older than the subscription's (a whole-subscription ack)
        run(&format!("SELECT es.ack('s12-c', {}, 0, 2)", p[0]));
        run(&format!("SELECT es.ack('s12-c', {})", p[1]));
        assert_eq!(polled("es.poll('s12-c', 10, 0, 2)"), format!("{s0}/3"));
        // a new member row never starts below the subscription's checkpoint
        run(&format!("SELECT es.ack('s12-c', {}, 1, 2)", p[0]));
        assert_eq!(
            one_i64("SELECT position FROM es.subscription_members WHERE consumer = 's12-c' AND member = 1"),
            p[1]
        );
    }

    #[pg_test]
    fn group_arguments_are_checked() {
        run("SELECT es.subscribe('s13-c', from_position => 100000)");
        for (stmt, state, message) in [
            (
                "PERFORM es.poll('s13-c', 10, 2, 2)",
                "22023",
                "member must be between 0 and 1 for a group of size 2, got 2",
            ),
            ("PERFORM es.poll('s13-c', 10, -1, 2)", "22023", "got -1"),
            (
                "PERFORM es.poll('s13-c', 10, 0, 0)",
                "22023",
                "size must be at least 1, got 0",
            ),
            (
                "PERFORM es.poll('s13-c', 10, 0, -3)",
                "22023",
                "size must be at least 1",
            ),
            (
                "PERFORM es.poll('s13-c', 10, NULL, 2)",
                "22004",
                "member and size must not be NULL",
            ),
            (
                "PERFORM es.poll('s13-c', 10, 0, NULL)",
                "22004",
                "member and size must not be NULL",
            ),
            (
                "PERFORM es.poll('s13-c', 0, 0, 2)",
                "22023",
                "max_count must be a positive number",
            ),
            (
                "PERFORM es.poll('s13-nope', 10, 0, 2)",
                "42704",
                "consumer \"s13-nope\" does not exist",
            ),
            (
                "PERFORM es.ack('s13-c', 100000, 2, 2)",
                "22023",
                "member must be between 0 and 1",
            ),
            (
                "PERFORM es.ack('s13-c', 100000, 0, 0)",
                "22023",
                "size must be at least 1",
            ),
            (
                "PERFORM es.ack('s13-c', 100000, NULL, 1)",
                "22004",
                "must not be NULL",
            ),
            (
                "PERFORM es.ack('s13-c', -1, 0, 1)",
                "22023",
                "global_position must not be negative",
            ),
            (
                "PERFORM es.ack('s13-c', es.read_horizon() + (1::bigint << 40), 0, 1)",
                "22023",
                "read horizon",
            ),
            (
                "PERFORM es.ack('s13-nope', 1, 0, 1)",
                "42704",
                "consumer \"s13-nope\" does not exist",
            ),
        ] {
            assert_error(stmt, state, message);
        }
        assert_eq!(
            one_i64("SELECT count(*) FROM es.subscription_members WHERE consumer LIKE 's13-%'"),
            0
        );
        assert_eq!(position_of("s13-c"), 100000);
    }

    // ---- status, privileges, dump -----------------------------------------

    #[pg_test]
    fn subscription_status_shows_position_and_lag() {
        let p = history(
            110_000,
            &[
                ("s14a-1", "A"),
                ("s14b-1", "A"),
                ("s14a-1", "B"),
                ("s14a-2", "A"),
            ],
        );
        run("SELECT es.subscribe('s14-a', stream_types => ARRAY['s14a'], from_position => 110000)");
        run("SELECT es.subscribe('s14-ab', ARRAY['A'], ARRAY['s14a', 's14b'], 110000)");
        run("SELECT es.append_event('s14a-3', 'A', '{}')"); // held back: not lag yet
        assert_eq!(
            one_text("SELECT string_agg(consumer || '=' || lag, ' ' ORDER BY consumer) FROM es.subscription_status WHERE consumer LIKE 's14-%'"),
            "s14-a=3 s14-ab=3"
        );
        run(&format!("SELECT es.ack('s14-a', {})", p[2]));
        assert_eq!(
            one_text("SELECT concat_ws('|', position, lag, stream_types) FROM es.subscription_status WHERE consumer = 's14-a'"),
            format!("{}|1|{{s14a}}", p[2])
        );
    }

    #[pg_test]
    fn roles_see_and_use_only_subscriptions_they_may_act_for() {
        run("CREATE ROLE es_s15_alice");
        run("CREATE ROLE es_s15_bob");
        run("CREATE ROLE es_s15_carol IN ROLE es_s15_alice");
        run("GRANT USAGE ON SCHEMA es TO es_s15_alice, es_s15_bob, es_s15_carol");
        run(
            "GRANT SELECT ON es.events, es.position_base TO es_s15_alice, es_s15_bob, es_s15_carol",
        );
        history(120_000, &[("s15-1", "A")]);

        run("SET LOCAL ROLE es_s15_alice");
        run("SELECT es.subscribe('s15-alice', from_position => 120000)");
        assert_eq!(polled("es.poll('s15-alice')"), "s15-1/1");
        run("SELECT es.ack('s15-alice', 120001, 0, 1)");
        run("RESET ROLE");
        assert_eq!(
            one_text("SELECT owner::text FROM es.subscriptions WHERE consumer = 's15-alice'"),
            "es_s15_alice"
        );
        assert_eq!(position_of("s15-alice"), 120001);

        // bob can neither see nor use alice's subscription, nor take its name
        run("SET LOCAL ROLE es_s15_bob");
        assert_eq!(
            one_i64("SELECT count(*) FROM es.subscriptions WHERE consumer = 's15-alice'"),
            0
        );
        assert_eq!(
            one_i64("SELECT count(*) FROM es.subscription_members WHERE consumer = 's15-alice'"),
            0
        );
        assert_eq!(
            one_i64("SELECT count(*) FROM es.subscription_status WHERE consumer = 's15-alice'"),
            0
        );
        assert_error("PERFORM es.poll('s15-alice')", "42704", "does not exist");
        assert_error("PERFORM es.ack('s15-alice', 1)", "42704", "does not exist");
        assert_error(
            "PERFORM es.unsubscribe('s15-alice')",
            "42704",
            "does not exist",
        );
        assert_error(
            "PERFORM es.subscribe('s15-alice')",
            "42710",
            "consumer \"s15-alice\" is already taken by a role whose rights you do not have",
        );
        // nor write rows in alice's name, nor change the filters of its own
        assert_error(
            "INSERT INTO es.subscriptions (consumer, owner) VALUES ('s15-bob2', 'es_s15_alice')",
            "42501",
            "row-level security",
        );
        run("SELECT es.subscribe('s15-bob')");
        assert_error(
            "UPDATE es.subscriptions SET event_types = '{X}' WHERE consumer = 's15-bob'",
            "42501",
            "permission denied",
        );
        run("UPDATE es.subscriptions SET position = 0 WHERE consumer = 's15-bob'");
        run("RESET ROLE");

        // carol is a member of alice: she acts for alice's subscriptions
        run("SET LOCAL ROLE es_s15_carol");
        assert_eq!(
            one_text("SELECT string_agg(consumer, ',' ORDER BY consumer) FROM es.subscriptions WHERE consumer LIKE 's15-%'"),
            "s15-alice"
        );
        run("SELECT es.ack('s15-alice', 120001, 0, 2)");
        assert_eq!(
            one_text("SELECT string_agg(owner::text, ',') FROM es.subscription_members WHERE consumer = 's15-alice' AND group_size = 2"),
            "es_s15_alice"
        );
        run("SELECT es.unsubscribe('s15-alice')");
        run("RESET ROLE");
        assert_eq!(subscriptions_named("s15-%"), 1);

        // dave may not read events: he can neither subscribe nor poll, and the
        // subscription made for him shows no lag
        run("CREATE ROLE es_s15_dave");
        run("GRANT USAGE ON SCHEMA es TO es_s15_dave");
        run("GRANT SELECT ON es.position_base TO es_s15_dave");
        run("INSERT INTO es.subscriptions (consumer, owner) VALUES ('s15-dave', 'es_s15_dave')");
        run("SET LOCAL ROLE es_s15_dave");
        assert_error(
            "PERFORM es.subscribe('s15-dave2')",
            "42501",
            "permission denied for table events",
        );
        assert_error(
            "PERFORM es.poll('s15-dave')",
            "42501",
            "permission denied for table events",
        );
        assert_eq!(
            one_text("SELECT concat_ws('|', consumer, lag IS NULL) FROM es.subscription_status"),
            "s15-dave|t"
        );
        run("RESET ROLE");
    }

    #[pg_test]
    fn subscription_tables_are_dumped_and_guarded() {
        assert_eq!(
            one_text(
                "SELECT string_agg(c::regclass::text, ',' ORDER BY c::regclass::text)
                   FROM pg_extension x, unnest(x.extconfig) c
                  WHERE x.extname = 'pg_eventsource' AND c::regclass::text LIKE 'es.subscription%'"
            ),
            "es.subscription_members,es.subscriptions"
        );
        assert!(one_bool(
            "SELECT bool_and(relrowsecurity) FROM pg_class WHERE oid IN ('es.subscriptions'::regclass, 'es.subscription_members'::regclass)"
        ));
        // direct writes still meet the constraints
        for stmt in [
            "INSERT INTO es.subscriptions (consumer) VALUES ('')",
            "INSERT INTO es.subscriptions (consumer, position) VALUES ('s16-neg', -1)",
            "INSERT INTO es.subscriptions (consumer, event_types) VALUES ('s16-empty', '{}')",
            "INSERT INTO es.subscriptions (consumer, stream_types) VALUES ('s16-null', ARRAY[NULL]::text[])",
        ] {
            assert_error(stmt, "23514", "violates check constraint");
        }
        run("SELECT es.subscribe('s16-c')");
        assert_error(
            "INSERT INTO es.subscription_members (consumer, group_size, member, position) VALUES ('s16-c', 2, 2, 0)",
            "23514",
            "violates check constraint",
        );
        assert_error(
            "INSERT INTO es.subscription_members (consumer, group_size, member, position) VALUES ('s16-none', 1, 0, 0)",
            "23503",
            "foreign key",
        );
        // the functions run with the caller's rights
        assert!(one_bool(
            "SELECT bool_and(NOT prosecdef) AND count(*) = 6 FROM pg_proc
              WHERE pronamespace = 'es'::regnamespace AND proname IN ('subscribe', 'poll', 'ack', 'unsubscribe')"
        ));
    }
}
