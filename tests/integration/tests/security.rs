//! Adversarial tests: real roles trying to get more rights than they were
//! given, or to bring the server down.
//!
//! The scene of each test (as the README's security section describes it):
//! a superuser installs the extension; role W is given `es.grant_writer`,
//! owns schema W (USAGE for everyone) and a function `escalate()` that runs
//! `ALTER ROLE W SUPERUSER` whenever it happens to run as a superuser. Every
//! route below tries to get code of W's run with the superuser's rights, to
//! leave something behind in another role's session, or to break another
//! role's work. Each test checks that W is still no superuser and that the
//! extension still does its job.
//!
//! Roles are cluster-wide, so every test uses role names of its own.

use pg_eventsource_integration::{code_of, connect_as, describe, wait_until, TestDb};
use postgres::error::SqlState;
use postgres::Client;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn ok<T>(what: &str, r: Result<T, postgres::Error>) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {}", describe(&e)))
}

/// The test's database, its superuser connection and its roles.
struct Scene {
    db: TestDb,
    /// The writer (and the name of its schema).
    w: String,
    /// A second writer.
    w2: String,
    /// A role that may only read.
    r: String,
}

/// Drops `role` from the cluster (with whatever it owns in `dbs`).
fn drop_role(dbs: &[&str], role: &str) {
    let mut su = pg_eventsource_integration::connect("postgres");
    let exists: bool = ok(
        "pg_roles",
        su.query_one(
            "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)",
            &[&role],
        ),
    )
    .get(0);
    if !exists {
        return;
    }
    for db in dbs {
        let mut c = pg_eventsource_integration::connect(db);
        ok(
            "DROP OWNED",
            c.batch_execute(&format!("DROP OWNED BY {role} CASCADE")),
        );
    }
    ok("DROP ROLE", su.batch_execute(&format!("DROP ROLE {role}")));
}

const ESCALATE: &str = "
    CREATE FUNCTION @W@.escalate() RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
            EXECUTE 'ALTER ROLE @W@ SUPERUSER';
        END IF;
    END $$;
    -- A look-alike of a built-in the extension's own statements use.
    CREATE FUNCTION @W@.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM @W@.escalate();
        RETURN pg_catalog.now();
    END $$;";

impl Scene {
    /// A fresh database with the extension and roles `<tag>_w`, `<tag>_w2`
    /// (writers, each with a schema of its own) and `<tag>_r` (a reader).
    fn new(tag: &str) -> Scene {
        let db = TestDb::create(&format!("sec_{tag}"));
        let (w, w2, r) = (
            format!("sec_{tag}_w"),
            format!("sec_{tag}_w2"),
            format!("sec_{tag}_r"),
        );
        for role in [&w, &w2, &r] {
            drop_role(&[], role);
        }
        let mut su = db.connect();
        ok(
            "roles",
            su.batch_execute(&format!(
                "CREATE ROLE {w} LOGIN; CREATE ROLE {w2} LOGIN; CREATE ROLE {r} LOGIN;
                 SELECT es.grant_writer('{w}'); SELECT es.grant_writer('{w2}');
                 SELECT es.grant_reader('{r}');
                 CREATE SCHEMA {w} AUTHORIZATION {w}; GRANT USAGE ON SCHEMA {w} TO PUBLIC;
                 CREATE SCHEMA {w2} AUTHORIZATION {w2}; GRANT USAGE ON SCHEMA {w2} TO PUBLIC;"
            )),
        );
        let scene = Scene { db, w, w2, r };
        ok(
            "escalate()",
            scene
                .writer()
                .batch_execute(&ESCALATE.replace("@W@", &scene.w)),
        );
        scene
    }

    fn su(&self) -> Client {
        self.db.connect()
    }

    fn writer(&self) -> Client {
        connect_as(&self.db.name, &self.w)
    }

    fn writer2(&self) -> Client {
        connect_as(&self.db.name, &self.w2)
    }

    fn reader(&self) -> Client {
        connect_as(&self.db.name, &self.r)
    }

    /// Whether W became superuser; and if it did, fails the test with `route`.
    fn assert_not_escalated(&self, route: &str) {
        let mut su = self.su();
        let is_super: bool = ok(
            "rolsuper",
            su.query_one(
                "SELECT rolsuper FROM pg_roles WHERE rolname = $1",
                &[&self.w],
            ),
        )
        .get(0);
        assert!(!is_super, "{route}: role {} became superuser", self.w);
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            // Roles first would fail: they own objects in the database, which
            // TestDb drops when the test passed. Leave the roles to the next
            // run's Scene::new when it failed.
            let name = self.db.name.clone();
            pg_eventsource_integration::drop_database(&name);
            for role in [&self.w, &self.w2, &self.r] {
                drop_role(&[], role);
            }
        }
    }
}

