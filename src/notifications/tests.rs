//! Tests of the relay's FIFO and overflow summary: plain Rust for the queue,
//! in-backend for the summary's JSON (the relay itself needs a preloaded
//! server: tests/integration/tests/notify_relay.rs).

/// Plain Rust: the queue needs no PostgreSQL.
#[cfg(test)]
mod unit {
    use crate::notifications::notify::payload;
    use crate::notifications::relay::{fifo_consume, fifo_entries, fifo_push, Overflow};
    use crate::store::appended::Record;

    fn texts(bytes: &[u8]) -> Vec<String> {
        fifo_entries(bytes)
            .map(|c| c.to_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn relay_fifo_keeps_order_and_refuses_what_does_not_fit() {
        let mut buf = vec![0u8; 64];
        let mut used = 0;
        assert!(fifo_push(&mut buf, &mut used, b"first"));
        assert!(fifo_push(&mut buf, &mut used, b""));
        assert!(fifo_push(&mut buf, &mut used, b"second one"));
        assert_eq!(used, (5 + 5) + 5 + (10 + 5));
        assert_eq!(texts(&buf[..used]), ["first", "", "second one"]);
        // 34 bytes left: a 29-byte payload fits exactly, then nothing does.
        let big = [b'x'; 29];
        assert!(!fifo_push(&mut buf, &mut used, &[b'x'; 30]));
        assert!(fifo_push(&mut buf, &mut used, &big));
        assert_eq!(used, 64);
        assert!(!fifo_push(&mut buf, &mut used, b""));
        assert_eq!(texts(&buf[..used]).len(), 4);

        // The relay removes what it sent (a prefix); later entries stay, in order.
        let sent = 15;
        fifo_consume(&mut buf, &mut used, sent);
        assert_eq!(used, 49);
        assert_eq!(
            texts(&buf[..used]),
            ["second one".to_owned(), "x".repeat(29)]
        );
        assert!(fifo_push(&mut buf, &mut used, b"third"));
        assert_eq!(texts(&buf[..used])[2], "third");
        let all = used;
        fifo_consume(&mut buf, &mut used, all);
        assert_eq!(used, 0);
        assert!(texts(&buf[..used]).is_empty());
    }

    fn record(
        stream_id: &str,
        stream_type: &str,
        types: &[&str],
        first: i64,
        count: i64,
    ) -> Record {
        Record {
            subxact: 1,
            stream_id: stream_id.into(),
            stream_type: stream_type.into(),
            event_types: types.iter().map(|t| t.to_string()).collect(),
            first,
            count,
        }
    }

    fn text(records: &[Record]) -> String {
        payload(records).unwrap().text.into_string().unwrap()
    }

    #[test]
    fn payload_names_each_stream_and_type_once_in_first_seen_order() {
        assert!(payload(&[]).is_none());
        assert_eq!(
            text(&[record("acct-1", "acct", &["Deposited"], 41, 1)]),
            r#"{"events": 1, "first_position": 41, "last_position": 41, "streams": ["acct-1"], "streams_truncated": false, "stream_types": ["acct"], "event_types": ["Deposited"]}"#
        );
        assert_eq!(
            text(&[
                record("acct-1", "acct", &["Deposited", "Withdrawn"], 10, 2),
                record("q\"x\\y\n", "acct", &["Withdrawn"], 7, 1),
                record("acct-1", "acct", &["Closed"], 12, 3),
            ]),
            r#"{"events": 6, "first_position": 7, "last_position": 14, "streams": ["acct-1","q\"x\\y\n"], "streams_truncated": false, "stream_types": ["acct"], "event_types": ["Deposited","Withdrawn","Closed"]}"#
        );
    }

    #[test]
    fn payload_cuts_long_lists_and_says_so() {
        // 40 distinct streams of 200 bytes (and each named twice): past the
        // 5000-byte budget, so some are left out; the count and range stay exact.
        let ids: Vec<String> = (0..40).map(|i| format!("{i:0200}")).collect();
        let records: Vec<Record> = ids
            .iter()
            .chain(ids.iter())
            .enumerate()
            .map(|(n, id)| record(id, "big", &["E"], n as i64 + 1, 1))
            .collect();
        let t = text(&records);
        assert!(t.len() < 8000, "under NOTIFY's limit: {}", t.len());
        assert!(t.contains(r#""streams_truncated": true"#), "{t}");
        assert!(t.starts_with(
            r#"{"events": 80, "first_position": 1, "last_position": 80, "streams": [""#
        ));
        let streams = &t[t.find('[').unwrap()..t.find(']').unwrap() + 1];
        assert!(streams.len() <= 5000, "{}", streams.len());
        let named = streams.matches('"').count() / 2;
        assert_eq!(named, (5000 - 2) / 203, "as many as fit, each once");
        assert!(
            t.ends_with(r#""stream_types": ["big"], "event_types": ["E"]}"#),
            "{t}"
        );
    }

    #[test]
    fn relay_overflow_folds_count_and_range() {
        let mut o = Overflow::default();
        assert_eq!(o.transactions, 0, "empty: nothing to send");
        o.fold(3, 100, 104);
        o.fold(1, 90, 90);
        o.fold(2, 200, 207);
        assert_eq!(
            o,
            Overflow {
                transactions: 3,
                events: 6,
                first: 90,
                last: 207
            }
        );
        assert_eq!(std::mem::take(&mut o).events, 6);
        assert_eq!(o.transactions, 0);
    }
}

#[pgrx::pg_schema]
mod tests {
    use crate::notifications::channel::overflow_payload;
    use crate::test_harness::*;
    use pgrx::prelude::*;

    #[pg_test]
    fn relay_overflow_summary_is_the_documented_json() {
        let p = overflow_payload(6, 90, 207);
        let sql = format!(
            "SELECT p = '{{\"events\": 6, \"first_position\": 90, \"last_position\": 207,
                         \"streams\": [], \"streams_truncated\": true,
                         \"stream_types\": [], \"event_types\": []}}'::jsonb
               FROM (SELECT {}::jsonb AS p) s",
            quote(&p)
        );
        assert!(one_bool(&sql), "summary payload {p}");
    }

    fn quote(s: &str) -> String {
        format!("'{}'", s.replace('\'', "''"))
    }
}
