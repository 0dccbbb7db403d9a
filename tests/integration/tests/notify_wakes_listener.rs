//! Every committing transaction that appended events sends one
//! `NOTIFY es_events` whose JSON payload names what it appended; a client
//! blocked waiting on `LISTEN es_events` is woken by it. Transactions that
//! roll back, appends that fail, and transactions that append nothing send
//! nothing.

use pg_eventsource_integration::{append, append_batch, backend_pid, describe, TestDb};
use postgres::fallible_iterator::FallibleIterator;
use postgres::Client;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// How long one notification may take to arrive before the test fails.
const WAIT: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Note {
    channel: String,
    payload: String,
    process_id: i32,
}

/// The payload's fields, parsed by the server (`$1::jsonb`): a payload that
/// is not JSON fails the test with the server's message.
#[derive(Debug, PartialEq, Eq)]
struct Payload {
    events: i64,
    first_position: i64,
    last_position: i64,
    streams: Vec<String>,
    stream_types: Vec<String>,
    event_types: Vec<String>,
}

fn parse(c: &mut Client, payload: &str) -> Payload {
    let row = c
        .query_one(
            "SELECT jsonb_typeof(p) = 'object',
                    (p->>'events')::bigint, (p->>'first_position')::bigint, (p->>'last_position')::bigint,
                    ARRAY(SELECT jsonb_array_elements_text(p->'streams') ORDER BY 1),
                    ARRAY(SELECT jsonb_array_elements_text(p->'stream_types') ORDER BY 1),
                    ARRAY(SELECT jsonb_array_elements_text(p->'event_types') ORDER BY 1),
                    coalesce(jsonb_array_length(p->'streams'), -1),
                    coalesce(jsonb_array_length(p->'stream_types'), -1),
                    coalesce(jsonb_array_length(p->'event_types'), -1),
                    (SELECT count(DISTINCT x) FROM jsonb_array_elements_text(p->'streams') x),
                    (SELECT count(DISTINCT x) FROM jsonb_array_elements_text(p->'stream_types') x),
                    (SELECT count(DISTINCT x) FROM jsonb_array_elements_text(p->'event_types') x)
               FROM (SELECT $1::text::jsonb AS p) s",
            &[&payload],
        )
        .unwrap_or_else(|e| panic!("payload {payload:?} is not the JSON expected: {}", describe(&e)));
    assert!(
        row.get::<_, bool>(0),
        "payload {payload:?} is not a JSON object"
    );
    let p = Payload {
        events: row
            .get::<_, Option<i64>>(1)
            .unwrap_or_else(|| panic!("payload {payload:?} has no \"events\"")),
        first_position: row
            .get::<_, Option<i64>>(2)
            .unwrap_or_else(|| panic!("payload {payload:?} has no \"first_position\"")),
        last_position: row
            .get::<_, Option<i64>>(3)
            .unwrap_or_else(|| panic!("payload {payload:?} has no \"last_position\"")),
        streams: row.get(4),
        stream_types: row.get(5),
        event_types: row.get(6),
    };
    for (i, what) in [(7, "streams"), (8, "stream_types"), (9, "event_types")] {
        let (len, distinct): (i32, i64) = (row.get(i), row.get(i + 3));
        assert!(
            len >= 0,
            "payload {payload:?}: \"{what}\" is missing or not an array"
        );
        assert_eq!(
            distinct, len as i64,
            "payload {payload:?}: \"{what}\" lists a name twice"
        );
    }
    p
}

/// What the payload of a transaction that appended exactly the events of
/// `streams` must say, computed from es.events.
fn expected(c: &mut Client, streams: &[&str]) -> Payload {
    let streams: Vec<String> = streams.iter().map(|s| s.to_string()).collect();
    let row = c
        .query_one(
            "SELECT count(*), min(global_position), max(global_position),
                    ARRAY(SELECT DISTINCT stream_id FROM es.events WHERE stream_id = ANY ($1) ORDER BY 1),
                    ARRAY(SELECT DISTINCT stream_type FROM es.events WHERE stream_id = ANY ($1) ORDER BY 1),
                    ARRAY(SELECT DISTINCT event_type FROM es.events WHERE stream_id = ANY ($1) ORDER BY 1)
               FROM es.events WHERE stream_id = ANY ($1)",
            &[&streams],
        )
        .unwrap_or_else(|e| panic!("reading es.events: {}", describe(&e)));
    Payload {
        events: row.get(0),
        first_position: row.get::<_, Option<i64>>(1).unwrap_or(0),
        last_position: row.get::<_, Option<i64>>(2).unwrap_or(0),
        streams: row.get(3),
        stream_types: row.get(4),
        event_types: row.get(5),
    }
}