fn setting(c: &mut Client, name: &str) -> String {
    ok(
        "current_setting",
        c.query_one("SELECT pg_catalog.current_setting($1)", &[&name]),
    )
    .get(0)
}

/// Runs es.run_projection until the projection has handled `total` events
/// (the read horizon may trail a moment behind other databases' transactions).
fn catch_up(c: &mut Client, name: &str, total: i64) {
    let done = wait_until(Duration::from_secs(30), || {
        ok(
            "run_projection",
            c.query_one("SELECT es.run_projection($1)", &[&name]),
        );
        ok(
            "events_handled",
            c.query_one(
                "SELECT events_handled FROM es.projections WHERE name = $1",
                &[&name],
            ),
        )
        .get::<_, i64>(0)
            >= total
    });
    assert!(done, "projection {name} did not reach {total} events");
}

/// Reproduction 1 of the audit: an async handler's `SET` survived into the
/// extension's own statements (the position update's `now()` resolved to
/// W's look-alike and ran as the extension's owner).
#[test]
fn async_handler_settings_do_not_reach_the_extensions_statements() {
    let s = Scene::new("async_set");
    let w = &s.w;
    let mut wc = s.writer();
    ok(
        "handler",
        wc.batch_execute(&format!(
            "CREATE FUNCTION {w}.h(e es.events) RETURNS void LANGUAGE plpgsql AS $$
             BEGIN
                 PERFORM pg_catalog.set_config('search_path', '{w}, pg_catalog', false);
                 PERFORM pg_catalog.set_config('statement_timeout', '1ms', false);
             END $$;
             SELECT es.create_projection('p', '{w}.h(es.events)', 'async');
             SELECT es.append_event('acct-1', 'Opened', '{{}}');"
        )),
    );
    let before = setting(&mut wc, "search_path");
    // Caught up by the writer itself, then by the superuser.
    catch_up(&mut wc, "p", 1);
    assert_eq!(setting(&mut wc, "search_path"), before);
    assert_ne!(setting(&mut wc, "statement_timeout"), "1ms");
    s.assert_not_escalated("async handler as the writer");

    let mut su = s.su();
    ok(
        "append",
        su.batch_execute("SELECT es.append_event('acct-1', 'Deposited', '{}')"),
    );
    catch_up(&mut su, "p", 2);
    assert_eq!(setting(&mut su, "search_path"), "\"$user\", public");
    s.assert_not_escalated("async handler caught up by a superuser");
    let (status, position): (String, i64) = {
        let row = ok(
            "es.projections",
            su.query_one(
                "SELECT status, position FROM es.projections WHERE name = 'p'",
                &[],
            ),
        );
        (row.get(0), row.get(1))
    };
    assert_eq!(status, "running");
    assert!(position > 0);
}

/// How many relations the session's temp schema holds.
fn temp_relations(su: &mut Client) -> i64 {
    ok(
        "temp relations",
        su.query_one(
            "SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()",
            &[],
        ),
    )
    .get(0)
}

/// Appends a `Shadow` event in `su`'s session, whose inline handler (`who`)
/// creates a temp view: the append fails with 42501 and the session is left
/// with no temp object.
fn assert_temp_view_refused(su: &mut Client, who: &str) {
    let err = su
        .batch_execute("SELECT es.append_event('acct-1', 'Shadow', '{}')")
        .expect_err(&format!(
            "{who} that creates a temp view must fail the append"
        ));
    assert_eq!(
        err.code(),
        Some(&SqlState::INSUFFICIENT_PRIVILEGE),
        "{}",
        describe(&err)
    );
    assert_eq!(
        temp_relations(su),
        0,
        "{who} left a temp object in the session"
    );
}

/// Reproduction 2: an inline handler of W ran in a superuser's appending
/// session with no sandbox: it could create a TEMP VIEW shadowing
/// pg_stat_activity there, and its settings stayed in that session. Another
/// setting than search_path: es.notify, which would silence the appender's
/// notifications for the rest of its session.
#[test]
fn inline_handler_leaves_nothing_in_the_appenders_session() {
    let s = Scene::new("inline_tmp");
    let w = &s.w;
    let mut wc = s.writer();
    ok(
        "handlers",
        wc.batch_execute(&format!(
            "CREATE FUNCTION {w}.shadow(e es.events) RETURNS void LANGUAGE plpgsql AS $$
             BEGIN
                 EXECUTE 'CREATE TEMP VIEW pg_stat_activity AS
                          SELECT 1 AS pid FROM (SELECT {w}.escalate()) x';
             END $$;
             CREATE FUNCTION {w}.settings(e es.events) RETURNS void LANGUAGE plpgsql AS $$
             BEGIN
                 PERFORM pg_catalog.set_config('search_path', '{w}, pg_catalog', false);
                 PERFORM pg_catalog.set_config('es.notify', 'off', false);
                 PERFORM pg_catalog.set_config('work_mem', '77MB', false);
             END $$;
             SELECT es.create_projection('shadow', '{w}.shadow(es.events)', 'inline', ARRAY['Shadow']);
             SELECT es.create_projection('settings', '{w}.settings(es.events)', 'inline', ARRAY['Set']);"
        )),
    );
    let mut su = s.su();
    assert_temp_view_refused(&mut su, "a handler");
    ok(
        "pg_stat_activity",
        su.query("SELECT count(*) FROM pg_stat_activity", &[]),
    );
    s.assert_not_escalated("temp view from an inline handler");

    let before = setting(&mut su, "search_path");
    ok(
        "append",
        su.batch_execute("SELECT es.append_event('acct-1', 'Set', '{}')"),
    );
    assert_eq!(setting(&mut su, "search_path"), before);
    assert_eq!(setting(&mut su, "es.notify"), "on");
    assert_eq!(setting(&mut su, "work_mem"), "4MB");
    s.assert_not_escalated("settings from an inline handler");
}

