//! `es.read_all` is gap-free: a reader paging by global position while
//! transactions commit out of order sees every committed event exactly once,
//! in increasing position order, and never moves past an event that commits
//! later.

use pg_eventsource_integration::{
    append, append_batch, describe, read_all_page, wait_until, SeenEvent, TestDb,
};
use postgres::Client;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

const WRITERS: usize = 8;
const PER_WRITER: usize = 150;

/// A JSON array of `n` events for `es.append_events`.
fn batch(writer: usize, first_seq: usize, n: usize) -> String {
    let items: Vec<String> = (0..n)
        .map(|j| {
            let seq = first_seq + j;
            if seq.is_multiple_of(3) {
                format!(
                    r#"{{"type": "Batched", "data": {{"w": {writer}, "seq": {seq}}}, "metadata": {{"j": {j}}}}}"#
                )
            } else {
                format!(r#"{{"type": "Batched", "data": {{"w": {writer}, "seq": {seq}}}}}"#)
            }
        })
        .collect();
    format!("[{}]", items.join(", "))
}

fn ok<T>(what: &str, r: Result<T, postgres::Error>) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {}", describe(&e)))
}

/// Appends exactly `PER_WRITER` committed events to `writer-{w}`, mixing
/// single appends, batches, multi-append transactions and rolled-back ones.
fn write(w: usize, mut c: Client, barrier: Arc<Barrier>, committed: Arc<AtomicUsize>) {
    let stream = format!("writer-{w}");
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut v = 0i64; // the stream's version
    let mut seq = 0usize; // events committed so far
    let mut step = 0usize;
    barrier.wait();
    while seq < PER_WRITER {
        assert!(Instant::now() < deadline, "writer {w} ran out of time");
        let left = PER_WRITER - seq;
        let data = |seq: usize| format!(r#"{{"w": {w}, "seq": {seq}}}"#);
        let n = match step % 5 {
            // A single append, autocommit.
            0 => {
                v = ok(
                    "single",
                    append(&mut c, &stream, "Single", &data(seq), Some(v)),
                );
                1
            }
            // A batch, autocommit.
            1 => {
                let n = left.min(2 + step % 4);
                v = ok(
                    "batch",
                    append_batch(&mut c, &stream, &batch(w, seq, n), Some(v)),
                );
                n
            }
            // A transaction with a single append and a batch, committed a moment later.
            2 => {
                c.batch_execute("BEGIN").unwrap();
                v = ok(
                    "tx single",
                    append(&mut c, &stream, "InTx", &data(seq), Some(v)),
                );
                let mut n = 1;
                if left >= 2 {
                    let m = (left - 1).min(3);
                    v = ok(
                        "tx batch",
                        append_batch(&mut c, &stream, &batch(w, seq + 1, m), Some(v)),
                    );
                    n += m;
                }
                thread::sleep(Duration::from_millis(1));
                c.batch_execute("COMMIT").unwrap();
                n
            }
            // A transaction that appends and rolls back: none of it may ever be read.
            3 => {
                c.batch_execute("BEGIN").unwrap();
                let rv = ok(
                    "rolled back",
                    append(&mut c, &stream, "RolledBack", &data(seq), Some(v)),
                );
                assert_eq!(rv, v + 1);
                ok(
                    "rolled back batch",
                    append_batch(&mut c, &stream, &batch(w, seq, 2), Some(rv)),
                );
                thread::sleep(Duration::from_millis(1));
                c.batch_execute("ROLLBACK").unwrap();
                0
            }
            // Several appends in one transaction.
            _ => {
                let n = left.min(3);
                c.batch_execute("BEGIN").unwrap();
                for j in 0..n {
                    v = ok(
                        "tx appends",
                        append(&mut c, &stream, "InTx", &data(seq + j), Some(v)),
                    );
                }
                c.batch_execute("COMMIT").unwrap();
                n
            }
        };
        seq += n;
        committed.fetch_add(n, SeqCst);
        assert_eq!(v as usize, seq, "writer {w}: stream version");
        step += 1;
    }
}

struct ReaderReport {
    seen: Vec<SeenEvent>,
    pages: usize,
    empty_polls: usize,
    /// Positions at or above H's events returned by a read that started while H was open.
    past_open_h: Vec<i64>,
}

/// Pages through es.read_all(last, 100) until `target` events are seen or the time is up.
fn read(
    mut c: Client,
    target: Arc<AtomicUsize>,
    h_open: Arc<AtomicBool>,
    h_min: Arc<AtomicI64>,
    progress: Arc<AtomicI64>,
) -> ReaderReport {
    let mut deadline = Instant::now() + Duration::from_secs(240);
    let mut r = ReaderReport {
        seen: Vec::new(),
        pages: 0,
        empty_polls: 0,
        past_open_h: Vec::new(),
    };
    let mut last = 0i64;
    let mut deadline_set = false;
    while r.seen.len() < target.load(SeqCst) && Instant::now() < deadline {
        if !deadline_set && target.load(SeqCst) != usize::MAX {
            // Everything is committed: allow a minute to catch up (a transaction
            // still open anywhere in the cluster holds every reader back).
            deadline = deadline.min(Instant::now() + Duration::from_secs(60));
            deadline_set = true;
        }
        let page = read_all_page(&mut c, last, 100);
        // Main clears h_open before it commits H: if it is still set now that
        // the read has returned, the read's snapshot was taken while H was open.
        if h_open.load(SeqCst) {
            let h = h_min.load(SeqCst);
            r.past_open_h
                .extend(page.iter().map(|e| e.global_position).filter(|&p| p >= h));
        }
        if page.is_empty() {
            r.empty_polls += 1;
            thread::sleep(Duration::from_millis(2));
            continue;
        }
        r.pages += 1;
        for e in page {
            assert!(
                e.global_position > last,
                "es.read_all returned position {} after position {last}",
                e.global_position
            );
            last = e.global_position;
            r.seen.push(e);
        }
        progress.store(last, SeqCst);
    }
    r
}

#[test]
fn read_all_is_gap_free_under_out_of_order_commits() {
    // Warm: the database's first append (recording the position offset) is
    // done, so that it cannot hold the writers back; see no_cross_stream_waits.rs.
    let db = TestDb::create_warm("gap_free_read_all");

    // H takes its transaction id before anything else below, appends only
    // after the writers have committed events, and commits last.
    let mut h = db.connect();
    h.batch_execute("BEGIN").unwrap();
    let h_xid: String = h
        .query_one("SELECT pg_current_xact_id()::text", &[])
        .unwrap()
        .get(0);
    // E appends before the writers start and commits after all of them.
    let mut e = db.connect();
    e.batch_execute("BEGIN").unwrap();
    ok(
        "E's batch",
        append_batch(
            &mut e,
            "early-1",
            r#"[{"type": "Early", "data": 1}, {"type": "Early", "data": 2}, {"type": "Early", "data": 3}]"#,
            Some(0),
        ),
    );
    assert_eq!(
        ok(
            "E's append",
            append(&mut e, "early-1", "Early", "4", Some(3))
        ),
        4
    );

    let target = Arc::new(AtomicUsize::new(usize::MAX));
    let h_open = Arc::new(AtomicBool::new(true));
    let h_min = Arc::new(AtomicI64::new(i64::MAX));
    let progress = Arc::new(AtomicI64::new(0));
    let reader = {
        let c = db.connect();
        let (target, h_open, h_min, progress) = (
            Arc::clone(&target),
            Arc::clone(&h_open),
            Arc::clone(&h_min),
            Arc::clone(&progress),
        );
        thread::spawn(move || read(c, target, h_open, h_min, progress))
    };

    let committed = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(WRITERS));
    let clients: Vec<Client> = (0..WRITERS).map(|_| db.connect()).collect();
    let writers: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(w, c)| {
            let (barrier, committed) = (Arc::clone(&barrier), Arc::clone(&committed));
            thread::spawn(move || write(w, c, barrier, committed))
        })
        .collect();

    // Once writers have committed events (with positions above H's), H appends.
    assert!(
        wait_until(Duration::from_secs(120), || {
            committed.load(SeqCst) >= 300 || writers.iter().all(|t| t.is_finished())
        }),
        "the writers committed only {} events in 120 s",
        committed.load(SeqCst)
    );
    let committed_before_h = committed.load(SeqCst);
    ok(
        "H's append",
        append(&mut h, "held-1", "Held", r#"{"h": 1}"#, Some(0)),
    );
    ok(
        "H's batch",
        append_batch(
            &mut h,
            "held-1",
            r#"[{"type": "Held", "data": {"h": 2}}, {"type": "Held", "data": {"h": 3}, "metadata": {"late": true}}]"#,
            Some(1),
        ),
    );
    let (h_first, h_last): (i64, i64) = {
        let row = h
            .query_one(
                "SELECT min(global_position), max(global_position) FROM es.events WHERE stream_id = 'held-1'",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };
    h_min.store(h_first, SeqCst);

    for t in writers {
        t.join().expect("a writer thread panicked");
    }

    // H (and E) are still open; every writer has committed.
    let mut obs = db.connect();
    let writer_events_above_h: i64 = obs
        .query_one(
            "SELECT count(*) FROM es.events WHERE stream_id LIKE 'writer-%' AND global_position > $1",
            &[&h_last],
        )
        .unwrap()
        .get(0);
    assert!(
        writer_events_above_h > 0,
        "no committed writer event has a position above H's: the out-of-order commit did not happen"
    );
    let visible_now: Vec<i64> = obs
        .query("SELECT global_position FROM es.read_all(0, 1000000)", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        visible_now.iter().all(|&p| p < h_first),
        "while H was open, es.read_all returned positions at or above H's first position {h_first}: {:?}",
        visible_now.iter().filter(|&&p| p >= h_first).take(10).collect::<Vec<_>>()
    );
    // Hold H open a little longer while the reader keeps polling.
    thread::sleep(Duration::from_millis(300));
    let reader_before_h_commit = progress.load(SeqCst);
    assert!(
        reader_before_h_commit < h_first,
        "the reader moved past H's first position {h_first} (to {reader_before_h_commit}) while H was open"
    );

    e.batch_execute("COMMIT").unwrap();
    h_open.store(false, SeqCst);
    h.batch_execute("COMMIT").unwrap();

    let mut c = db.connect();
    let all: Vec<(i64, String, String, i64)> = c
        .query(
            "SELECT global_position, event_id::text, stream_id, version FROM es.events ORDER BY global_position",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    target.store(all.len(), SeqCst);
    let expected_total = 1 + 4 + 3 + WRITERS * PER_WRITER;
    assert_eq!(all.len(), expected_total, "events committed in total");
    let report = reader.join().expect("the reader thread panicked");
    let seen = &report.seen;
    println!(
        "H xid {h_xid}, H positions {h_first}..={h_last}, {committed_before_h} writer events committed \
         before H appended, {writer_events_above_h} writer events above H; reader: {} events in {} pages, \
         {} empty polls, at position {reader_before_h_commit} just before H committed",
        seen.len(),
        report.pages,
        report.empty_polls
    );

    assert!(
        report.past_open_h.is_empty(),
        "reads that started while H was open returned positions at or above H's ({h_first}): {:?}",
        report.past_open_h
    );
    let mut ids = HashSet::new();
    for ev in seen {
        assert!(
            ids.insert(ev.event_id.clone()),
            "event {} seen twice",
            ev.event_id
        );
    }
    assert_eq!(
        seen.len(),
        all.len(),
        "the reader saw {} of the {} committed events before its deadline",
        seen.len(),
        all.len()
    );
    for (i, (ev, (pos, id, stream, version))) in seen.iter().zip(&all).enumerate() {
        assert!(
            ev.global_position == *pos
                && ev.event_id == *id
                && ev.stream_id == *stream
                && ev.version == *version,
            "event #{i}: the reader saw {ev:?}, es.events has ({pos}, {id}, {stream}, {version})"
        );
    }
    let all_ids: HashSet<String> = all.iter().map(|(_, id, _, _)| id.clone()).collect();
    assert_eq!(
        ids, all_ids,
        "the reader's event ids are not those of es.events"
    );

    // Each stream's events came in version order 1, 2, 3, ...
    let mut per_stream: BTreeMap<&str, i64> = BTreeMap::new();
    for ev in seen {
        let v = per_stream.entry(ev.stream_id.as_str()).or_insert(0);
        assert_eq!(ev.version, *v + 1, "stream {}: version order", ev.stream_id);
        *v = ev.version;
    }
    assert_eq!(
        per_stream.get("held-1"),
        Some(&3),
        "H's events seen by the reader"
    );
    assert_eq!(
        per_stream.get("early-1"),
        Some(&4),
        "E's events seen by the reader"
    );
    for w in 0..WRITERS {
        assert_eq!(
            per_stream.get(format!("writer-{w}").as_str()),
            Some(&(PER_WRITER as i64))
        );
    }
    assert!(
        seen.iter()
            .any(|ev| ev.stream_id.starts_with("writer-") && ev.global_position > h_last),
        "no writer event seen with a position above H's"
    );
    let rolled_back: i64 = c
        .query_one(
            "SELECT count(*) FROM es.events WHERE event_type = 'RolledBack'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        rolled_back, 0,
        "events of rolled-back transactions were stored"
    );
}
