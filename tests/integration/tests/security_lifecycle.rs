//! Adversarial tests of the lifecycle API (es.delete_stream, es.truncate_stream,
//! es.set_retention, es.apply_retention, es.redact, es.archive_stream,
//! es.unarchive_stream) and of the append-only guard they are the only way
//! past.
//!
//! The scene is the one of `tests/security.rs`: a superuser installs the
//! extension; role W is given `es.grant_writer`, owns schema W (USAGE for
//! everyone) and a function `escalate()` that runs `ALTER ROLE W SUPERUSER`
//! whenever it happens to run as a superuser. R may only read; A is given
//! `es.grant_admin`; B is a member of A. Each test tries a route to change
//! history without the rights to, or to get W's code run with more rights,
//! checks that it fails, and that the extension still does its job.
//!
//! Roles are cluster-wide: every role of this file begins with `seclc_`.

use pg_eventsource_integration::{code_of, connect_as, describe, drop_role_if_exists, TestDb};
use postgres::Client;

fn ok<T>(what: &str, r: Result<T, postgres::Error>) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {}", describe(&e)))
}

/// Runs `sql` (one or more statements) and asserts that it fails with one of `codes`.
fn expect_fail(c: &mut Client, who: &str, sql: &str, codes: &[&str]) {
    match c.batch_execute(sql) {
        Ok(()) => panic!("{who}: `{sql}` succeeded; it must fail with {codes:?}"),
        Err(e) => assert!(
            codes.contains(&code_of(&e).as_str()),
            "{who}: `{sql}` must fail with {codes:?}, got {}",
            describe(&e)
        ),
    }
}

/// Inside an open transaction: runs `sql` in a savepoint, asserts that it
/// fails with `code`, and rolls back to the savepoint.
fn expect_fail_in_tx(c: &mut Client, who: &str, sql: &str, code: &str) {
    expect_fail_in_tx_any(c, who, sql, &[code]);
}

fn expect_fail_in_tx_any(c: &mut Client, who: &str, sql: &str, codes: &[&str]) {
    ok("SAVEPOINT", c.batch_execute("SAVEPOINT attempt"));
    match c.batch_execute(sql) {
        Ok(()) => panic!("{who}: `{sql}` succeeded; it must fail with {codes:?}"),
        Err(e) => assert!(
            codes.contains(&code_of(&e).as_str()),
            "{who}: `{sql}` must fail with {codes:?}, got {}",
            describe(&e)
        ),
    }
    ok(
        "ROLLBACK TO SAVEPOINT",
        c.batch_execute("ROLLBACK TO SAVEPOINT attempt"),
    );
}

fn one_i64(c: &mut Client, sql: &str) -> i64 {
    ok(sql, c.query_one(sql, &[])).get(0)
}

fn one_text(c: &mut Client, sql: &str) -> String {
    ok(sql, c.query_one(sql, &[]))
        .get::<_, Option<String>>(0)
        .unwrap_or_default()
}

/// The test's database and its roles.
struct Scene {
    db: TestDb,
    /// The writer (and the name of its schema).
    w: String,
    /// A role that may only read.
    r: String,
    /// An admin (es.grant_admin).
    a: String,
    /// A member of the admin role, not granted anything itself.
    b: String,
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
    END $$;
    -- Runs a statement, and records who ran it and how it ended.
    CREATE TABLE @W@.log (id bigserial PRIMARY KEY, who text NOT NULL, what text NOT NULL, outcome text NOT NULL);
    CREATE FUNCTION @W@.try(what text, stmt text) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        BEGIN
            EXECUTE stmt;
            INSERT INTO @W@.log (who, what, outcome) VALUES (current_user, what, 'ok');
        EXCEPTION WHEN OTHERS THEN
            INSERT INTO @W@.log (who, what, outcome) VALUES (current_user, what, SQLSTATE);
        END;
    END $$;";

impl Scene {
    /// A fresh database with the extension and roles `seclc_<tag>_w` (a
    /// writer with a schema of its own), `seclc_<tag>_r` (a reader),
    /// `seclc_<tag>_a` (an admin) and `seclc_<tag>_b` (a member of the admin).
    fn new(tag: &str) -> Scene {
        let db = TestDb::create(&format!("seclc_{tag}"));
        let (w, r, a, b) = (
            format!("seclc_{tag}_w"),
            format!("seclc_{tag}_r"),
            format!("seclc_{tag}_a"),
            format!("seclc_{tag}_b"),
        );
        for role in [&b, &a, &w, &r] {
            drop_role_if_exists(role);
        }
        let mut su = db.connect();
        ok(
            "roles",
            su.batch_execute(&format!(
                "CREATE ROLE {w} LOGIN; CREATE ROLE {r} LOGIN; CREATE ROLE {a} LOGIN; CREATE ROLE {b} LOGIN;
                 GRANT {a} TO {b};
                 SELECT es.grant_writer('{w}');
                 SELECT es.grant_reader('{r}');
                 SELECT es.grant_admin('{a}');
                 CREATE SCHEMA {w} AUTHORIZATION {w}; GRANT USAGE ON SCHEMA {w} TO PUBLIC;"
            )),
        );
        let scene = Scene { db, w, r, a, b };
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

    fn reader(&self) -> Client {
        connect_as(&self.db.name, &self.r)
    }

    fn admin(&self) -> Client {
        connect_as(&self.db.name, &self.a)
    }

    fn member(&self) -> Client {
        connect_as(&self.db.name, &self.b)
    }

    /// Fails the test with `route` if W became superuser.
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

    /// Every row W's code logged that it did not expect: ran as another
    /// role than W, or a statement that should have failed succeeded.
    fn unexpected_log_rows(&self, su: &mut Client) -> Vec<String> {
        let w = &self.w;
        ok(
            "W's log",
            su.query(
                &format!(
                    "SELECT id || ': ' || who || ' ' || what || ' -> ' || outcome FROM {w}.log
                      WHERE who <> '{w}' OR outcome = 'ok' ORDER BY id"
                ),
                &[],
            ),
        )
        .iter()
        .map(|r| r.get(0))
        .collect()
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let name = self.db.name.clone();
            pg_eventsource_integration::drop_database(&name);
            for role in [&self.b, &self.a, &self.w, &self.r] {
                drop_role_if_exists(role);
            }
        }
    }
}

/// Everything stored about events and their changes, as one text: what no
/// failed attack may change.
fn fingerprint(su: &mut Client) -> String {
    one_text(
        su,
        "SELECT concat_ws(E'\\n',
            (SELECT string_agg(concat_ws('|', global_position, stream_id, version, event_type, data, metadata), ',' ORDER BY global_position) FROM es.events),
            (SELECT string_agg(concat_ws('|', global_position, stream_id, version, event_type, data, metadata), ',' ORDER BY global_position) FROM es.archived_events),
            (SELECT string_agg(concat_ws('|', id, at, by_role, operation, stream_id, versions, event_count, reason, details), ',' ORDER BY id) FROM es.audit),
            (SELECT string_agg(concat_ws('|', stream_id, first_version, chain_base, deleted, archived, updated_at), ',' ORDER BY stream_id) FROM es.stream_lifecycle),
            (SELECT string_agg(concat_ws('|', stream_type, max_age, max_count), ',' ORDER BY stream_type) FROM es.retention),
            (SELECT string_agg(concat_ws('|', stream_id, version, chain_hash, last_position), ',' ORDER BY stream_id) FROM es.streams),
            (SELECT string_agg(concat_ws('|', stream_id, version, revision, state), ',' ORDER BY stream_id, version, revision) FROM es.snapshots))",
    )
}

