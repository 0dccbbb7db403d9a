//! Subscriptions under concurrency: a consumer group of three members polls
//! and acks (in the same transaction as its "processing") while writers
//! commit out of order, one of them holding a transaction open across many
//! others' commits. Every committed event reaches exactly one member, each
//! stream's events in version order; the subscription's low-water mark never
//! passes a member's checkpoint and ends at the lowest of them.

use pg_eventsource_integration::{append, describe, TestDb};
use postgres::Client;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const WRITERS: usize = 4;
const STREAMS_PER_WRITER: usize = 5;
const EVENTS_PER_STREAM: usize = 30;
const MEMBERS: i32 = 3;
const CONSUMER: &str = "group-it";

fn ok<T>(what: &str, r: Result<T, postgres::Error>) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {}", describe(&e)))
}

/// (member, stream_id, version, global_position) of each event processed.
type Seen = Arc<Mutex<Vec<(i32, String, i64, i64)>>>;

fn member_loop(member: i32, mut c: Client, seen: Seen, writers_done: Arc<AtomicBool>) {
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut idle_after_done = 0;
    loop {
        assert!(Instant::now() < deadline, "member {member} ran out of time");
        let mut tx = ok("begin", c.transaction());
        let rows = ok(
            "poll",
            tx.query(
                "SELECT stream_id, version, global_position FROM es.poll($1, 7, $2, $3)",
                &[&CONSUMER, &member, &MEMBERS],
            ),
        );
        if rows.is_empty() {
            ok("commit", tx.commit());
            if writers_done.load(SeqCst) {
                // the horizon may still be behind the last commits for a moment
                idle_after_done += 1;
                if idle_after_done > 20 {
                    return;
                }
            }
            thread::sleep(Duration::from_millis(20));
            continue;
        }
        idle_after_done = 0;
        let mut batch = Vec::new();
        for r in &rows {
            batch.push((
                member,
                r.get::<_, String>(0),
                r.get::<_, i64>(1),
                r.get::<_, i64>(2),
            ));
        }
        let last = batch.last().unwrap().3;
        ok(
            "ack",
            tx.execute(
                "SELECT es.ack($1, $2, $3, $4)",
                &[&CONSUMER, &last, &member, &MEMBERS],
            ),
        );
        ok("commit", tx.commit());
        seen.lock().unwrap().extend(batch);
    }
}