/// The batch form of a handler (`es.events[]`): W's batch handler, async
/// (caught up by a superuser) and inline (in a superuser's append), tries to
/// escalate, to leave settings behind and a temp view shadowing a catalog:
/// it runs as W, sandboxed, like the per-event form.
#[test]
fn batch_handlers_run_sandboxed_as_their_owner() {
    let s = Scene::new("batch_h");
    let w = &s.w;
    let mut wc = s.writer();
    ok(
        "handlers",
        wc.batch_execute(&format!(
            "CREATE FUNCTION {w}.hb(events es.events[]) RETURNS void LANGUAGE plpgsql AS $$
             BEGIN
                 PERFORM {w}.escalate();
                 PERFORM pg_catalog.set_config('search_path', '{w}, pg_catalog', false);
                 PERFORM pg_catalog.set_config('work_mem', '77MB', false);
                 IF EXISTS (SELECT FROM unnest(events) e WHERE e.event_type = 'Shadow') THEN
                     EXECUTE 'CREATE TEMP VIEW pg_stat_activity AS
                              SELECT 1 AS pid FROM (SELECT {w}.escalate()) x';
                 END IF;
             END $$;
             SELECT es.create_projection('pa', '{w}.hb(es.events[])', 'async', ARRAY['Opened', 'Deposited']);
             SELECT es.create_projection('pi', '{w}.hb(es.events[])', 'inline', ARRAY['Set', 'Shadow']);
             SELECT es.append_event('acct-1', 'Opened', '{{}}');"
        )),
    );
    let mut su = s.su();
    ok(
        "append",
        su.batch_execute("SELECT es.append_event('acct-1', 'Deposited', '{}')"),
    );
    catch_up(&mut su, "pa", 2);
    assert_eq!(setting(&mut su, "search_path"), "\"$user\", public");
    assert_eq!(setting(&mut su, "work_mem"), "4MB");
    s.assert_not_escalated("async batch handler caught up by a superuser");
    let status: String = ok(
        "es.projections",
        su.query_one("SELECT status FROM es.projections WHERE name = 'pa'", &[]),
    )
    .get(0);
    assert_eq!(status, "running");

    ok(
        "inline append",
        su.batch_execute("SELECT es.append_event('acct-1', 'Set', '{}')"),
    );
    assert_eq!(setting(&mut su, "search_path"), "\"$user\", public");
    assert_eq!(setting(&mut su, "work_mem"), "4MB");
    s.assert_not_escalated("inline batch handler in a superuser's append");
    assert_temp_view_refused(&mut su, "a batch handler");
    s.assert_not_escalated("temp view from an inline batch handler");
}