fn assert_verifies(su: &mut Client, when: &str) {
    let rows = ok(
        "es.verify()",
        su.query(
            "SELECT check_name || ' ' || object || ': ' || coalesce(detail, '') FROM es.verify()",
            &[],
        ),
    );
    let problems: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert!(
        problems.is_empty(),
        "{when}: es.verify() reports {problems:?}"
    );
}

/// The audit's rows as `by_role operation stream_id versions event_count`, in order.
fn audit_rows(su: &mut Client) -> Vec<String> {
    ok(
        "es.audit",
        su.query(
            "SELECT concat_ws(' ', by_role, operation, stream_id, versions, event_count) FROM es.audit ORDER BY id",
            &[],
        ),
    )
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// The lifecycle functions, each with arguments that would work for an admin.
fn lifecycle_calls() -> Vec<&'static str> {
    vec![
        "SELECT es.delete_stream('acct-1')",
        "SELECT es.delete_stream('acct-2', expected_version => 3, hard => true, reason => 'x')",
        "SELECT es.truncate_stream('acct-1', 3, 'x')",
        "SELECT es.set_retention('acct', max_count => 1)",
        "SELECT es.set_retention('acct', max_age => interval '1 second')",
        "SELECT es.apply_retention()",
        "SELECT es.apply_retention(1)",
        r#"SELECT es.redact('acct-1', '{"owner": "[redacted]"}', 'x')"#,
        r#"SELECT es.redact('acct-1', '{"owner": null}', 'x', ARRAY['Opened'])"#,
        "SELECT es.archive_stream('acct-1', 'x')",
        "SELECT es.unarchive_stream('arch-1')",
    ]
}

/// The internal primitives and helpers behind them.
fn primitive_calls() -> Vec<&'static str> {
    vec![
        "SELECT es._remove_events('acct-1', 4, 'delete_stream', 'x', '{}')",
        "SELECT es._remove_events('acct-1', 2, 'truncate_stream', NULL, NULL)",
        r#"SELECT es._redact_events('acct-1', '{"owner": null}', NULL, 'x', '{}')"#,
        r#"SELECT es._redact_events('acct-1', '{"owner": null}', ARRAY['Opened'], 'x', '{}')"#,
        "SELECT es._move_events('acct-1', true, 'x')",
        "SELECT es._move_events('arch-1', false, 'x')",
        "SELECT es._append_marker('acct-1', '$StreamDeleted', '{}', NULL)",
        "SELECT es._append_marker('acct-1', '$EventsRedacted', '{}', 3)",
        "SELECT es._refresh_read_models_of('acct-1', 'acct')",
        "SELECT es._lock_stream('x', 'acct-1')",
        "SELECT es._truncate_locked('acct-1', 'acct', 3, 1, false, 3, 'truncate_stream', 'x')",
        "SELECT es._renew_snapshots('acct-1', 1)",
        "SELECT es._refresh_read_models('acct-1', 'acct')",
    ]
}

/// Direct changes of the guarded tables and the lifecycle's bookkeeping.
fn direct_changes() -> Vec<&'static str> {
    vec![
        "DELETE FROM es.events",
        "DELETE FROM es.events WHERE stream_id = 'acct-1' AND version < 3",
        r#"UPDATE es.events SET data = '{"owner": "mallory"}' WHERE stream_id = 'acct-1'"#,
        "TRUNCATE es.events",
        "DELETE FROM es.archived_events",
        "UPDATE es.archived_events SET data = '{}'",
        "TRUNCATE es.archived_events",
        "INSERT INTO es.archived_events SELECT * FROM es.events WHERE stream_id = 'acct-1'",
        "DELETE FROM es.audit",
        "UPDATE es.audit SET by_role = 'nobody'",
        "TRUNCATE es.audit",
        "INSERT INTO es.audit (by_role, operation, stream_id, versions, event_count) VALUES ('x', 'truncate_stream', 'acct-1', '[1,3)', 2)",
        "INSERT INTO es.stream_lifecycle (stream_id, first_version) VALUES ('acct-1', 3)",
        "UPDATE es.stream_lifecycle SET archived = false",
        "DELETE FROM es.stream_lifecycle",
        "INSERT INTO es.retention (stream_type, max_count) VALUES ('acct', 1)",
        "DELETE FROM es.retention",
    ]
}

