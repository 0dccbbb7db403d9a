//! `es.notify = off` stops the per-transaction NOTIFY (for many concurrent
//! writers with consumers that poll): a listener gets nothing for appends
//! made with it off, and a notification again once it is back on.

use pg_eventsource_integration::TestDb;
use postgres::fallible_iterator::FallibleIterator;
use std::time::Duration;

#[test]
fn es_notify_off_sends_nothing_and_on_sends_again() {
    let db = TestDb::create("notify_setting");
    let mut listener = db.connect();
    let mut writer = db.connect();
    listener.batch_execute("LISTEN es_events").unwrap();

    writer
        .batch_execute(
            "SET es.notify = off;
             SELECT es.append_event('quiet-1', 'A', '{}');
             SELECT es.append_events('quiet-1', '[{\"type\": \"B\", \"data\": 1}]');",
        )
        .unwrap();
    let quiet: Vec<String> = listener
        .notifications()
        .timeout_iter(Duration::from_secs(2))
        .map(|n| Ok(n.payload().to_owned()))
        .collect()
        .unwrap();
    assert!(quiet.is_empty(), "es.notify = off still sent {quiet:?}");

    writer
        .batch_execute("RESET es.notify; SELECT es.append_event('loud-1', 'A', '{}');")
        .unwrap();
    let mut notes = listener.notifications();
    let mut it = notes.timeout_iter(Duration::from_secs(30));
    let n = it
        .next()
        .unwrap()
        .expect("no notification once es.notify is back on");
    assert_eq!(n.channel(), "es_events");
    assert!(
        n.payload().contains("\"loud-1\""),
        "payload {}",
        n.payload()
    );
    assert!(!n.payload().contains("quiet-1"), "payload {}", n.payload());
}