fn next_note(rx: &Receiver<Note>, what: &str) -> Note {
    match rx.recv_timeout(WAIT) {
        Ok(n) => n,
        Err(RecvTimeoutError::Timeout) => panic!(
            "the listener was not woken within {} s after {what}: no NOTIFY es_events arrived",
            WAIT.as_secs()
        ),
        Err(RecvTimeoutError::Disconnected) => {
            panic!("the listener thread ended (see its panic above) while waiting for {what}")
        }
    }
}

/// Checks one notification: channel, sender, and a payload that matches
/// what es.events holds for `streams` (all appended by that one transaction).
fn check(c: &mut Client, note: &Note, sender: i32, streams: &[&str], what: &str) {
    assert_eq!(note.channel, "es_events", "{what}: channel");
    assert_eq!(
        note.process_id, sender,
        "{what}: the notification came from another backend (payload {:?})",
        note.payload
    );
    let got = parse(c, &note.payload);
    let want = expected(c, streams);
    assert!(
        want.events > 0,
        "{what}: nothing was stored for {streams:?}"
    );
    assert_eq!(
        got, want,
        "{what}: the payload {:?} does not describe the transaction's events",
        note.payload
    );
}

fn ok<T>(what: &str, r: Result<T, postgres::Error>) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {}", describe(&e)))
}