/// Writers and readers: no lifecycle function, no primitive, no direct
/// change; no marker event of the store's own. Nothing changes.
#[test]
fn writers_and_readers_cannot_change_history() {
    let s = Scene::new("hist");
    let (w, r) = (&s.w, &s.r);
    let mut su = s.su();
    ok(
        "events",
        su.batch_execute(
            r#"SELECT es.define_aggregate('acct', reducers => '{"Deposited": [{"add": "balance", "from": "$.amount"}]}', snapshot_every => 2);
               SELECT es.append_event('acct-1', 'Opened', '{"owner": "ann"}');
               SELECT es.append_event('acct-1', 'Deposited', '{"amount": 10}');
               SELECT es.append_event('acct-1', 'Deposited', '{"amount": 5}');
               SELECT es.append_event('acct-2', 'Opened', '{"owner": "bob"}');
               SELECT es.append_event('arch-1', 'Opened', '{}');
               SELECT es.append_event('arch-1', 'Closed', '{}');
               SELECT es.archive_stream('arch-1', 'cold');"#,
        ),
    );
    let mut wc = s.writer();
    ok(
        "the writer's own stream",
        wc.batch_execute(
            r#"SELECT es.append_event('acct-2', 'Deposited', '{"amount": 1}');
               SELECT es.append_event('acct-2', 'Deposited', '{"amount": 2}');"#,
        ),
    );
    let before = fingerprint(&mut su);
    let audit_before = audit_rows(&mut su);
    assert_eq!(audit_before.len(), 1, "{audit_before:?}");
    let mut rc = s.reader();

    for (who, c) in [(w.as_str(), &mut wc), (r.as_str(), &mut rc)] {
        for sql in lifecycle_calls().into_iter().chain(primitive_calls()) {
            expect_fail(c, who, sql, &["42501"]);
        }
        for sql in direct_changes() {
            expect_fail(c, who, sql, &["42501"]);
        }
        // The guards are ENABLE ALWAYS, but turning triggers off is a
        // superuser's: a writer cannot even try.
        expect_fail(c, who, "SET session_replication_role = replica", &["42501"]);
        expect_fail(
            c,
            who,
            "ALTER TABLE es.events DISABLE TRIGGER events_no_update_delete",
            &["42501"],
        );
        // Granting itself the admin functions.
        expect_fail(
            c,
            who,
            &format!("SELECT es.grant_admin('{who}')"),
            &["42501"],
        );
        expect_fail(
            c,
            who,
            &format!("SELECT es.revoke_admin('{}')", s.a),
            &["42501"],
        );
        expect_fail(c, who, "SELECT es.delete_stream('acct-1')", &["42501"]);
    }

    // Marker events are the store's own.
    for sql in [
        "SELECT es.append_event('acct-1', '$StreamDeleted', '{}')",
        r#"SELECT es.append_event('acct-2', '$StreamDeleted', '{"reason": null, "versions": [1, 3], "events": 3, "hard": false}', expected_version => 3)"#,
        "SELECT es.append_event('acct-1', '$EventsRedacted', '{}')",
        "SELECT es.append_event('new-1', '$StreamDeleted', '{}')",
        "SELECT es.append_event('acct-1', '$Anything', '{}')",
        r#"SELECT es.append_events('acct-1', '[{"type": "$StreamDeleted", "data": {}}]')"#,
        r#"SELECT es.append_events('acct-2', '[{"type": "Deposited", "data": {"amount": 1}}, {"type": "$EventsRedacted", "data": {}}]')"#,
        r#"SELECT es.append_events('new-2', '[{"type": "Opened", "data": {}}, {"type": "$StreamDeleted", "data": {}}]')"#,
        // several streams in one call: a marker in the last batch fails the whole call
        r#"SELECT * FROM es.append_multi('[{"stream_id": "new-3", "events": [{"type": "Opened", "data": {}}]},
                                          {"stream_id": "acct-1", "events": [{"type": "$StreamDeleted", "data": {}}]}]')"#,
    ] {
        expect_fail(&mut wc, w, sql, &["22023"]);
        // a reader may not append at all
        expect_fail(&mut rc, r, sql, &["42501"]);
    }

    assert_eq!(
        fingerprint(&mut su),
        before,
        "a failed attack changed what is stored"
    );
    assert_eq!(audit_rows(&mut su), audit_before);
    assert_eq!(
        one_i64(
            &mut su,
            "SELECT count(*) FROM es.events WHERE event_type LIKE '$%'"
        ),
        0
    );
    assert_eq!(one_i64(&mut su, "SELECT count(*) FROM es.events"), 6);
    assert_eq!(
        one_i64(&mut su, "SELECT count(*) FROM es.archived_events"),
        2
    );
    assert_verifies(&mut su, "after the attacks");
    s.assert_not_escalated("writer and reader attacks");

    // Still works: the writer appends, the superuser truncates, and the
    // state does not change.
    ok(
        "append",
        wc.batch_execute(r#"SELECT es.append_event('acct-1', 'Deposited', '{"amount": 1}', expected_version => 3)"#),
    );
    let state = one_text(&mut rc, "SELECT state::text FROM es.load('acct-1')");
    assert_eq!(state, r#"{"balance": 16}"#);
    assert_eq!(
        one_i64(
            &mut su,
            "SELECT es.truncate_stream('acct-1', 3, 'still works')"
        ),
        2
    );
    assert_eq!(
        one_text(&mut rc, "SELECT state::text FROM es.load('acct-1')"),
        state
    );
    let audit = audit_rows(&mut su);
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!(audit[1], "postgres truncate_stream acct-1 [1,3) 2");
    // and the writer still cannot
    expect_fail(
        &mut wc,
        w,
        "SELECT es.truncate_stream('acct-1', 4)",
        &["42501"],
    );
    assert_verifies(&mut su, "after the truncation");
}

/// Statements that change the guarded tables directly.
fn guarded_changes() -> Vec<&'static str> {
    vec![
        "DELETE FROM es.events WHERE stream_id = 'g-1'",
        "DELETE FROM es.events",
        r#"UPDATE es.events SET data = '{"amount": 1000}' WHERE stream_id = 'g-1'"#,
        "TRUNCATE es.events",
        "TRUNCATE es.events CASCADE",
        "WITH d AS (DELETE FROM es.events WHERE stream_id = 'g-1' RETURNING 1) SELECT count(*) FROM d",
        "MERGE INTO es.events e USING (VALUES (1)) v(x) ON e.stream_id = 'g-1' WHEN MATCHED THEN DELETE",
        "MERGE INTO es.events e USING (VALUES (1)) v(x) ON e.stream_id = 'g-1' WHEN MATCHED THEN UPDATE SET data = '{}'",
        r#"INSERT INTO es.events SELECT * FROM es.events WHERE stream_id = 'g-1'
           ON CONFLICT ON CONSTRAINT events_pkey DO UPDATE SET data = '{"amount": 1000}'"#,
        "DELETE FROM es.archived_events WHERE stream_id = 'arch-1'",
        "UPDATE es.archived_events SET data = '{}'",
        "TRUNCATE es.archived_events",
        "MERGE INTO es.archived_events e USING (VALUES (1)) v(x) ON true WHEN MATCHED THEN DELETE",
        "DELETE FROM es.audit",
        "UPDATE es.audit SET by_role = 'nobody'",
        "TRUNCATE es.audit",
        "MERGE INTO es.audit a USING (VALUES (1)) v(x) ON true WHEN MATCHED THEN UPDATE SET reason = 'x'",
        "TRUNCATE es.events, es.archived_events, es.audit",
        "SELECT public.del_g()",
    ]
}

