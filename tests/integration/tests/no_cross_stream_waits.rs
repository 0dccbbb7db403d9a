//! Appends to different streams never wait on each other: an open
//! transaction that appended to one stream does not hold back appends to any
//! other stream, of another type or of the same type.
//!
//! The waiting side runs with `lock_timeout = '2s'`: a wait on any lock (a
//! global or per-type lock, or a row another append keeps locked) makes its
//! append fail with SQLSTATE 55P03 instead of succeeding.

use pg_eventsource_integration::{
    append, append_batch, describe, sqlstate, stream_version, TestDb,
};
use postgres::error::SqlState;
use postgres::Client;

fn must_not_wait(what: &str, r: Result<i64, postgres::Error>) -> i64 {
    match r {
        Ok(v) => v,
        Err(e) if sqlstate(&e) == Some(&SqlState::LOCK_NOT_AVAILABLE) => panic!(
            "{what} waited for the open transaction's append to another stream (lock timeout: {})",
            describe(&e)
        ),
        Err(e) => panic!("{what} failed: {}", describe(&e)),
    }
}

/// A (open transaction, appended to `order-1`) and B (lock_timeout 2s).
fn open_a_and_b(db: &TestDb) -> (Client, Client) {
    let mut a = db.connect();
    let mut b = db.connect();
    b.batch_execute("SET lock_timeout = '2s'").unwrap();
    a.batch_execute("BEGIN").unwrap();
    let v = append(&mut a, "order-1", "OrderPlaced", r#"{"by": "A"}"#, Some(0))
        .unwrap_or_else(|e| panic!("A's append: {}", describe(&e)));
    assert_eq!(v, 1);
    (a, b)
}

#[test]
fn appends_to_different_streams_do_not_wait_on_each_other() {
    let db = TestDb::create_warm("no_cross_stream_waits");
    let (mut a, mut b) = open_a_and_b(&db);

    // Another stream of another type.
    let r = append(&mut b, "invoice-1", "InvoiceIssued", r#"{"by": "B"}"#, None);
    assert_eq!(must_not_wait("B's append to invoice-1", r), 1);
    // Another stream of the same type (order), new, with expected version 0.
    let r = append(&mut b, "order-2", "OrderPlaced", r#"{"by": "B"}"#, Some(0));
    assert_eq!(must_not_wait("B's append to order-2", r), 1);
    // Again, with the exact expected version.
    let r = append(&mut b, "order-2", "OrderPaid", r#"{"by": "B"}"#, Some(1));
    assert_eq!(must_not_wait("B's second append to order-2", r), 2);
    // Same type given explicitly, as a batch, inside a transaction of B's own.
    b.batch_execute("BEGIN").unwrap();
    let r = b
        .query_one(
            "SELECT es.append_events($1, $2::text::jsonb, expected_version => 0, stream_type => 'order')",
            &[
                &"order-3",
                &r#"[{"type": "OrderPlaced", "data": {}}, {"type": "OrderPaid", "data": {}}]"#,
            ],
        )
        .map(|r| r.get(0));
    assert_eq!(must_not_wait("B's batch append to order-3", r), 2);
    b.batch_execute("COMMIT").unwrap();
    // A stream whose id has no type prefix.
    let r = append_batch(&mut b, "loose", r#"[{"type": "Noted", "data": 1}]"#, None);
    assert_eq!(must_not_wait("B's append to loose", r), 1);

    // Sanity check of the method: the same stream as A does wait, and with
    // lock_timeout that surfaces as 55P03 instead of a success.
    match append(&mut b, "order-1", "OrderPaid", r#"{"by": "B"}"#, None) {
        Err(e) if sqlstate(&e) == Some(&SqlState::LOCK_NOT_AVAILABLE) => {}
        Err(e) => panic!(
            "B's append to A's stream failed unexpectedly: {}",
            describe(&e)
        ),
        Ok(v) => {
            panic!("B appended to order-1 (version {v}) while A's append to it was uncommitted")
        }
    }

    a.batch_execute("COMMIT").unwrap();

    let mut c = db.connect();
    assert_eq!(stream_version(&mut c, "order-1"), 1);
    assert_eq!(stream_version(&mut c, "order-2"), 2);
    assert_eq!(stream_version(&mut c, "order-3"), 2);
    assert_eq!(stream_version(&mut c, "invoice-1"), 1);
    assert_eq!(stream_version(&mut c, "loose"), 1);
    let by_a: String = c
        .query_one(
            "SELECT data->>'by' FROM es.events WHERE stream_id = 'order-1'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(by_a, "A");
    let types: Vec<(String, String)> = c
        .query(
            "SELECT stream_id, stream_type FROM es.streams ORDER BY stream_id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let types: Vec<(&str, &str)> = types
        .iter()
        .map(|(s, t)| (s.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        types,
        vec![
            ("invoice-1", "invoice"),
            ("loose", "loose"),
            ("order-1", "order"),
            ("order-2", "order"),
            ("order-3", "order"),
            ("warmup-0", "warmup"),
        ]
    );
}

/// The very first appends in a new database: an open transaction that made
/// the first append must not hold back appends to other streams either.
#[test]
fn first_appends_in_a_new_database_do_not_wait_on_each_other() {
    let db = TestDb::create("no_cross_stream_waits_first_append");
    let (mut a, mut b) = open_a_and_b(&db);

    let r = append(&mut b, "invoice-1", "InvoiceIssued", r#"{"by": "B"}"#, None);
    // End A before asserting, so that a failure leaves nothing waiting.
    a.batch_execute("COMMIT").unwrap();
    let what = "B's append to invoice-1 while A's transaction, which made the database's first append, is open";
    assert_eq!(must_not_wait(what, r), 1);
    let r = append(&mut b, "order-2", "OrderPlaced", r#"{"by": "B"}"#, Some(0));
    assert_eq!(must_not_wait("B's append to order-2", r), 1);
}
