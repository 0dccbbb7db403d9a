//! `pg_dump` (plain format) restored into a new, empty database keeps every
//! event and stream, `es.read_all` hands all of them out, and appends after
//! the restore continue every stream and the global order.

use pg_eventsource_integration::{
    describe, dump_and_restore, is_serialization_failure, message, read_all_until, sqlstate, TestDb,
};
use postgres::error::SqlState;
use postgres::Client;
use std::time::Duration;

/// `es.append_event` with every argument.
#[allow(clippy::too_many_arguments)]
fn append_full(
    c: &mut Client,
    stream: &str,
    event_type: &str,
    data: &str,
    expected: Option<i64>,
    metadata: Option<&str>,
    event_id: Option<&str>,
    stream_type: Option<&str>,
) -> i64 {
    c.query_one(
        "SELECT es.append_event($1, $2, $3::text::jsonb, expected_version => $4,
                                metadata => $5::text::jsonb, event_id => $6::text::uuid,
                                stream_type => $7)",
        &[
            &stream,
            &event_type,
            &data,
            &expected,
            &metadata,
            &event_id,
            &stream_type,
        ],
    )
    .unwrap_or_else(|e| panic!("append to {stream}: {}", describe(&e)))
    .get(0)
}

fn append_many(
    c: &mut Client,
    stream: &str,
    events: &str,
    expected: Option<i64>,
    stream_type: Option<&str>,
) -> i64 {
    c.query_one(
        "SELECT es.append_events($1, $2::text::jsonb, expected_version => $3, stream_type => $4)",
        &[&stream, &events, &expected, &stream_type],
    )
    .unwrap_or_else(|e| panic!("append_events to {stream}: {}", describe(&e)))
    .get(0)
}