/// The guard holds for a superuser too: under session_replication_role =
/// replica, right after a lifecycle function succeeded in the same
/// transaction, and after one failed (before or inside its sanctioned
/// statement) in a savepoint.
#[test]
fn superuser_cannot_bypass_the_guard() {
    let s = Scene::new("guard");
    let mut su = s.su();
    ok(
        "events",
        su.batch_execute(
            r#"SELECT es.append_event('g-1', 'Deposited', format('{"amount": %s}', i)::jsonb) FROM generate_series(1, 5) i;
               SELECT es.append_event('arch-1', 'Opened', '{}');
               SELECT es.archive_stream('arch-1');
               CREATE FUNCTION public.del_g() RETURNS bigint LANGUAGE plpgsql AS $$
               BEGIN
                   DELETE FROM es.events WHERE stream_id = 'g-1';
                   RETURN 0;
               END $$;"#,
        ),
    );
    let before = fingerprint(&mut su);

    for sql in guarded_changes() {
        expect_fail(&mut su, "superuser", sql, &["55000"]);
    }
    // Under replica, ordinary triggers do not fire; these are ENABLE ALWAYS.
    ok(
        "replica",
        su.batch_execute("SET session_replication_role = replica"),
    );
    for sql in guarded_changes() {
        expect_fail(&mut su, "superuser, replica", sql, &["55000"]);
    }
    ok("origin", su.batch_execute("RESET session_replication_role"));
    // And in a transaction that set it locally.
    ok(
        "BEGIN",
        su.batch_execute("BEGIN; SET LOCAL session_replication_role = replica"),
    );
    for sql in guarded_changes() {
        expect_fail_in_tx(&mut su, "superuser, local replica", sql, "55000");
    }
    ok("ROLLBACK", su.batch_execute("ROLLBACK"));
    assert_eq!(fingerprint(&mut su), before);

    // The sanction ends with the primitive's statement: right after a
    // successful truncation in the same transaction, and in the same
    // statement, a direct change still fails.
    ok("BEGIN", su.batch_execute("BEGIN"));
    assert_eq!(one_i64(&mut su, "SELECT es.truncate_stream('g-1', 3)"), 2);
    for sql in guarded_changes() {
        expect_fail_in_tx(&mut su, "superuser after es.truncate_stream", sql, "55000");
    }
    for sql in [
        "SELECT es.truncate_stream('g-1', 4) + public.del_g()",
        "SELECT public.del_g() + es.truncate_stream('g-1', 4)",
        "SELECT es.truncate_stream('g-1', 4) FROM (SELECT 1) x WHERE public.del_g() = 0",
        "SELECT es.truncate_stream('g-1', 4), es.delete_stream('g-1'), public.del_g()",
    ] {
        expect_fail_in_tx(&mut su, "superuser in the same statement", sql, "55000");
    }
    ok("COMMIT", su.batch_execute("COMMIT"));
    assert_eq!(
        one_i64(
            &mut su,
            "SELECT count(*) FROM es.events WHERE stream_id = 'g-1'"
        ),
        3,
        "the truncation committed, nothing else"
    );

    // After a lifecycle function that failed before its statement (wrong
    // expected version) in a savepoint.
    let before = fingerprint(&mut su);
    ok("BEGIN", su.batch_execute("BEGIN"));
    expect_fail_in_tx(
        &mut su,
        "superuser",
        "SELECT es.delete_stream('g-1', expected_version => 1)",
        "40001",
    );
    expect_fail_in_tx(
        &mut su,
        "superuser",
        "SELECT es.delete_stream('nobody-1')",
        "42704",
    );
    expect_fail_in_tx(
        &mut su,
        "superuser",
        "SELECT es.truncate_stream('g-1', 99)",
        "22023",
    );
    expect_fail_in_tx(
        &mut su,
        "superuser",
        "SELECT es.unarchive_stream('g-1')",
        "55000",
    );
    for sql in guarded_changes() {
        expect_fail_in_tx(
            &mut su,
            "superuser after failed lifecycle calls",
            sql,
            "55000",
        );
    }
    ok("COMMIT", su.batch_execute("COMMIT"));
    assert_eq!(fingerprint(&mut su), before);

    // After lifecycle functions that failed inside their sanctioned
    // statement: another session holds the rows, the lock wait times out.
    let mut holder = s.su();
    ok(
        "hold the rows",
        holder.batch_execute(
            "BEGIN; SELECT 1 FROM es.events WHERE stream_id = 'g-1' FOR UPDATE;
                    SELECT 1 FROM es.archived_events WHERE stream_id = 'arch-1' FOR UPDATE;",
        ),
    );
    ok(
        "BEGIN",
        su.batch_execute("BEGIN; SET LOCAL lock_timeout = '200ms'"),
    );
    for sql in [
        "SELECT es.truncate_stream('g-1', 5)",
        r#"SELECT es.redact('g-1', '{"amount": 0}', 'x')"#,
        "SELECT es.archive_stream('g-1')",
        "SELECT es.delete_stream('g-1')",
        "SELECT es.unarchive_stream('arch-1')",
    ] {
        expect_fail_in_tx(&mut su, "superuser, rows held", sql, "55P03");
        for change in guarded_changes() {
            // TRUNCATE takes its table's lock before its trigger fires: it
            // waits for the holder (55P03) rather than reaching the guard.
            let codes: &[&str] = if change.starts_with("TRUNCATE") {
                &["55000", "55P03"]
            } else {
                &["55000"]
            };
            expect_fail_in_tx_any(
                &mut su,
                &format!("superuser after `{sql}` timed out"),
                change,
                codes,
            );
        }
    }
    ok("COMMIT", su.batch_execute("COMMIT"));
    ok("release", holder.batch_execute("ROLLBACK"));
    assert_eq!(fingerprint(&mut su), before);
    s.assert_not_escalated("guard");

    // Still works.
    assert_eq!(one_i64(&mut su, "SELECT es.delete_stream('g-1')"), 3);
    assert_eq!(one_i64(&mut su, "SELECT es.unarchive_stream('arch-1')"), 1);
    assert_eq!(
        one_i64(&mut su, "SELECT es.append_event('g-1', 'Deposited', '{}')"),
        7
    );
    assert_eq!(
        audit_rows(&mut su),
        [
            "postgres archive_stream arch-1 [1,2) 1",
            "postgres truncate_stream g-1 [1,3) 2",
            "postgres delete_stream g-1 [3,6) 3",
            "postgres unarchive_stream arch-1 [1,2) 1",
        ]
    );
    assert_verifies(&mut su, "after the guard's attacks");
}