#[test]
fn listener_gets_one_notification_per_committed_transaction() {
    let db = TestDb::create_warm("notify_wakes_listener");

    // The listener: LISTEN, then block on the connection and hand every
    // notification to the test as it arrives.
    let mut listener = db.connect();
    ok("LISTEN", listener.batch_execute("LISTEN es_events"));
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<Note>();
    let listening = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(300);
            let mut notes = listener.notifications();
            let mut it = notes.timeout_iter(Duration::from_millis(200));
            while !stop.load(SeqCst) {
                assert!(Instant::now() < deadline, "the listener ran out of time");
                match it.next() {
                    Ok(Some(n)) => {
                        let _ = tx.send(Note {
                            channel: n.channel().to_string(),
                            payload: n.payload().to_string(),
                            process_id: n.process_id(),
                        });
                    }
                    Ok(None) => {}
                    Err(e) => panic!("the listener's connection failed: {}", describe(&e)),
                }
            }
        })
    };

    let mut appender = db.connect();
    let sender = backend_pid(&mut appender);
    let mut reader = db.connect();

    // 1. A single append, autocommit: one notification.
    ok(
        "single append",
        append(
            &mut appender,
            "order-1",
            "OrderPlaced",
            r#"{"total": 10}"#,
            Some(0),
        ),
    );
    let n1 = next_note(&rx, "a single append");
    check(&mut reader, &n1, sender, &["order-1"], "single append");
    let p1 = parse(&mut reader, &n1.payload);
    assert_eq!(p1.events, 1);
    assert_eq!(p1.first_position, p1.last_position);

    // 2. One transaction: a single append, a batch to another stream (of
    // another type), and one more append to the first stream: one
    // notification for all five events.
    ok("BEGIN", appender.batch_execute("BEGIN"));
    ok(
        "tx single",
        append(
            &mut appender,
            "order-2",
            "OrderPlaced",
            r#"{"total": 20}"#,
            Some(0),
        ),
    );
    ok(
        "tx batch",
        append_batch(
            &mut appender,
            "invoice-2",
            r#"[{"type": "InvoiceIssued", "data": {"n": 1}},
                {"type": "InvoiceSent", "data": {"n": 2}},
                {"type": "InvoiceSent", "data": {"n": 3}}]"#,
            Some(0),
        ),
    );
    ok(
        "tx second append",
        append(
            &mut appender,
            "order-2",
            "OrderShipped",
            r#"{"carrier": "x"}"#,
            Some(1),
        ),
    );
    // Nothing may arrive before the commit: the marker below proves it,
    // since notifications arrive in commit order.
    ok("COMMIT", appender.batch_execute("COMMIT"));
    let n2 = next_note(&rx, "a transaction with three appends");
    check(
        &mut reader,
        &n2,
        sender,
        &["order-2", "invoice-2"],
        "transaction with a single append, a batch and another append",
    );
    let p2 = parse(&mut reader, &n2.payload);
    assert_eq!(
        p2.events, 5,
        "one notification counts all of the transaction's events"
    );
    assert!(p2.first_position > p1.last_position);

    // 3. Nothing for: a rolled-back transaction (single and batch), a failed
    // append (wrong expected version), a transaction that only reads, and
    // a savepoint that is rolled back (the transaction's other appends are
    // still announced, without the rolled-back ones).
    ok("BEGIN", appender.batch_execute("BEGIN"));
    ok(
        "rolled back single",
        append(&mut appender, "ghost-1", "Ghost", "{}", Some(0)),
    );
    ok(
        "rolled back batch",
        append_batch(
            &mut appender,
            "ghost-2",
            r#"[{"type": "Ghost", "data": 1}, {"type": "Ghost", "data": 2}]"#,
            None,
        ),
    );
    ok("ROLLBACK", appender.batch_execute("ROLLBACK"));
    let err = append(&mut appender, "order-1", "OrderPlaced", "{}", Some(0))
        .expect_err("an append with a stale expected version must fail");
    assert_eq!(
        err.code().map(|c| c.code()),
        Some("40001"),
        "stale expected version: {}",
        describe(&err)
    );
    ok(
        "read-only transaction",
        appender.batch_execute(
            "BEGIN; SELECT count(*) FROM es.read_all(0, 10); SELECT es.stream_version('order-1'); COMMIT",
        ),
    );

    ok("BEGIN", appender.batch_execute("BEGIN"));
    ok(
        "kept append",
        append(&mut appender, "order-3", "OrderPlaced", "{}", Some(0)),
    );
    ok("SAVEPOINT", appender.batch_execute("SAVEPOINT s"));
    ok(
        "append rolled back to the savepoint",
        append_batch(
            &mut appender,
            "ghost-3",
            r#"[{"type": "Ghost", "data": 1}, {"type": "GhostToo", "data": 2}]"#,
            Some(0),
        ),
    );
    ok(
        "ROLLBACK TO SAVEPOINT",
        appender.batch_execute("ROLLBACK TO SAVEPOINT s"),
    );
    ok("released savepoint", appender.batch_execute("SAVEPOINT t"));
    ok(
        "append in a released savepoint",
        append(&mut appender, "order-3", "OrderPaid", "{}", Some(1)),
    );
    ok("RELEASE", appender.batch_execute("RELEASE SAVEPOINT t"));
    ok("COMMIT", appender.batch_execute("COMMIT"));
    let n3 = next_note(&rx, "a transaction with a rolled-back savepoint");
    check(
        &mut reader,
        &n3,
        sender,
        &["order-3"],
        "the first notification after a rolled-back transaction, a failed append, a read-only \
         transaction and a rolled-back savepoint (a notification for any of them would come first)",
    );
    assert_eq!(parse(&mut reader, &n3.payload).events, 2);
    let ghosts: i64 = reader
        .query_one(
            "SELECT count(*) FROM es.events WHERE stream_id LIKE 'ghost-%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(ghosts, 0, "rolled-back events were stored");

    // 4. An append from another backend wakes the same listener; the sender
    // is that backend.
    let mut other = db.connect();
    let other_pid = backend_pid(&mut other);
    ok(
        "other backend's batch",
        append_batch(
            &mut other,
            "invoice-9",
            r#"[{"type": "InvoiceIssued", "data": {}}, {"type": "InvoiceIssued", "data": {}}]"#,
            None,
        ),
    );
    let n4 = next_note(&rx, "another backend's batch");
    check(
        &mut reader,
        &n4,
        other_pid,
        &["invoice-9"],
        "another backend's batch",
    );

    // 5. A last append: the next notification must be its own, so nothing
    // else (a second notification for an earlier transaction) was sent.
    ok(
        "marker append",
        append(&mut appender, "marker-1", "Marked", "{}", Some(0)),
    );
    let n5 = next_note(&rx, "the marker append");
    check(
        &mut reader,
        &n5,
        sender,
        &["marker-1"],
        "the notification after the other backend's batch",
    );

    stop.store(true, SeqCst);
    listening.join().expect("the listener thread panicked");
    let extra: Vec<Note> = rx.try_iter().collect();
    assert!(extra.is_empty(), "notifications nobody expected: {extra:?}");
    println!(
        "payloads:\n  {}\n  {}\n  {}\n  {}",
        n1.payload, n2.payload, n3.payload, n4.payload
    );
}
