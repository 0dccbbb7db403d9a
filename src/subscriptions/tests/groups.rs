//! In-backend tests of subscriptions: consumer groups.

// pgrx-tests calls every test as "tests".<name>(): the module is the SQL schema `tests`.
#[pgrx::pg_schema]
mod tests {
    // The helpers of subscriptions::tests, and through them the harness's.
    use super::super::*;

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
}