/// W's code that runs inside an admin function (a fold function in es.load,
/// an inline projection's reset and handler in a rebuild) runs as W: it
/// cannot escalate, change events or the audit, or call the primitives.
#[test]
fn user_code_run_by_admin_functions_gets_no_rights() {
    let s = Scene::new("code");
    let w = &s.w;
    let mut wc = s.writer();
    ok(
        "W's fold, handler and reset",
        wc.batch_execute(&format!(
            "CREATE FUNCTION {w}.fold(state jsonb, e es.events) RETURNS jsonb LANGUAGE plpgsql AS $$
             DECLARE
                 outcome text;
             BEGIN
                 PERFORM {w}.escalate();
                 BEGIN
                     DELETE FROM es.events;
                     outcome := 'ok';
                 EXCEPTION WHEN OTHERS THEN
                     outcome := SQLSTATE;
                 END;
                 RETURN state || jsonb_build_object('n', coalesce((state->>'n')::int, 0) + 1,
                                                    'who', current_user, 'delete', outcome);
             END $$;
             CREATE TABLE {w}.model (stream_id text, version bigint, event_type text, email text);
             CREATE FUNCTION {w}.attempts(e_stream text) RETURNS void LANGUAGE plpgsql AS $$
             BEGIN
                 PERFORM {w}.escalate();
                 PERFORM {w}.try('delete events', 'DELETE FROM es.events');
                 PERFORM {w}.try('delete stream events',
                                 format('DELETE FROM es.events WHERE stream_id = %L', e_stream));
                 PERFORM {w}.try('update audit', 'UPDATE es.audit SET reason = ''x''');
                 PERFORM {w}.try('insert audit',
                                 'INSERT INTO es.audit (by_role, operation, event_count) VALUES (''x'', ''redact'', 0)');
                 PERFORM {w}.try('remove events',
                                 format('SELECT es._remove_events(%L, 100, ''delete_stream'', ''x'', ''{{}}'')', e_stream));
                 PERFORM {w}.try('redact events',
                                 format('SELECT es._redact_events(%L, ''{{\"email\": \"x\"}}'', NULL, ''x'', ''{{}}'')', e_stream));
                 PERFORM {w}.try('move events', format('SELECT es._move_events(%L, true, ''x'')', e_stream));
                 PERFORM {w}.try('delete_stream', format('SELECT es.delete_stream(%L)', e_stream));
                 PERFORM {w}.try('set lifecycle', 'UPDATE es.stream_lifecycle SET first_version = 1');
                 PERFORM {w}.try('replica', 'SET session_replication_role = replica');
             END $$;
             CREATE FUNCTION {w}.h(e es.events) RETURNS void LANGUAGE plpgsql AS $$
             BEGIN
                 INSERT INTO {w}.log (who, what, outcome)
                     VALUES (current_user, 'handler ' || e.event_type || ' ' || e.stream_id || '@' || e.version, 'ran');
                 PERFORM {w}.attempts(e.stream_id);
                 INSERT INTO {w}.model VALUES (e.stream_id, e.version, e.event_type, e.data->>'email');
             END $$;
             CREATE FUNCTION {w}.reset() RETURNS void LANGUAGE plpgsql AS $$
             BEGIN
                 INSERT INTO {w}.log (who, what, outcome) VALUES (current_user, 'reset', 'ran');
                 PERFORM {w}.attempts('wx-1');
                 DELETE FROM {w}.model;
             END $$;
             SELECT es.create_projection('seclc_model', '{w}.h(es.events)', 'inline', NULL, ARRAY['wx'], '{w}.reset()');"
        )),
    );
    let mut su = s.su();
    ok(
        "the superuser defines the aggregate with W's fold",
        su.batch_execute(&format!(
            "SELECT es.define_aggregate('wx', fold => '{w}.fold(jsonb, es.events)'::regprocedure, snapshot_every => 2)"
        )),
    );
    // W's streams: for each admin, one to truncate (and archive), one to
    // redact, one to delete.
    for i in 1..=6 {
        let n = if i % 3 == 1 { 5 } else { 3 };
        ok(
            "W's appends",
            wc.batch_execute(&format!(
                "SELECT es.append_event('wx-{i}', 'Added', jsonb_build_object('email', 'u{i}@example.com', 'k', k))
                   FROM generate_series(1, {n}) k"
            )),
        );
    }
    assert!(s.unexpected_log_rows(&mut su).is_empty());
    s.assert_not_escalated("W's own appends");
    let events_before = one_i64(&mut su, "SELECT count(*) FROM es.events");
    assert_eq!(events_before, 22);

    let mut admin = s.admin();
    let admin_name = s.a.clone();
    let mut expected_audit: Vec<String> = Vec::new();
    for (round, (who, c)) in [("postgres".to_string(), &mut su), (admin_name, &mut admin)]
        .into_iter()
        .enumerate()
    {
        let base = round * 3;
        let (s1, s2, s3) = (
            format!("wx-{}", base + 1),
            format!("wx-{}", base + 2),
            format!("wx-{}", base + 3),
        );
        let load = |c: &mut Client, id: &str| -> (i64, String) {
            let row = ok(
                "es.load",
                c.query_one("SELECT version, state::text FROM es.load($1)", &[&id]),
            );
            (row.get(0), row.get(1))
        };
        let state_before = load(c, &s1);
        assert_eq!(
            state_before,
            (
                5,
                r#"{"n": 5, "who": "W", "delete": "42501"}"#.replace("W", &s.w)
            ),
            "{who}: W's fold runs as W, and its DELETE is refused"
        );
        s.assert_not_escalated(&format!("{who}: es.load"));

        assert_eq!(
            ok(
                "truncate",
                c.query_one("SELECT es.truncate_stream($1, 3, 'old')", &[&s1])
            )
            .get::<_, i64>(0),
            2
        );
        s.assert_not_escalated(&format!("{who}: es.truncate_stream"));
        assert_eq!(
            load(c, &s1),
            state_before,
            "{who}: truncation keeps the state"
        );
        assert_eq!(
            ok(
                "archive",
                c.query_one("SELECT es.archive_stream($1)", &[&s1])
            )
            .get::<_, i64>(0),
            3
        );
        assert_eq!(load(c, &s1), state_before, "{who}: archived, still loads");
        assert_eq!(
            ok(
                "unarchive",
                c.query_one("SELECT es.unarchive_stream($1)", &[&s1])
            )
            .get::<_, i64>(0),
            3
        );
        s.assert_not_escalated(&format!("{who}: archive and unarchive"));

        let resets_before = one_i64(
            &mut s.su(),
            &format!("SELECT count(*) FROM {w}.log WHERE what = 'reset'"),
        );
        assert_eq!(
            ok(
                "redact",
                c.query_one(
                    r#"SELECT es.redact($1, '{"email": "[redacted]"}', 'gdpr')"#,
                    &[&s2]
                )
            )
            .get::<_, i64>(0),
            3
        );
        s.assert_not_escalated(&format!("{who}: es.redact"));
        assert_eq!(
            ok(
                "delete",
                c.query_one("SELECT es.delete_stream($1, 3)", &[&s3])
            )
            .get::<_, i64>(0),
            3
        );
        s.assert_not_escalated(&format!("{who}: es.delete_stream"));
        let (v, state) = load(c, &s2);
        assert_eq!(v, 4);
        assert_eq!(
            state,
            r#"{"n": 3, "who": "W", "delete": "42501"}"#.replace("W", &s.w)
        );
        assert_eq!(
            load(c, &s3),
            (4, "{}".to_string()),
            "{who}: deleted, afresh"
        );
        s.assert_not_escalated(&format!("{who}: es.load after the changes"));

        let mut check = s.su();
        // The rebuilds ran W's reset, as W.
        let resets = one_i64(
            &mut check,
            &format!("SELECT count(*) FROM {w}.log WHERE what = 'reset' AND who = '{w}'"),
        );
        assert_eq!(
            resets - resets_before,
            2,
            "{who}: es.redact and es.delete_stream each rebuild W's projection once"
        );
        let unexpected = s.unexpected_log_rows(&mut check);
        assert!(
            unexpected.is_empty(),
            "{who}: W's code ran with other rights or got through: {unexpected:?}"
        );
        let outcomes: Vec<String> = ok(
            "outcomes",
            check.query(
                &format!("SELECT DISTINCT what || ' ' || outcome FROM {w}.log WHERE outcome <> 'ran' ORDER BY 1"),
                &[],
            ),
        )
        .iter()
        .map(|r| r.get(0))
        .collect();
        assert_eq!(
            outcomes,
            [
                "delete events 42501",
                "delete stream events 42501",
                "delete_stream 42501",
                "insert audit 42501",
                "move events 42501",
                "redact events 42501",
                "remove events 42501",
                "replica 42501",
                "set lifecycle 42501",
                "update audit 42501",
            ],
            "{who}"
        );
        // The read model was rebuilt from what is stored now.
        let model: Vec<String> = ok(
            "model",
            check.query(
                &format!(
                    "SELECT concat_ws(' ', stream_id, version, event_type, email) FROM {w}.model
                      WHERE stream_id IN ($1, $2, $3) ORDER BY stream_id, version"
                ),
                &[&s1, &s2, &s3],
            ),
        )
        .iter()
        .map(|r| r.get(0))
        .collect();
        let n1 = base + 1;
        let n3 = base + 3;
        assert_eq!(
            model,
            [
                format!("{s1} 3 Added u{n1}@example.com"),
                format!("{s1} 4 Added u{n1}@example.com"),
                format!("{s1} 5 Added u{n1}@example.com"),
                format!("{s2} 1 Added [redacted]"),
                format!("{s2} 2 Added [redacted]"),
                format!("{s2} 3 Added [redacted]"),
                format!("{s2} 4 $EventsRedacted"),
                format!("{s3} 4 $StreamDeleted"),
            ],
            "{who}: the model after the rebuilds (n3 = {n3})"
        );
        // Events and audit: exactly what the admin functions did.
        let per_stream: Vec<(String, i64)> = ok(
            "per stream",
            check.query(
                "SELECT stream_id, count(*) FROM es.events WHERE stream_id IN ($1, $2, $3)
                  GROUP BY 1 ORDER BY 1",
                &[&s1, &s2, &s3],
            ),
        )
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
        assert_eq!(
            per_stream,
            [(s1.clone(), 3), (s2.clone(), 4), (s3.clone(), 1)],
            "{who}"
        );
        expected_audit.extend([
            format!("{who} truncate_stream {s1} [1,3) 2"),
            format!("{who} archive_stream {s1} [3,6) 3"),
            format!("{who} unarchive_stream {s1} [3,6) 3"),
            format!("{who} redact {s2} [1,4) 3"),
            format!("{who} delete_stream {s3} [1,4) 3"),
        ]);
        assert_eq!(audit_rows(&mut check), expected_audit, "{who}");
        assert_eq!(
            one_i64(&mut check, "SELECT count(*) FROM es.archived_events"),
            0
        );
        assert_verifies(&mut check, who.as_str());
    }
    // 22 appended, 2 + 2 truncated, 3 + 3 deleted, 2 + 2 markers each round.
    assert_eq!(one_i64(&mut su, "SELECT count(*) FROM es.events"), 16);
    s.assert_not_escalated("everything");

    // Still works: W appends on, the fold still runs as W.
    assert_eq!(
        one_i64(
            &mut wc,
            "SELECT es.append_event('wx-1', 'Added', '{}', expected_version => 5)"
        ),
        6
    );
    assert_eq!(
        one_text(&mut wc, "SELECT state::text FROM es.load('wx-1')"),
        r#"{"n": 6, "who": "W", "delete": "42501"}"#.replace("W", &s.w)
    );
    assert_eq!(
        one_i64(&mut wc, "SELECT es.append_event('wx-3', 'Added', '{}')"),
        5,
        "a soft-deleted stream goes on"
    );
    assert!(s.unexpected_log_rows(&mut su).is_empty());
}

