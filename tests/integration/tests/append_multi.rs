//! `es.append_multi` under concurrency: 8 connections each append, 150
//! times, to three of five shared streams named in a random order (a
//! transfer between accounts, a reservation of stock), some calls with an
//! expected version read just before. No call deadlocks (the streams are
//! locked in id order), a call that loses a version race writes nothing of
//! any of its streams, every row returned names the event stored at that
//! version and position, and each stream ends with versions 1..n, no gap.

use pg_eventsource_integration::{describe, is_serialization_failure, TestDb};
use postgres::error::SqlState;
use std::collections::{BTreeMap, HashMap};
use std::thread;

const THREADS: usize = 8;
const CALLS: usize = 150;
const STREAMS: [&str; 5] = ["acct-a", "acct-b", "acct-c", "acct-d", "acct-e"];

/// A small deterministic generator (no crate needed): xorshift.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn concurrent_multi_stream_appends_are_atomic_and_never_deadlock() {
    let db = TestDb::create("append_multi");
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let mut c = db.connect();
            thread::spawn(move || {
                let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (t as u64 + 1);
                // (stream, version, position, tag) of every row returned
                let mut rows: Vec<(String, i64, i64, String)> = Vec::new();
                let mut lost = 0;
                for i in 0..CALLS {
                    let mut names: Vec<&str> = STREAMS.to_vec();
                    // a random choice of three, in a random order
                    for k in (1..names.len()).rev() {
                        names.swap(k, (next(&mut rng) % (k as u64 + 1)) as usize);
                    }
                    names.truncate(3);
                    let with_expected = i % 3 == 0;
                    let mut batches = Vec::new();
                    for (j, s) in names.iter().enumerate() {
                        let tag = format!("t{t}-c{i}-{j}");
                        let expected = if with_expected {
                            let v: i64 = c
                                .query_one("SELECT es.stream_version($1)", &[s])
                                .unwrap()
                                .get(0);
                            format!(r#", "expected_version": {v}"#)
                        } else {
                            String::new()
                        };
                        batches.push(format!(
                            r#"{{"stream_id": "{s}"{expected}, "events": [{{"type": "Moved", "data": {{"tag": "{tag}"}}}}, {{"type": "Noted", "data": {{"tag": "{tag}"}}}}]}}"#
                        ));
                    }
                    let sql = format!(
                        "SELECT stream_id, version, global_position FROM es.append_multi('[{}]')",
                        batches.join(",")
                    );
                    match c.query(&sql, &[]) {
                        Ok(got) => {
                            assert_eq!(got.len(), 6, "one row per event");
                            for (k, r) in got.iter().enumerate() {
                                let s: String = r.get(0);
                                assert_eq!(s, names[k / 2], "rows come in the order given");
                                rows.push((s, r.get(1), r.get(2), format!("t{t}-c{i}-{}", k / 2)));
                            }
                        }
                        Err(e) => {
                            assert!(
                                with_expected && is_serialization_failure(&e),
                                "thread {t} call {i}: {}",
                                describe(&e)
                            );
                            assert_ne!(e.code(), Some(&SqlState::T_R_DEADLOCK_DETECTED));
                            lost += 1;
                        }
                    }
                }
                (rows, lost)
            })
        })
        .collect();
    let mut returned = Vec::new();
    let mut lost = 0;
    for h in handles {
        let (rows, l) = h.join().unwrap();
        returned.extend(rows);
        lost += l;
    }
    let mut c = db.connect();
    // what is stored: (version, position, tag) per stream
    let mut stored: BTreeMap<String, Vec<(i64, i64, String)>> = BTreeMap::new();
    for r in c
        .query(
            "SELECT stream_id, version, global_position, data->>'tag' FROM es.events ORDER BY stream_id, version",
            &[],
        )
        .unwrap()
    {
        stored
            .entry(r.get(0))
            .or_default()
            .push((r.get(1), r.get(2), r.get(3)));
    }
    let mut total = 0;
    for (s, events) in &stored {
        let versions: Vec<i64> = events.iter().map(|e| e.0).collect();
        let want: Vec<i64> = (1..=events.len() as i64).collect();
        assert_eq!(versions, want, "stream {s} has a gap");
        total += events.len();
    }
    // every call either wrote all six events or none
    assert_eq!(total, (THREADS * CALLS - lost) * 6, "{lost} calls lost");
    let mut by_tag: HashMap<&str, usize> = HashMap::new();
    for events in stored.values() {
        for e in events {
            *by_tag.entry(&e.2).or_default() += 1;
        }
    }
    assert!(by_tag.values().all(|&n| n == 2), "a batch was split");
    // every row returned is where the event is
    assert_eq!(returned.len(), total);
    let index: HashMap<(&str, i64), (i64, &str)> = stored
        .iter()
        .flat_map(|(s, evs)| {
            evs.iter()
                .map(move |e| ((s.as_str(), e.0), (e.1, e.2.as_str())))
        })
        .collect();
    for (s, v, p, tag) in &returned {
        assert_eq!(
            index.get(&(s.as_str(), *v)),
            Some(&(*p, tag.as_str())),
            "row {s}/{v}"
        );
    }
}
