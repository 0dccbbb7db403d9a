//! An append to an existing stream writes the stream's row and the event
//! without a plan (src/pg/table_write.rs): the heap, every index, the
//! constraints. These tests hold it to what the statement it replaces does,
//! where a user relies on it: indexes (the store's and a user's own) hold
//! every row (amcheck), a user's trigger still fires, a user's column still
//! gets its default, a user's CHECK constraint still refuses, and a writer
//! that waited for a concurrent append re-checks against the committed row
//! (READ COMMITTED) or fails with 40001 (REPEATABLE READ).

use pg_eventsource_integration::{
    append, backend_pid, code_of, describe, exec, is_waiting_for_lock, one_i64, wait_until, TestDb,
};
use std::thread;
use std::time::Duration;

/// Every btree index of es.events and es.streams checked by amcheck, with
/// `heapallindexed`: each visible row of the table has its entry.
fn indexes_hold_every_row(c: &mut postgres::Client) {
    let rows = c
        .query(
            "SELECT i.indexrelid::regclass::text, bt_index_check(i.indexrelid, true)::text
               FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
               JOIN pg_class x ON x.oid = i.indexrelid JOIN pg_am a ON a.oid = x.relam
              WHERE t.oid IN ('es.events'::regclass, 'es.streams'::regclass) AND a.amname = 'btree'",
            &[],
        )
        .unwrap_or_else(|e| panic!("bt_index_check: {}", describe(&e)));
    assert!(rows.len() >= 8, "the store's indexes and the test's own");
}