/// es.audit.by_role is the role the session acts as: the admin, the admin
/// after SET ROLE, the member itself without it; never the extension's
/// owner whose rights the functions run with. Revoked, the admin is refused.
#[test]
fn audit_names_who_acted() {
    let s = Scene::new("audit");
    let (a, b) = (s.a.clone(), s.b.clone());
    let mut su = s.su();
    ok(
        "events",
        su.batch_execute(
            r#"SELECT es.append_event('au-' || i, 'Opened', '{"email": "x@example.com"}') FROM generate_series(1, 6) i;
               SELECT es.append_event('au-' || i, 'Touched', '{}') FROM generate_series(1, 6) i;
               SELECT es.append_event('au-' || i, 'Touched', '{}') FROM generate_series(1, 6) i;"#,
        ),
    );
    let owner = one_text(
        &mut su,
        "SELECT extowner::regrole::text FROM pg_extension WHERE extname = 'pg_eventsource'",
    );
    assert_eq!(owner, "postgres");

    let mut ac = s.admin();
    assert_eq!(
        one_i64(&mut ac, "SELECT es.truncate_stream('au-1', 2, 'a')"),
        1
    );
    ok(
        "retention",
        ac.batch_execute("SELECT es.set_retention('au', max_count => 2)"),
    );
    let mut bc = s.member();
    ok("SET ROLE", bc.batch_execute(&format!("SET ROLE {a}")));
    assert_eq!(
        one_i64(
            &mut bc,
            r#"SELECT es.redact('au-2', '{"email": "[redacted]"}', 'gdpr')"#
        ),
        1
    );
    // A member of A, acting as itself, with A's rights (inherited).
    ok("RESET ROLE", bc.batch_execute("RESET ROLE"));
    assert_eq!(one_i64(&mut bc, "SELECT es.archive_stream('au-3', 'b')"), 3);
    ok("SET ROLE", bc.batch_execute(&format!("SET ROLE {a}")));
    assert_eq!(one_i64(&mut bc, "SELECT es.delete_stream('au-4')"), 3);
    // A SET ROLE inside a transaction counts too.
    ok(
        "BEGIN",
        bc.batch_execute(&format!("RESET ROLE; BEGIN; SET LOCAL ROLE {a}")),
    );
    assert_eq!(one_i64(&mut bc, "SELECT es.unarchive_stream('au-3')"), 3);
    ok("COMMIT", bc.batch_execute("COMMIT"));
    assert_eq!(
        one_text(&mut bc, "SELECT current_user::text"),
        b,
        "SET LOCAL ended"
    );
    ok("SET ROLE", bc.batch_execute(&format!("SET ROLE {a}")));
    assert_eq!(one_i64(&mut su, "SELECT es.truncate_stream('au-5', 3)"), 2);
    // Retention run by A: au-5's three events already cut to its last two,
    // au-6's and the rest trimmed to 2 (au-4 deleted: one tombstone left).
    // Retention (the last 2 of each stream) run by A: au-2 (versions 1 to
    // 4) loses 2, au-3 and au-6 (1 to 3) lose 1 each; au-1 (2 to 3), au-4
    // (its tombstone, 4) and au-5 (3) keep theirs.
    let removed = one_i64(&mut ac, "SELECT es.apply_retention()");
    assert_eq!(removed, 4);

    let rows: Vec<String> = audit_rows(&mut su);
    let by: Vec<(String, String, String)> = ok(
        "by_role",
        su.query(
            "SELECT by_role, operation, coalesce(stream_id, '') FROM es.audit ORDER BY id",
            &[],
        ),
    )
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect();
    let expected = vec![
        (a.clone(), "truncate_stream".to_string(), "au-1".to_string()),
        (a.clone(), "redact".into(), "au-2".into()),
        (b.clone(), "archive_stream".into(), "au-3".into()),
        (a.clone(), "delete_stream".into(), "au-4".into()),
        (a.clone(), "unarchive_stream".into(), "au-3".into()),
        ("postgres".into(), "truncate_stream".into(), "au-5".into()),
        (a.clone(), "apply_retention".into(), "au-2".into()),
        (a.clone(), "apply_retention".into(), "au-3".into()),
        (a.clone(), "apply_retention".into(), "au-6".into()),
    ];
    assert_eq!(by, expected, "{rows:?}");
    // Only the superuser's own change names the extension's owner.
    assert_eq!(
        by.iter().filter(|(r, _, _)| r == &owner).count(),
        1,
        "{rows:?}"
    );

    // Admins get the lifecycle functions, not the primitives nor the tables.
    for sql in primitive_calls().into_iter().chain(direct_changes()) {
        let sql = sql.replace("'acct-1'", "'au-6'").replace("'acct'", "'au'");
        expect_fail(&mut ac, &a, &sql, &["42501"]);
        expect_fail(&mut bc, &format!("{b} as {a}"), &sql, &["42501"]);
    }
    // An admin cannot grant or revoke.
    let w = s.w.clone();
    expect_fail(
        &mut ac,
        &a,
        &format!("SELECT es.grant_admin('{w}')"),
        &["42501"],
    );
    expect_fail(
        &mut ac,
        &a,
        &format!("SELECT es.revoke_admin('{a}')"),
        &["42501"],
    );
    let audit_before = audit_rows(&mut su);
    assert_eq!(audit_before, rows);

    ok(
        "revoke_admin",
        su.batch_execute(&format!("SELECT es.revoke_admin('{a}')")),
    );
    let calls = [
        "SELECT es.delete_stream('au-6')",
        "SELECT es.truncate_stream('au-6', 2)",
        "SELECT es.set_retention('au', max_count => 1)",
        "SELECT es.set_retention('au')",
        "SELECT es.apply_retention()",
        r#"SELECT es.redact('au-6', '{"email": null}', 'x')"#,
        "SELECT es.archive_stream('au-6')",
        "SELECT es.unarchive_stream('au-3')",
    ];
    let mut ac = s.admin(); // a new session: nothing cached
    let mut bc2 = s.member();
    for sql in calls {
        expect_fail(&mut ac, &a, sql, &["42501"]);
        expect_fail(&mut bc, &format!("{b} as {a}"), sql, &["42501"]);
        expect_fail(&mut bc2, &b, sql, &["42501"]);
    }
    assert_eq!(audit_rows(&mut su), audit_before);
    // Still a writer, and the owner still administers.
    ok(
        "append",
        ac.batch_execute("SELECT es.append_event('au-6', 'Touched', '{}')"),
    );
    assert_eq!(one_i64(&mut su, "SELECT es.truncate_stream('au-6', 3)"), 1);
    // Granted again, it works again and is named again.
    ok(
        "grant_admin",
        su.batch_execute(&format!("SELECT es.grant_admin('{a}')")),
    );
    assert_eq!(
        one_i64(&mut ac, "SELECT es.archive_stream('au-6', 'again')"),
        2
    );
    let last = one_text(
        &mut su,
        "SELECT by_role || ' ' || operation FROM es.audit ORDER BY id DESC LIMIT 1",
    );
    assert_eq!(last, format!("{a} archive_stream"));
    assert_verifies(&mut su, "after the admins' changes");
}

