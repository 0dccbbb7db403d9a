//! In-backend tests of subscriptions: es.subscription_status, row-level security, dump registration.

// pgrx-tests calls every test as "tests".<name>(): the module is the SQL schema `tests`.
#[pgrx::pg_schema]
mod tests {
    // The helpers of subscriptions::tests, and through them the harness's.
    use super::super::*;

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