#[test]
fn indexes_triggers_defaults_and_constraints_are_kept() {
    let db = TestDb::create("append_direct");
    let mut c = db.connect();
    exec(&mut c, "CREATE EXTENSION amcheck");
    // a user's own index (an expression, and a partial one) before any event
    exec(
        &mut c,
        "CREATE INDEX user_kind ON es.events (lower(event_type));
         CREATE INDEX user_big ON es.events (global_position) WHERE (data->>'n')::int > 5;",
    );
    for n in 1..=10 {
        append(
            &mut c,
            "acct-1",
            "Counted",
            &format!(r#"{{"n": {n}}}"#),
            None,
        )
        .unwrap_or_else(|e| panic!("append {n}: {}", describe(&e)));
        append(&mut c, &format!("acct-{n}"), "Counted", r#"{"n": 0}"#, None).unwrap();
    }
    // an event too big for a page goes to TOAST, and reads back whole
    let big = format!(r#"{{"n": 100, "text": "{}"}}"#, "x".repeat(200_000));
    append(&mut c, "acct-1", "Counted", &big, None).unwrap();
    assert_eq!(
        one_i64(
            &mut c,
            "SELECT length(data->>'text')::bigint FROM es.events WHERE stream_id = 'acct-1' AND version = 12"
        ),
        200_000
    );
    indexes_hold_every_row(&mut c);
    exec(&mut c, "SET enable_seqscan = off");
    assert_eq!(
        one_i64(
            &mut c,
            "SELECT count(*) FROM es.events WHERE lower(event_type) = 'counted'"
        ),
        21
    );
    assert_eq!(
        one_i64(
            &mut c,
            "SELECT count(*) FROM es.events WHERE (data->>'n')::int > 5"
        ),
        6
    );
    exec(&mut c, "RESET enable_seqscan");
    assert_eq!(
        one_i64(&mut c, "SELECT count(*) FROM es.verify()"),
        0,
        "the hash chain the direct write kept is the one es.verify folds"
    );

    // a trigger a user put on es.events fires for every append
    exec(
        &mut c,
        "CREATE TABLE seen (stream_id text, version bigint);
         CREATE FUNCTION record_seen() RETURNS trigger LANGUAGE plpgsql AS
           $$BEGIN INSERT INTO public.seen VALUES (NEW.stream_id, NEW.version); RETURN NULL; END$$;
         CREATE TRIGGER user_seen AFTER INSERT ON es.events FOR EACH ROW EXECUTE FUNCTION record_seen();",
    );
    append(&mut c, "acct-1", "Counted", r#"{"n": 11}"#, None).unwrap();
    append(&mut c, "acct-1", "Counted", r#"{"n": 12}"#, Some(13)).unwrap();
    assert_eq!(
        one_i64(
            &mut c,
            "SELECT count(*) FROM seen WHERE stream_id = 'acct-1' AND version IN (13, 14)"
        ),
        2,
        "the user's trigger saw both appends"
    );
    exec(&mut c, "DROP TRIGGER user_seen ON es.events");

    // a trigger on es.streams too
    exec(
        &mut c,
        "CREATE FUNCTION record_moved() RETURNS trigger LANGUAGE plpgsql AS
           $$BEGIN INSERT INTO public.seen VALUES ('moved:' || NEW.stream_id, NEW.version); RETURN NEW; END$$;
         CREATE TRIGGER user_moved BEFORE UPDATE ON es.streams FOR EACH ROW EXECUTE FUNCTION record_moved();",
    );
    append(&mut c, "acct-2", "Counted", r#"{"n": 1}"#, None).unwrap();
    assert_eq!(
        one_i64(
            &mut c,
            "SELECT count(*) FROM seen WHERE stream_id = 'moved:acct-2' AND version = 2"
        ),
        1
    );
    exec(&mut c, "DROP TRIGGER user_moved ON es.streams");

    // a column a user added, with a default: appends fill it
    exec(
        &mut c,
        "ALTER TABLE es.events ADD COLUMN tenant text NOT NULL DEFAULT 'acme'",
    );
    append(&mut c, "acct-3", "Counted", r#"{"n": 1}"#, None).unwrap();
    assert_eq!(
        one_i64(&mut c, "SELECT count(*) FROM es.events WHERE stream_id = 'acct-3' AND version = 2 AND tenant = 'acme'"),
        1
    );
    exec(&mut c, "ALTER TABLE es.events DROP COLUMN tenant");
    // ... and once it is dropped, appends write without it
    append(&mut c, "acct-3", "Counted", r#"{"n": 2}"#, None).unwrap();

    // a CHECK constraint a user added refuses, and nothing changes
    exec(
        &mut c,
        "ALTER TABLE es.events ADD CONSTRAINT small_n CHECK ((data->>'n')::int < 1000) NOT VALID",
    );
    let before = one_i64(&mut c, "SELECT es.stream_version('acct-4')");
    let e = append(&mut c, "acct-4", "Counted", r#"{"n": 5000}"#, None)
        .expect_err("the user's CHECK constraint refuses it");
    assert_eq!(code_of(&e), "23514", "{}", describe(&e));
    assert_eq!(
        one_i64(&mut c, "SELECT es.stream_version('acct-4')"),
        before
    );
    indexes_hold_every_row(&mut c);
    assert_eq!(one_i64(&mut c, "SELECT count(*) FROM es.verify()"), 0);
}

#[test]
fn a_writer_that_waited_rechecks_against_the_committed_row() {
    let db = TestDb::create_warm("append_direct_wait");
    let mut a = db.connect();
    let mut observer = db.connect();
    append(&mut a, "acct-1", "Counted", r#"{"n": 1}"#, None).unwrap();

    // READ COMMITTED, no expected version: the waiting append goes after
    exec(&mut a, "BEGIN");
    append(&mut a, "acct-1", "Counted", r#"{"n": 2}"#, None).unwrap();
    let b_db = db.name.clone();
    let mut b = pg_eventsource_integration::connect(&b_db);
    let b_pid = backend_pid(&mut b);
    let waiter = thread::spawn(move || append(&mut b, "acct-1", "Counted", r#"{"n": 3}"#, None));
    assert!(
        wait_until(Duration::from_secs(30), || is_waiting_for_lock(
            &mut observer,
            b_pid
        )),
        "the second append waits for the first's row lock"
    );
    exec(&mut a, "COMMIT");
    let v = waiter
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("{}", describe(&e)));
    assert_eq!(
        v, 3,
        "the waiting append took the version after the committed one"
    );

    // READ COMMITTED, expected version: the committed row no longer matches
    exec(&mut a, "BEGIN");
    append(&mut a, "acct-1", "Counted", r#"{"n": 4}"#, Some(3)).unwrap();
    let mut b = pg_eventsource_integration::connect(&b_db);
    let b_pid = backend_pid(&mut b);
    let waiter = thread::spawn(move || append(&mut b, "acct-1", "Counted", r#"{"n": 4}"#, Some(3)));
    assert!(wait_until(Duration::from_secs(30), || is_waiting_for_lock(
        &mut observer,
        b_pid
    )));
    exec(&mut a, "COMMIT");
    let e = waiter
        .join()
        .unwrap()
        .expect_err("expected version 3, but the committed row is at 4");
    assert_eq!(code_of(&e), "40001", "{}", describe(&e));
    assert!(
        describe(&e).contains("expected 3, actual 4"),
        "{}",
        describe(&e)
    );

    // REPEATABLE READ: a row moved after the snapshot is a serialization failure
    let mut b = pg_eventsource_integration::connect(&b_db);
    exec(&mut b, "BEGIN ISOLATION LEVEL REPEATABLE READ");
    assert_eq!(one_i64(&mut b, "SELECT es.stream_version('acct-1')"), 4);
    exec(&mut a, "BEGIN");
    append(&mut a, "acct-1", "Counted", r#"{"n": 5}"#, None).unwrap();
    let b_pid = backend_pid(&mut b);
    let waiter = thread::spawn(move || {
        let r = append(&mut b, "acct-1", "Counted", r#"{"n": 6}"#, None);
        (r, b)
    });
    assert!(wait_until(Duration::from_secs(30), || is_waiting_for_lock(
        &mut observer,
        b_pid
    )));
    exec(&mut a, "COMMIT");
    let (r, mut b) = waiter.join().unwrap();
    let e = r.expect_err("the stream moved after the transaction's snapshot");
    assert_eq!(code_of(&e), "40001", "{}", describe(&e));
    exec(&mut b, "ROLLBACK");
    assert_eq!(one_i64(&mut a, "SELECT es.stream_version('acct-1')"), 5);
    assert_eq!(
        one_i64(
            &mut a,
            "SELECT count(*) FROM es.events WHERE stream_id = 'acct-1'"
        ),
        5
    );
    assert_eq!(one_i64(&mut a, "SELECT count(*) FROM es.verify()"), 0);
}