/// A fold function instead of a handler: W owns the fold function the
/// owner registered, and may change its body at any time. It used to run
/// with the rights of whoever loaded, folded or appended (a snapshot).
/// Also a temp object other than a view: a temp table.
#[test]
fn fold_functions_run_as_their_owner() {
    let s = Scene::new("fold");
    let w = &s.w;
    let mut wc = s.writer();
    ok(
        "fold function",
        wc.batch_execute(&format!(
            "CREATE FUNCTION {w}.fold(state jsonb, e es.events) RETURNS jsonb LANGUAGE plpgsql AS $$
             BEGIN
                 PERFORM {w}.escalate();
                 IF e.event_type = 'Temp' THEN
                     EXECUTE 'CREATE TEMP TABLE pg_roles (rolname name, rolsuper boolean)';
                 END IF;
                 RETURN state || jsonb_build_object('n', coalesce((state->>'n')::int, 0) + 1);
             END $$;"
        )),
    );
    let mut su = s.su();
    ok(
        "define_aggregate",
        su.batch_execute(&format!(
            "SELECT es.define_aggregate('acct', '{w}.fold(jsonb, es.events)'::regprocedure,
                                        snapshot_every => 2)"
        )),
    );
    // A snapshot, folded in the writer's append (the append runs as the
    // extension's owner).
    ok(
        "appends",
        wc.batch_execute(
            "SELECT es.append_event('acct-1', 'Deposited', '{}');
             SELECT es.append_event('acct-1', 'Deposited', '{}');",
        ),
    );
    s.assert_not_escalated("fold function in a snapshot");
    let state: String = ok(
        "es.load",
        su.query_one("SELECT state::text FROM es.load('acct-1')", &[]),
    )
    .get(0);
    assert_eq!(state, r#"{"n": 2}"#);
    ok(
        "es.fold",
        su.query(
            "SELECT es.fold(e ORDER BY version) FROM es.events e WHERE stream_id = 'acct-1'",
            &[],
        ),
    );
    ok(
        "es.load_at",
        su.query("SELECT * FROM es.load_at('acct-1', now())", &[]),
    );
    ok("verify", su.query("SELECT * FROM es.verify()", &[]));
    s.assert_not_escalated("fold function in es.load, es.fold, es.verify");

    // Version 3 takes no snapshot; version 4's snapshot folds it.
    ok(
        "append",
        su.batch_execute("SELECT es.append_event('acct-1', 'Temp', '{}')"),
    );
    let err = su
        .batch_execute("SELECT es.append_event('acct-1', 'Deposited', '{}')")
        .expect_err("a fold function that creates a temp table must fail the snapshot");
    assert_eq!(code_of(&err), "42501", "{}", describe(&err));
    assert_eq!(temp_relations(&mut su), 0);
}

/// A reset function whose settings leaked into es.rebuild_projection's own
/// statements, run as the extension's owner.
#[test]
fn reset_function_settings_do_not_reach_the_rebuild() {
    let s = Scene::new("reset");
    let w = &s.w;
    let mut wc = s.writer();
    ok(
        "projection",
        wc.batch_execute(&format!(
            "CREATE TABLE {w}.seen (n int);
             CREATE FUNCTION {w}.h(e es.events) RETURNS void LANGUAGE sql AS
                 $$ INSERT INTO {w}.seen VALUES (1) $$;
             CREATE FUNCTION {w}.reset() RETURNS void LANGUAGE plpgsql AS $$
             BEGIN
                 DELETE FROM {w}.seen;
                 PERFORM pg_catalog.set_config('search_path', '{w}, pg_catalog', false);
             END $$;
             SELECT es.create_projection('p', '{w}.h(es.events)', 'async', reset => '{w}.reset()');
             SELECT es.append_event('acct-1', 'Opened', '{{}}');"
        )),
    );
    let mut su = s.su();
    // Replays what lies below the read horizon (the event, unless another
    // database's transaction holds the horizon back for a moment).
    let n: i64 = ok(
        "rebuild",
        su.query_one("SELECT es.rebuild_projection('p')", &[]),
    )
    .get(0);
    assert!(n <= 1);
    assert_eq!(setting(&mut su, "search_path"), "\"$user\", public");
    s.assert_not_escalated("reset function in es.rebuild_projection");
}