/// The marker event types ($StreamDeleted, $EventsRedacted) are the
/// store's own: user code that runs while an admin function appends one
/// (an inline projection's handler gets the marker) must not be able to
/// append markers of its own, to another stream, with no audit row.
#[test]
fn user_code_cannot_forge_markers_during_admin_functions() {
    let s = Scene::new("forge");
    let w = &s.w;
    let mut su = s.su();
    ok(
        "the victim's stream",
        su.batch_execute(
            r#"SELECT es.define_aggregate('vic', reducers => '{"Deposited": [{"add": "balance", "from": "$.amount"}]}');
               SELECT es.append_event('vic-1', 'Deposited', '{"amount": 10}');
               SELECT es.append_event('vic-1', 'Deposited', '{"amount": 20}');"#,
        ),
    );
    let mut wc = s.writer();
    ok(
        "W's inline projection",
        wc.batch_execute(&format!(
            r#"CREATE FUNCTION {w}.h(e es.events) RETURNS void LANGUAGE plpgsql AS $$
               BEGIN
                   INSERT INTO {w}.log (who, what, outcome)
                       VALUES (current_user, 'handler ' || e.event_type || ' ' || e.stream_id, 'ran');
                   IF e.event_type LIKE '$%' THEN
                       PERFORM {w}.try('forge $StreamDeleted',
                           'SELECT es.append_event(''vic-1'', ''$StreamDeleted'', ''{{"forged": true}}'')');
                       PERFORM {w}.try('forge $EventsRedacted',
                           'SELECT es.append_events(''vic-1'', ''[{{"type": "$EventsRedacted", "data": {{}}}}]'')');
                       PERFORM {w}.try('forge in a new stream',
                           'SELECT es.append_event(''vic-2'', ''$StreamDeleted'', ''{{}}'')');
                   END IF;
               END $$;
               CREATE FUNCTION {w}.reset() RETURNS void LANGUAGE plpgsql AS $$ BEGIN NULL; END $$;
               SELECT es.create_projection('seclc_forge', '{w}.h(es.events)', 'inline', NULL, ARRAY['acct'], '{w}.reset()');
               SELECT es.append_event('acct-1', 'Opened', '{{"email": "w@example.com"}}');
               SELECT es.append_event('acct-2', 'Opened', '{{"email": "w@example.com"}}');"#
        )),
    );
    let mut ac = s.admin();
    assert_eq!(one_i64(&mut ac, "SELECT es.delete_stream('acct-1')"), 1);
    assert_eq!(
        one_i64(
            &mut ac,
            r#"SELECT es.redact('acct-2', '{"email": "[redacted]"}', 'gdpr')"#
        ),
        1
    );
    assert_eq!(
        one_i64(&mut su, "SELECT es.delete_stream('acct-2', hard => true)"),
        2
    );
    s.assert_not_escalated("markers");

    let log: Vec<String> = ok(
        "log",
        su.query(
            &format!(
                "SELECT DISTINCT what || ' -> ' || outcome FROM {w}.log WHERE what LIKE 'forge%' ORDER BY 1"
            ),
            &[],
        ),
    )
    .iter()
    .map(|r| r.get(0))
    .collect();
    let victims: Vec<String> = ok(
        "victim's events",
        su.query(
            "SELECT concat_ws(' ', stream_id, version, event_type, data) FROM es.events
              WHERE stream_type = 'vic' ORDER BY global_position",
            &[],
        ),
    )
    .iter()
    .map(|r| r.get(0))
    .collect();
    let victim_state = one_text(&mut su, "SELECT state::text FROM es.load('vic-1')");
    assert_eq!(
        victims,
        [
            r#"vic-1 1 Deposited {"amount": 10}"#,
            r#"vic-1 2 Deposited {"amount": 20}"#
        ],
        "W's handler appended markers to another stream while an admin function ran \
         (W's log: {log:?}; es.load('vic-1') now gives {victim_state}; es.audit: {:?})",
        audit_rows(&mut su)
    );
    assert_eq!(
        log,
        [
            "forge $EventsRedacted -> 22023",
            "forge $StreamDeleted -> 22023",
            "forge in a new stream -> 22023",
        ]
    );
    assert_eq!(
        one_text(&mut su, "SELECT state::text FROM es.load('vic-1')"),
        r#"{"balance": 30}"#
    );
    // The audit names exactly the three changes.
    assert_eq!(audit_rows(&mut su).len(), 3);
    // Still works: W cannot append them itself either.
    expect_fail(
        &mut wc,
        w,
        "SELECT es.append_event('vic-1', '$StreamDeleted', '{}')",
        &["22023"],
    );
    ok(
        "append",
        wc.batch_execute(r#"SELECT es.append_event('vic-1', 'Deposited', '{"amount": 1}')"#),
    );
    assert_verifies(&mut su, "after the forgery attempts");
}