/// The rows of a query, each as one text value.
fn texts(c: &mut Client, sql: &str) -> Vec<String> {
    c.query(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {}", describe(&e)))
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn fill(c: &mut Client) {
    // Single appends, with metadata and a given event id.
    assert_eq!(
        append_full(
            c,
            "order-1",
            "OrderPlaced",
            r#"{"total": 12.50, "items": [{"sku": "A-1", "qty": 2}]}"#,
            Some(0),
            None,
            None,
            None
        ),
        1
    );
    assert_eq!(
        append_full(
            c,
            "order-1",
            "OrderPaid",
            r#"{"amount": 12.5}"#,
            Some(1),
            Some(r#"{"user": "alice", "trace": {"id": 7}}"#),
            None,
            None
        ),
        2
    );
    assert_eq!(
        append_full(
            c,
            "order-1",
            "OrderShipped",
            r#"{"carrier": "naïve ☃ \"quoted\" \\ back\tslash", "deep": {"a": [1, 2.5, null, true, {"b": []}]}}"#,
            Some(2),
            Some(r#"{"causation": "00000000-0000-4000-8000-000000000001"}"#),
            Some("0190a3c5-0000-7000-8000-0000000000a1"),
            None,
        ),
        3
    );
    // Scalar and null payloads.
    assert_eq!(
        append_full(c, "misc-1", "Number", "42", None, None, None, None),
        1
    );
    assert_eq!(
        append_full(
            c,
            "misc-1",
            "Text",
            r#""just a string""#,
            None,
            None,
            None,
            None
        ),
        2
    );
    assert_eq!(
        append_full(c, "misc-1", "Nothing", "null", None, Some("{}"), None, None),
        3
    );
    // A batch on a new stream, with metadata and ids on some events.
    assert_eq!(
        append_many(
            c,
            "order-2",
            r#"[{"type": "OrderPlaced", "data": {"total": 1}},
                {"type": "ItemAdded", "data": {"sku": "B-2"}, "metadata": {"user": "bob"}},
                {"type": "ItemAdded", "data": {"sku": "C-3"}, "id": "0190a3c5-0000-7000-8000-0000000000b2"},
                {"type": "OrderPaid", "data": [1, 2, 3], "metadata": {"user": "bob"}, "id": "0190a3c5-0000-7000-8000-0000000000b3"}]"#,
            Some(0),
            None,
        ),
        4
    );
    // An explicit stream type.
    assert_eq!(
        append_full(
            c,
            "acct-9",
            "Opened",
            r#"{"owner": "carol"}"#,
            Some(0),
            None,
            None,
            Some("account")
        ),
        1
    );
    assert_eq!(
        append_many(
            c,
            "acct-9",
            r#"[{"type": "Deposited", "data": {"n": 100}}, {"type": "Withdrawn", "data": {"n": 30}}]"#,
            Some(1),
            Some("account")
        ),
        3
    );
    // Several streams in one transaction.
    c.batch_execute("BEGIN").unwrap();
    assert_eq!(
        append_full(c, "order-3", "OrderPlaced", "{}", Some(0), None, None, None),
        1
    );
    assert_eq!(
        append_many(
            c,
            "invoice-1",
            r#"[{"type": "InvoiceIssued", "data": {"order": "order-3"}}]"#,
            None,
            None
        ),
        1
    );
    assert_eq!(
        append_full(
            c,
            "order-1",
            "OrderDelivered",
            "{}",
            Some(3),
            None,
            None,
            None
        ),
        4
    );
    c.batch_execute("COMMIT").unwrap();
    // A rolled-back transaction leaves nothing behind.
    c.batch_execute("BEGIN").unwrap();
    append_full(c, "order-9", "OrderPlaced", "{}", Some(0), None, None, None);
    c.batch_execute("ROLLBACK").unwrap();
    // More after the transaction.
    assert_eq!(
        append_full(
            c,
            "order-2",
            "OrderShipped",
            "{}",
            Some(4),
            None,
            None,
            None
        ),
        5
    );
}

const EVENTS: &str = "SELECT e::text FROM es.events e ORDER BY global_position";
const STREAMS: &str = "SELECT s::text FROM es.streams s ORDER BY stream_id";
// recorded_at is when the row was written in that database; what must travel is the offset.
const POSITION_BASE: &str = "SELECT (system_identifier, xid_offset, restored_foreign)::text FROM es.position_base ORDER BY system_identifier";

#[test]
fn pg_dump_and_restore_keep_every_event() {
    let source = TestDb::create("dump_source");
    let mut src = source.connect();
    fill(&mut src);
    let src_events = texts(&mut src, EVENTS);
    let src_streams = texts(&mut src, STREAMS);
    let src_base = texts(&mut src, POSITION_BASE);
    assert_eq!(src_events.len(), 3 + 3 + 4 + 3 + 1 + 1 + 1 + 1);
    assert_eq!(src_streams.len(), 6);

    // Restore into a new, empty database: the dump creates the extension.
    let restored = TestDb::create_empty("dump_restored");
    dump_and_restore(&source.name, &restored.name, Duration::from_secs(180));
    let mut dst = restored.connect();

    let ext: Vec<String> = texts(
        &mut dst,
        "SELECT extversion FROM pg_extension WHERE extname = 'pg_eventsource'",
    );
    assert_eq!(
        ext.len(),
        1,
        "the restored database has no pg_eventsource extension"
    );

    let dst_events = texts(&mut dst, EVENTS);
    let dst_streams = texts(&mut dst, STREAMS);
    assert_eq!(
        dst_events.len(),
        src_events.len(),
        "number of events after restore"
    );
    for (i, (s, d)) in src_events.iter().zip(&dst_events).enumerate() {
        assert_eq!(s, d, "event #{i} differs after restore");
    }
    assert_eq!(dst_streams, src_streams, "es.streams differs after restore");
    assert_eq!(
        texts(&mut dst, POSITION_BASE),
        src_base,
        "es.position_base differs after restore"
    );
    for stream in [
        "order-1",
        "order-2",
        "order-3",
        "misc-1",
        "acct-9",
        "invoice-1",
    ] {
        let sql = format!("SELECT e::text FROM es.read_stream('{stream}') e");
        assert_eq!(
            texts(&mut dst, &sql),
            texts(&mut src, &sql),
            "es.read_stream('{stream}') after restore"
        );
    }
    assert_eq!(
        texts(&mut dst, "SELECT es.stream_version('order-1')::text"),
        vec!["4".to_string()]
    );

    // es.read_all in the restored database returns everything, in order.
    let ordered: Vec<(i64, String)> = dst
        .query(
            "SELECT global_position, event_id::text FROM es.events ORDER BY global_position",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let seen = read_all_until(&mut dst, 0, ordered.len(), Duration::from_secs(120));
    let seen_pairs: Vec<(i64, String)> = seen
        .iter()
        .map(|e| (e.global_position, e.event_id.clone()))
        .collect();
    assert_eq!(seen_pairs, ordered, "es.read_all in the restored database");
    let max_restored = ordered.last().unwrap().0;

    // Appending continues every stream's versions and the global order.
    let streams: Vec<(String, i64)> = dst
        .query(
            "SELECT stream_id, version FROM es.streams ORDER BY stream_id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for (stream, version) in &streams {
        for wrong in [0, version - 1, version + 1] {
            let r = dst.query_one(
                "SELECT es.append_event($1, 'AfterRestore', '{}', expected_version => $2)",
                &[stream, &wrong],
            );
            match r {
                Err(e) if is_serialization_failure(&e) => {
                    let msg = message(&e);
                    assert!(
                        msg.contains(stream.as_str()),
                        "40001 message does not name the stream: {msg}"
                    );
                }
                Err(e) => panic!("{stream} with expected_version {wrong}: {}", describe(&e)),
                Ok(_) => panic!(
                    "{stream} is at version {version}, yet an append expecting {wrong} succeeded"
                ),
            }
        }
        let v = append_full(
            &mut dst,
            stream,
            "AfterRestore",
            r#"{"restored": true}"#,
            Some(*version),
            None,
            None,
            None,
        );
        assert_eq!(
            v,
            version + 1,
            "{stream}: version after the first append following the restore"
        );
    }
    assert_eq!(
        append_full(
            &mut dst,
            "order-new",
            "OrderPlaced",
            "{}",
            Some(0),
            None,
            None,
            None
        ),
        1
    );
    // A given event id that the restored events already use is still taken.
    let dup = dst.query_one(
        "SELECT es.append_event('order-new', 'Other', '{}', event_id => '0190a3c5-0000-7000-8000-0000000000a1')",
        &[],
    );
    match dup {
        Err(e) if sqlstate(&e) == Some(&SqlState::UNIQUE_VIOLATION) => {}
        Err(e) => panic!("reusing a restored event id: {}", describe(&e)),
        Ok(_) => panic!("an event id used by a restored event was accepted for a different event"),
    }

    let new_events: Vec<(i64, String)> = dst
        .query(
            "SELECT global_position, event_id::text FROM es.events WHERE global_position > $1 ORDER BY global_position",
            &[&max_restored],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let total: i64 = dst
        .query_one("SELECT count(*) FROM es.events", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        new_events.len(),
        streams.len() + 1,
        "the events appended after the restore must all be positioned after every restored event"
    );
    assert_eq!(total as usize, ordered.len() + streams.len() + 1);
    let after = read_all_until(
        &mut dst,
        max_restored,
        new_events.len(),
        Duration::from_secs(120),
    );
    let after_pairs: Vec<(i64, String)> = after
        .iter()
        .map(|e| (e.global_position, e.event_id.clone()))
        .collect();
    assert_eq!(
        after_pairs, new_events,
        "es.read_all after the last restored position"
    );

    // The source database is unchanged by the dump.
    assert_eq!(texts(&mut src, EVENTS), src_events);
}