/// The background worker's path: with the library preloaded, the worker of
/// `es_worker` catches W's async projection up with no client call. Its
/// handler's settings must not reach the worker's own statements.
#[test]
fn background_worker_runs_handlers_sandboxed() {
    const DB: &str = "es_worker";
    let mut admin = pg_eventsource_integration::connect("postgres");
    let preloaded: bool = ok(
        "preload",
        admin.query_one(
            "SELECT current_setting('shared_preload_libraries') LIKE '%pg_eventsource%'
                AND EXISTS (SELECT FROM pg_database WHERE datname = $1)",
            &[&DB],
        ),
    )
    .get(0);
    if !preloaded {
        println!("SKIPPED: no background worker (pg_eventsource not preloaded, or no es_worker)");
        return;
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let w = format!("sec_bgw_{}", nanos % 1_000_000_000);
    let mut su = pg_eventsource_integration::connect(DB);
    ok(
        "setup",
        su.batch_execute(&format!(
            "CREATE EXTENSION IF NOT EXISTS pg_eventsource;
             CREATE ROLE {w} LOGIN; SELECT es.grant_writer('{w}');
             CREATE SCHEMA {w} AUTHORIZATION {w}; GRANT USAGE ON SCHEMA {w} TO PUBLIC;"
        )),
    );
    let mut wc = connect_as(DB, &w);
    ok(
        "projection",
        wc.batch_execute(&format!(
            "{}
             CREATE FUNCTION {w}.h(e es.events) RETURNS void LANGUAGE plpgsql AS $$
             BEGIN
                 PERFORM pg_catalog.set_config('search_path', '{w}, pg_catalog', false);
             END $$;
             SELECT es.create_projection('{w}', '{w}.h(es.events)', 'async', stream_types => ARRAY['{w}']);
             SELECT es.append_event('{w}-1', 'Opened', '{{}}');
             SELECT es.append_event('{w}-1', 'Opened', '{{}}');",
            ESCALATE.replace("@W@", &w)
        )),
    );
    let caught_up = wait_until(Duration::from_secs(30), || {
        ok(
            "position",
            su.query_one(
                "SELECT events_handled FROM es.projections WHERE name = $1",
                &[&w],
            ),
        )
        .get::<_, i64>(0)
            == 2
    });
    let is_super: bool = ok(
        "rolsuper",
        su.query_one("SELECT rolsuper FROM pg_roles WHERE rolname = $1", &[&w]),
    )
    .get(0);
    ok(
        "cleanup",
        su.batch_execute(&format!(
            "ALTER ROLE {w} NOSUPERUSER; SELECT es.drop_projection('{w}');"
        )),
    );
    drop(wc);
    drop_role(&[DB], &w);
    assert!(caught_up, "the worker did not catch the projection up");
    assert!(
        !is_super,
        "the worker ran W's handler's settings as superuser"
    );
}

/// Reproduction 3: es.verify() read a writer's materialized table as its
/// caller; W turned the table into a view calling escalate().
#[test]
fn verify_reads_a_materialized_table_as_its_owner() {
    let s = Scene::new("verify_view");
    let w = &s.w;
    let mut su = s.su();
    ok(
        "aggregate",
        su.batch_execute(
            r#"SELECT es.define_aggregate('acct', reducers => '{"Deposited": [{"add": "balance", "from": "$.amount"}]}')"#,
        ),
    );
    let mut wc = s.writer();
    ok(
        "materialize",
        wc.batch_execute(&format!(
            "SELECT es.materialize_aggregate('acct', '{w}.acct_state');
             SELECT es.append_event('acct-1', 'Deposited', '{{\"amount\": 5}}');"
        )),
    );
    let clean: i64 = ok(
        "verify",
        su.query_one("SELECT count(*) FROM es.verify()", &[]),
    )
    .get(0);
    assert_eq!(clean, 0);
    ok(
        "turn the table into a view",
        wc.batch_execute(&format!(
            "DELETE FROM {w}.acct_state;
             ALTER TABLE {w}.acct_state DROP CONSTRAINT acct_state_pkey;"
        )),
    );
    // A table that had an index keeps relhasindex until it is vacuumed.
    ok(
        "vacuum",
        wc.batch_execute(&format!("VACUUM {w}.acct_state")),
    );
    ok(
        "turn the table into a view",
        wc.batch_execute(&format!(
            "CREATE RULE \"_RETURN\" AS ON SELECT TO {w}.acct_state DO INSTEAD
                 SELECT 'acct-1'::text AS stream_id, 1::bigint AS version, '{{}}'::jsonb AS state
                   FROM (SELECT {w}.escalate()) x;"
        )),
    );
    let rows = ok(
        "verify",
        su.query("SELECT check_name, object FROM es.verify()", &[]),
    );
    s.assert_not_escalated("es.verify reading a materialized view");
    let checks: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert!(
        checks.iter().any(|c| c == "materialized_table"),
        "es.verify does not report the table that became a view: {checks:?}"
    );
}

/// Reproduction 4: NULL input to es.fold crashed the server. Run as a role
/// that may only read; the same connection must still work afterwards (a
/// crash would have ended every connection).
#[test]
fn null_events_in_folds_do_not_crash_the_server() {
    let s = Scene::new("fold_null");
    let mut su = s.su();
    ok(
        "aggregate and events",
        su.batch_execute(
            r#"SELECT es.define_aggregate('acct', reducers => '{"Deposited": [{"inc": "n"}]}');
               SELECT es.append_event('acct-1', 'Deposited', '{}');"#,
        ),
    );
    let mut rc = s.reader();
    let r: Option<String> = ok(
        "fold of NULL",
        rc.query_one("SELECT es.fold(NULL::es.events)::text", &[]),
    )
    .get(0);
    assert_eq!(r, None);
    let rows = ok(
        "fold over a LEFT JOIN",
        rc.query(
            "SELECT x.id, es.fold(e ORDER BY e.version)::text
               FROM (VALUES ('acct-1'), ('nobody-1')) x(id)
               LEFT JOIN es.events e ON e.stream_id = x.id
              GROUP BY x.id ORDER BY x.id",
            &[],
        ),
    );
    assert_eq!(
        rows[0].get::<_, Option<String>>(1).as_deref(),
        Some(r#"{"n": 1}"#)
    );
    assert_eq!(rows[1].get::<_, Option<String>>(1), None);
    for (column, row) in [
        (
            "stream_type",
            "ROW(1, 'acct-1', NULL, 1, 'Deposited', '{}', '{}', gen_random_uuid(), now(), 1)",
        ),
        (
            "data",
            "ROW(1, 'acct-1', 'acct', 1, 'Deposited', NULL, '{}', gen_random_uuid(), now(), 1)",
        ),
        (
            "event_id",
            "ROW(1, 'acct-1', 'acct', 1, 'Deposited', '{}', '{}', NULL, now(), 1)",
        ),
        (
            "version",
            "ROW(1, 'acct-1', 'acct', NULL, 'Deposited', '{}', '{}', gen_random_uuid(), now(), 1)",
        ),
    ] {
        let err = rc
            .query(&format!("SELECT es.fold({row}::es.events)"), &[])
            .expect_err("a NULL field must be refused");
        assert_eq!(code_of(&err), "22004", "{column}: {}", describe(&err));
        assert!(describe(&err).contains(column), "{}", describe(&err));
    }
    let one: i32 = ok("still alive", rc.query_one("SELECT 1", &[])).get(0);
    assert_eq!(one, 1);
}

/// Reproduction 6: a role with USAGE on es planted a member checkpoint
/// under another role's consumer; the owner's es.ack then failed.
#[test]
fn member_rows_cannot_be_planted_under_another_roles_consumer() {
    let s = Scene::new("members");
    let mut wc = s.writer();
    ok(
        "subscribe",
        wc.batch_execute(
            "SELECT es.subscribe('billing');
             SELECT es.append_event('acct-1', 'Opened', '{}');",
        ),
    );
    let mut w2 = s.writer2();
    for sql in [
        "INSERT INTO es.subscription_members (consumer, group_size, member, position) VALUES ('billing', 2, 0, 0)",
        &format!(
            "INSERT INTO es.subscription_members (consumer, group_size, member, position, owner) VALUES ('billing', 2, 0, 0, '{}')",
            s.w
        ),
    ] {
        let err = w2
            .batch_execute(sql)
            .expect_err("another role's member row must be refused");
        assert!(
            ["42501", "23503"].contains(&code_of(&err).as_str()),
            "{}",
            describe(&err)
        );
    }
    // Readable once no older transaction (in any database) is still open.
    let mut pos: Option<i64> = None;
    wait_until(Duration::from_secs(30), || {
        pos = ok(
            "position",
            wc.query_one("SELECT max(global_position) FROM es.read_all()", &[]),
        )
        .get(0);
        pos.is_some()
    });
    let pos = pos.expect("the event became readable");
    ok(
        "ack",
        wc.execute("SELECT es.ack('billing', $1, 0, 2)", &[&pos]),
    );
}

/// Reproduction 7: a temp table as a materializer's target vanished with
/// its session and broke every append of the type. Targets must be
/// ordinary, permanent tables the caller owns.
#[test]
fn materializer_targets_are_permanent_tables_the_caller_owns() {
    let s = Scene::new("targets");
    let (w, w2) = (&s.w, &s.w2);
    let mut su = s.su();
    ok(
        "aggregate",
        su.batch_execute(
            r#"SELECT es.define_aggregate('acct', reducers => '{"Deposited": [{"inc": "n"}]}')"#,
        ),
    );
    let mut wc = s.writer();
    let err = wc
        .batch_execute("SELECT es.materialize_aggregate('acct', 'pg_temp.mine')")
        .expect_err("a temp table must be refused");
    assert_eq!(code_of(&err), "42P16", "{}", describe(&err));
    ok(
        "temp table of the right shape",
        wc.batch_execute(
            "CREATE TEMP TABLE mine (stream_id text PRIMARY KEY, version bigint, state jsonb)",
        ),
    );
    let err = wc
        .batch_execute("SELECT es.materialize_aggregate('acct', 'pg_temp.mine')")
        .expect_err("an existing temp table must be refused");
    assert_eq!(code_of(&err), "42P16", "{}", describe(&err));
    let err = wc
        .batch_execute(&format!(
            "CREATE UNLOGGED TABLE {w}.u (stream_id text PRIMARY KEY, version bigint, state jsonb);
             SELECT es.materialize_aggregate('acct', '{w}.u')"
        ))
        .expect_err("an unlogged table must be refused");
    assert_eq!(code_of(&err), "42P16", "{}", describe(&err));
    // Another role's table, even with every privilege on it.
    let mut w2c = s.writer2();
    ok(
        "w2's table",
        w2c.batch_execute(&format!(
            "CREATE TABLE {w2}.theirs (stream_id text PRIMARY KEY, version bigint, state jsonb);
             GRANT ALL ON {w2}.theirs TO {w};"
        )),
    );
    let err = wc
        .batch_execute(&format!(
            "SELECT es.materialize_aggregate('acct', '{w2}.theirs')"
        ))
        .expect_err("another role's table must be refused");
    assert_eq!(code_of(&err), "42501", "{}", describe(&err));
    drop(wc);
    let registered: i64 = ok(
        "registry",
        su.query_one("SELECT count(*) FROM es.projections", &[]),
    )
    .get(0);
    assert_eq!(registered, 0);
    // Appends of the type still work for everyone.
    ok(
        "append",
        w2c.batch_execute("SELECT es.append_event('acct-1', 'Deposited', '{}')"),
    );
}

/// Trigger functions of the extension cannot be put on a table of one's
/// own: they guard the store's tables, and a look-alike table must not get
/// their privileges. (Inline projections and snapshots run in the append
/// path, which made-up rows never reach.)
#[test]
fn internal_trigger_functions_are_closed() {
    let s = Scene::new("triggers");
    let w = &s.w;
    let mut wc = s.writer();
    ok(
        "look-alike table",
        wc.batch_execute(&format!("CREATE TABLE {w}.fake (LIKE es.events)")),
    );
    for f in ["es._forbid_change()", "es._merge_position_base()"] {
        let err = wc
            .batch_execute(&format!(
                "CREATE TRIGGER t AFTER INSERT ON {w}.fake FOR EACH ROW EXECUTE FUNCTION {f}"
            ))
            .expect_err("a trigger on the extension's trigger function must be refused");
        assert_eq!(code_of(&err), "42501", "{f}: {}", describe(&err));
    }
}

/// Message DB's append (es._append_message, SECURITY DEFINER, for the
/// pg_eventsource_message_db layer) is a writer's, and keeps the store's
/// rules: a reader may not call it, a writer may not write the store's own
/// "$" markers through it nor take an id twice.
#[test]
fn message_db_append_is_a_writers_and_keeps_the_stores_rules() {
    let s = Scene::new("mdbappend");
    let call = |id: &str, ty: &str| {
        format!("SELECT es._append_message('{id}', 'acct-1', '{ty}', '{{\"a\": 1}}', NULL, NULL)")
    };
    let id = "5f1c4d4e-0000-4000-8000-00000000000a";
    let err = s
        .reader()
        .batch_execute(&call(id, "Opened"))
        .expect_err("a reader may not append");
    assert_eq!(code_of(&err), "42501", "{}", describe(&err));
    let mut wc = s.writer();
    let err = wc
        .batch_execute(&call(id, "$StreamDeleted"))
        .expect_err("a marker through Message DB's append");
    assert_eq!(code_of(&err), "22023", "{}", describe(&err));
    let position: i64 = ok("append", wc.query_one(&call(id, "Opened"), &[])).get(0);
    assert_eq!(position, 0);
    let err = wc
        .batch_execute(&call(id, "Opened"))
        .expect_err("the same id twice");
    assert_eq!(code_of(&err), "23505", "{}", describe(&err));
    let mut su = s.su();
    let n: i64 = ok(
        "count",
        su.query_one(
            "SELECT count(*) FROM es.events WHERE stream_id = 'acct-1'",
            &[],
        ),
    )
    .get(0);
    assert_eq!(n, 1);
    s.assert_not_escalated("es._append_message");
}

/// Tampering a superuser can still do (disable the guards, update an event)
/// is reported by es.verify(): every stream carries a hash chain over its
/// events.
#[test]
fn verify_reports_events_changed_past_the_guards() {
    let s = Scene::new("tamper");
    let mut su = s.su();
    ok(
        "appends",
        su.batch_execute(
            r#"SELECT es.append_event('acct-1', 'Opened', '{"owner": "ann"}');
               SELECT es.append_events('acct-1', '[{"type": "Deposited", "data": {"amount": 10}},
                                                   {"type": "Deposited", "data": 7, "metadata": {"by": "x"}}]');
               SELECT es.append_event('acct-2', 'Opened', '{"owner": "bob"}', metadata => '{"k": 1}');"#,
        ),
    );
    let clean: i64 = ok(
        "verify",
        su.query_one("SELECT count(*) FROM es.verify()", &[]),
    )
    .get(0);
    assert_eq!(clean, 0, "a store nobody tampered with must verify clean");
    ok(
        "tamper",
        su.batch_execute(
            r#"ALTER TABLE es.events DISABLE TRIGGER events_no_update_delete;
               UPDATE es.events SET data = '{"amount": 1000}' WHERE stream_id = 'acct-1' AND version = 2;
               UPDATE es.events SET metadata = '{}' WHERE stream_id = 'acct-2';
               ALTER TABLE es.events ENABLE ALWAYS TRIGGER events_no_update_delete;"#,
        ),
    );
    for mode in ["full", "quick"] {
        let rows = ok(
            "verify",
            su.query(
                "SELECT object FROM es.verify($1) WHERE check_name = 'stream_hash' ORDER BY 1",
                &[&mode],
            ),
        );
        let streams: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        assert_eq!(streams, ["acct-1", "acct-2"], "mode {mode}");
    }
}

/// An upcaster function runs in every read of the events it upcasts, by
/// whoever reads: a superuser's es.read_stream, es.read_all, es.poll,
/// es.load, es.upcast and a projection's catch-up must run it as its owner,
/// sandboxed, leaving nothing in the reader's session.
#[test]
fn upcaster_functions_run_as_their_owner() {
    let s = Scene::new("upcast");
    let w = &s.w;
    let mut wc = s.writer();
    ok(
        "upcaster function",
        wc.batch_execute(&format!(
            "CREATE FUNCTION {w}.up(data jsonb, metadata jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
             BEGIN
                 PERFORM {w}.escalate();
                 PERFORM set_config('search_path', '{w}, pg_catalog', false);
                 PERFORM set_config('work_mem', '64kB', false);
                 IF data ? 'temp' THEN
                     EXECUTE 'CREATE TEMP TABLE pg_roles (rolname name, rolsuper boolean)';
                 END IF;
                 RETURN data || '{{\"v2\": true}}';
             END $$;
             SELECT es.append_event('acct-1', 'Deposited', '{{\"amount\": 1}}');
             SELECT es.append_event('acct-1', 'Deposited', '{{\"amount\": 2}}');
             SELECT es.append_event('acct-2', 'Tmp', '{{\"temp\": true}}');"
        )),
    );
    let mut su = s.su();
    ok(
        "define_upcaster and an aggregate",
        su.batch_execute(&format!(
            "SELECT es.define_upcaster('Deposited', 1, fn => '{w}.up(jsonb, jsonb)'::regprocedure);
             SELECT es.define_aggregate('acct', reducers => '{{\"Deposited\": [{{\"add\": \"n\", \"from\": \"$.amount\"}}]}}');
             SELECT es.subscribe('sec_upcast_feed', ARRAY['Deposited']);
             CREATE TABLE public.seen (p bigint PRIMARY KEY, v2 boolean);
             CREATE FUNCTION public.on_ev(e es.events) RETURNS void LANGUAGE sql AS
                 $$ INSERT INTO public.seen VALUES (e.global_position, (e.data->>'v2')::boolean) $$;
             SELECT es.create_projection('sec_upcast_seen', 'public.on_ev(es.events)', 'async', ARRAY['Deposited']);"
        )),
    );
    let before = (
        setting(&mut su, "search_path"),
        setting(&mut su, "work_mem"),
    );
    let reads = [
        "SELECT count(*) FROM es.read_stream('acct-1') WHERE data->>'v2' = 'true'",
        "SELECT count(*) FROM es.read_all(0, 100, ARRAY['Deposited']) WHERE data->>'v2' = 'true'",
        "SELECT count(*) FROM es.poll('sec_upcast_feed') WHERE data->>'v2' = 'true'",
        "SELECT count(*) FROM es.events e, es.upcast(e) u WHERE e.event_type = 'Deposited' AND u.data->>'v2' = 'true'",
        "SELECT (state->>'n')::bigint FROM es.load('acct-1')",
    ];
    for q in reads {
        let n: i64 = ok(q, su.query_one(q, &[])).get(0);
        if q.contains("es.load") {
            assert_eq!(n, 3, "{q}");
        } else {
            assert_eq!(n, 2, "{q}: every event is upcast");
        }
        s.assert_not_escalated(q);
    }
    let n: i64 = ok(
        "run_projection",
        su.query_one("SELECT es.run_projection('sec_upcast_seen')", &[]),
    )
    .get(0);
    assert_eq!(n, 2);
    let v2: i64 = ok(
        "seen",
        su.query_one("SELECT count(*) FROM public.seen WHERE v2", &[]),
    )
    .get(0);
    assert_eq!(v2, 2, "the handler got upcast events");
    s.assert_not_escalated("upcaster in a projection's catch-up");
    assert_eq!(
        (
            setting(&mut su, "search_path"),
            setting(&mut su, "work_mem")
        ),
        before,
        "the upcaster's settings reached the reader's session"
    );
    // An upcaster that creates a temp object fails the read (42501), and
    // leaves nothing.
    ok(
        "an upcaster for the event that makes it create a temp table",
        su.batch_execute(&format!(
            "SELECT es.define_upcaster('Tmp', 1, fn => '{w}.up(jsonb, jsonb)'::regprocedure)"
        )),
    );
    let err = su
        .query("SELECT * FROM es.read_stream('acct-2')", &[])
        .expect_err("an upcaster that creates a temp table must fail the read");
    assert_eq!(code_of(&err), "42501", "{}", describe(&err));
    assert_eq!(temp_relations(&mut su), 0);
    s.assert_not_escalated("upcaster");
}