#[test]
fn a_consumer_group_gets_every_event_once_in_stream_order_under_concurrent_commits() {
    let db = TestDb::create_warm("subscriptions_group");
    let mut admin = db.connect();
    // start after the warm-up event
    ok(
        "subscribe",
        admin.execute(
            "SELECT es.subscribe($1, stream_types => ARRAY['grp'], from_position => es.read_horizon() - 1)",
            &[&CONSUMER],
        ),
    );

    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let writers_done = Arc::new(AtomicBool::new(false));
    let members: Vec<_> = (0..MEMBERS)
        .map(|m| {
            let (c, seen, done) = (db.connect(), seen.clone(), writers_done.clone());
            thread::spawn(move || member_loop(m, c, seen, done))
        })
        .collect();

    // An observer: the subscription's position never passes a complete
    // group's lowest member checkpoint.
    let observer_stop = Arc::new(AtomicBool::new(false));
    let observer = {
        let mut c = db.connect();
        let stop = observer_stop.clone();
        thread::spawn(move || {
            let mut checks = 0u64;
            while !stop.load(SeqCst) {
                let row = ok(
                    "observe",
                    c.query_one(
                        "SELECT s.position, min(m.position), count(m.*)
                           FROM es.subscriptions s LEFT JOIN es.subscription_members m
                             ON m.consumer = s.consumer AND m.group_size = $2
                          WHERE s.consumer = $1 GROUP BY s.position",
                        &[&CONSUMER, &MEMBERS],
                    ),
                );
                let (sub, low, n): (i64, Option<i64>, i64) = (row.get(0), row.get(1), row.get(2));
                if n == i64::from(MEMBERS) {
                    assert!(
                        sub <= low.unwrap(),
                        "subscription {sub} passed the lowest member {low:?}"
                    );
                }
                checks += 1;
                thread::sleep(Duration::from_millis(5));
            }
            checks
        })
    };

    // A transaction that appends first and commits after many others.
    let late = {
        let mut c = db.connect();
        let barrier = Arc::new(Barrier::new(2));
        let b = barrier.clone();
        let h = thread::spawn(move || {
            let mut tx = ok("late begin", c.transaction());
            ok(
                "late append",
                tx.query_one("SELECT es.append_event('grp-late', 'Late', '{}')", &[]),
            );
            b.wait();
            thread::sleep(Duration::from_millis(1500));
            ok("late commit", tx.commit());
        });
        barrier.wait();
        h
    };

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let mut c = db.connect();
            thread::spawn(move || {
                for n in 0..EVENTS_PER_STREAM {
                    for s in 0..STREAMS_PER_WRITER {
                        let stream = format!("grp-{w}-{s}");
                        let data = format!(r#"{{"n": {n}}}"#);
                        ok(
                            "append",
                            append(&mut c, &stream, "Happened", &data, Some(n as i64)),
                        );
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    late.join().unwrap();
    writers_done.store(true, SeqCst);
    for m in members {
        m.join().unwrap();
    }
    observer_stop.store(true, SeqCst);
    let checks = observer.join().unwrap();
    assert!(checks > 0);

    // Every committed event of the subscription, exactly once, by the member its stream hashes to.
    let seen = seen.lock().unwrap();
    let expected = WRITERS * STREAMS_PER_WRITER * EVENTS_PER_STREAM + 1;
    assert_eq!(seen.len(), expected, "events processed");
    let mut by_position = HashMap::new();
    for (m, stream, v, p) in seen.iter() {
        assert!(
            by_position.insert(*p, (*m, stream.clone(), *v)).is_none(),
            "position {p} processed twice"
        );
    }
    let mut by_stream: BTreeMap<&str, Vec<(i64, i32)>> = BTreeMap::new();
    for (m, stream, v, _) in seen.iter() {
        by_stream.entry(stream.as_str()).or_default().push((*v, *m));
    }
    assert_eq!(by_stream.len(), WRITERS * STREAMS_PER_WRITER + 1);
    for (stream, events) in &by_stream {
        let member = events[0].1;
        let want: i64 = ok(
            "hash",
            admin.query_one(
                "SELECT ((hashtext($1) & 2147483647) % $2)::bigint",
                &[stream, &MEMBERS],
            ),
        )
        .get(0);
        assert!(
            events.iter().all(|&(_, m)| i64::from(m) == want),
            "{stream} split across members"
        );
        assert_eq!(i64::from(member), want);
        // in the order processed (seen is appended per member in poll order)
        let versions: Vec<i64> = events.iter().map(|&(v, _)| v).collect();
        let in_order: Vec<i64> = (1..=versions.len() as i64).collect();
        assert_eq!(versions, in_order, "{stream} out of order or with a gap");
    }
    assert!(
        by_stream
            .values()
            .map(|e| e[0].1)
            .collect::<std::collections::HashSet<_>>()
            .len()
            > 1,
        "all streams landed on one member"
    );

    // Each member acks its own checkpoint once more, one after the other: the
    // low-water mark catches up with the lowest member exactly.
    for m in 0..MEMBERS {
        ok(
            "re-ack",
            admin.execute(
                "SELECT es.ack($1, position, member, group_size) FROM es.subscription_members
                  WHERE consumer = $1 AND group_size = $2 AND member = $3",
                &[&CONSUMER, &MEMBERS, &m],
            ),
        );
    }
    let row = ok(
        "final",
        admin.query_one(
            "SELECT s.position = (SELECT min(m.position) FROM es.subscription_members m
                                   WHERE m.consumer = s.consumer AND m.group_size = $2),
                    (SELECT count(*) FROM es.poll($1, 1000))
               FROM es.subscriptions s WHERE s.consumer = $1",
            &[&CONSUMER, &MEMBERS],
        ),
    );
    assert!(
        row.get::<_, bool>(0),
        "low-water mark is not the lowest member checkpoint"
    );
    // what the whole subscription would still deliver: only the events after
    // the lowest member's checkpoint, all of them processed by other members
    let left: i64 = row.get(1);
    assert!(left < expected as i64);
}
