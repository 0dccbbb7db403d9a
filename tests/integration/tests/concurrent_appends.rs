//! Optimistic concurrency on one stream: concurrent writers that pass the
//! version they read as `expected_version` never both win, never leave a gap
//! and lose only with SQLSTATE 40001.

use pg_eventsource_integration::{
    append, backend_pid, describe, is_serialization_failure, is_waiting_for_lock, message,
    stream_version, wait_until, TestDb,
};
use postgres::Client;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

const THREADS: usize = 8;
const WINS_PER_THREAD: usize = 200;

struct WriterResult {
    /// Versions `es.append_event` returned for this thread's successful appends.
    won: Vec<i64>,
    /// Appends that failed with 40001.
    conflicts: usize,
    /// Of those, the ones whose message names the expected and actual versions.
    version_conflicts: usize,
}

#[test]
fn concurrent_appends_with_expected_versions_serialise() {
    let db = TestDb::create("concurrent_appends");
    let stream = "counter-1";
    // Connect everyone first, so that no thread can fail while others wait at the barrier.
    let clients: Vec<Client> = (0..THREADS).map(|_| db.connect()).collect();
    let barrier = Arc::new(Barrier::new(THREADS));
    let deadline = Instant::now() + Duration::from_secs(240);

    let handles: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(t, mut c)| {
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                let mut res = WriterResult {
                    won: Vec::with_capacity(WINS_PER_THREAD),
                    conflicts: 0,
                    version_conflicts: 0,
                };
                barrier.wait();
                let mut attempt = 0u64;
                while res.won.len() < WINS_PER_THREAD {
                    assert!(
                        Instant::now() < deadline,
                        "thread {t}: only {} of {WINS_PER_THREAD} appends succeeded before the deadline",
                        res.won.len()
                    );
                    attempt += 1;
                    let v = stream_version(&mut c, stream);
                    let data = format!(r#"{{"thread": {t}, "attempt": {attempt}, "read": {v}}}"#);
                    match append(&mut c, stream, "Tick", &data, Some(v)) {
                        Ok(new_version) => {
                            assert_eq!(
                                new_version,
                                v + 1,
                                "thread {t}: append with expected_version {v} returned version {new_version}"
                            );
                            res.won.push(new_version);
                        }
                        Err(e) if is_serialization_failure(&e) => {
                            res.conflicts += 1;
                            let msg = message(&e);
                            if msg.contains("expected") && msg.contains("actual") {
                                res.version_conflicts += 1;
                            }
                        }
                        Err(e) => panic!(
                            "thread {t}: append with expected_version {v} failed with something other than 40001: {}",
                            describe(&e)
                        ),
                    }
                }
                res
            })
        })
        .collect();

    let results: Vec<WriterResult> = handles
        .into_iter()
        .map(|h| h.join().expect("a writer thread panicked"))
        .collect();

    let total = THREADS * WINS_PER_THREAD;
    let conflicts: usize = results.iter().map(|r| r.conflicts).sum();
    let version_conflicts: usize = results.iter().map(|r| r.version_conflicts).sum();
    println!(
        "{THREADS} threads x {WINS_PER_THREAD} appends: {conflicts} conflicts (40001), \
         {version_conflicts} of them naming expected and actual versions"
    );

    // The versions handed to the winners are exactly 1..=total.
    let mut won: Vec<i64> = results.iter().flat_map(|r| r.won.iter().copied()).collect();
    won.sort_unstable();
    let expected: Vec<i64> = (1..=total as i64).collect();
    assert_eq!(won.len(), total);
    assert!(
        won == expected,
        "the versions returned to the winners are not exactly 1..={total} (duplicates or gaps)"
    );

    // The stream holds exactly those events.
    let mut c = db.connect();
    let versions: Vec<i64> = c
        .query(
            "SELECT version FROM es.events WHERE stream_id = $1 ORDER BY version",
            &[&stream],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions.len(), total, "number of events in the stream");
    assert!(
        versions == expected,
        "the stream's versions are not exactly 1..={total}"
    );
    let read: Vec<i64> = c
        .query("SELECT version FROM es.read_stream($1)", &[&stream])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        read == expected,
        "es.read_stream does not return versions 1..={total} in order"
    );
    assert_eq!(stream_version(&mut c, stream), total as i64);
    let recorded: i64 = c
        .query_one(
            "SELECT version FROM es.streams WHERE stream_id = $1",
            &[&stream],
        )
        .unwrap()
        .get(0);
    assert_eq!(recorded, total as i64, "es.streams.version");

    // Each winner's event carries the version that was read before it.
    let mismatched: i64 = c
        .query_one(
            "SELECT count(*) FROM es.events
             WHERE stream_id = $1 AND (data->>'read')::bigint <> version - 1",
            &[&stream],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        mismatched, 0,
        "events whose version is not (version read) + 1"
    );

    assert!(
        conflicts > 0,
        "no append lost with 40001: the race did not happen"
    );
}

/// How the second writer's append ended.
#[derive(Debug)]
enum Outcome {
    Won(i64),
    Conflict(String),
}

/// Two transactions append to `stream` with the same `expected` version: the
/// first appends and keeps its transaction open, the second's append must
/// wait for it; then the first commits (or rolls back) and the second must
/// lose with 40001 (or win).
fn race(db: &TestDb, stream: &str, expected: i64, first_commits: bool) {
    let mut a = db.connect();
    let mut b = db.connect();
    let mut observer = db.connect();
    let b_pid = backend_pid(&mut b);

    a.batch_execute("BEGIN").unwrap();
    b.batch_execute("BEGIN").unwrap();
    let a_version = append(&mut a, stream, "Raced", r#"{"by": "A"}"#, Some(expected))
        .unwrap_or_else(|e| panic!("A's append: {}", describe(&e)));
    assert_eq!(a_version, expected + 1);

    let b_stream = stream.to_string();
    let handle = thread::spawn(move || {
        let outcome = match append(&mut b, &b_stream, "Raced", r#"{"by": "B"}"#, Some(expected)) {
            Ok(v) => Outcome::Won(v),
            Err(e) if is_serialization_failure(&e) => Outcome::Conflict(message(&e)),
            Err(e) => panic!(
                "B's append failed with something other than 40001: {}",
                describe(&e)
            ),
        };
        match outcome {
            Outcome::Won(_) => b.batch_execute("COMMIT").unwrap(),
            Outcome::Conflict(_) => b.batch_execute("ROLLBACK").unwrap(),
        }
        outcome
    });

    // B cannot finish while A's transaction is open: it must be waiting for A.
    let blocked = wait_until(Duration::from_secs(30), || {
        handle.is_finished() || is_waiting_for_lock(&mut observer, b_pid)
    });
    assert!(
        blocked,
        "B's append neither finished nor waited for a lock within 30 s"
    );
    assert!(
        !handle.is_finished(),
        "B's append (expected_version {expected}) returned while A's append to the same stream was uncommitted"
    );

    if first_commits {
        a.batch_execute("COMMIT").unwrap();
    } else {
        a.batch_execute("ROLLBACK").unwrap();
    }
    let outcome = handle.join().expect("B's thread panicked");

    let mut c = db.connect();
    let by: Vec<String> = c
        .query(
            "SELECT data->>'by' FROM es.events WHERE stream_id = $1 AND event_type = 'Raced' ORDER BY version",
            &[&stream],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let version: i64 = stream_version(&mut c, stream);
    let count: i64 = c
        .query_one(
            "SELECT count(*) FROM es.events WHERE stream_id = $1",
            &[&stream],
        )
        .unwrap()
        .get(0);
    assert_eq!(version, expected + 1, "stream version after the race");
    assert_eq!(count, expected + 1, "number of events after the race");

    if first_commits {
        match outcome {
            Outcome::Conflict(msg) => {
                assert!(
                    msg.contains(stream) && msg.contains("expected") && msg.contains("actual"),
                    "40001 message does not name the stream, expected and actual versions: {msg}"
                );
            }
            Outcome::Won(v) => {
                panic!("both appends with expected_version {expected} won (B got version {v})")
            }
        }
        assert_eq!(
            by,
            vec!["A".to_string()],
            "the race's only event must be A's"
        );
    } else {
        match outcome {
            Outcome::Won(v) => assert_eq!(v, expected + 1, "B's version after A rolled back"),
            Outcome::Conflict(msg) => {
                panic!("B lost although A rolled back: {msg}")
            }
        }
        assert_eq!(
            by,
            vec!["B".to_string()],
            "the race's only event must be B's"
        );
    }
}

fn prepare_stream(db: &TestDb, stream: &str, n: i64) {
    let mut c = db.connect();
    for i in 0..n {
        let v = append(
            &mut c,
            stream,
            "Prepared",
            &format!(r#"{{"i": {i}}}"#),
            Some(i),
        )
        .unwrap_or_else(|e| panic!("preparing {stream}: {}", describe(&e)));
        assert_eq!(v, i + 1);
    }
}

#[test]
fn race_on_new_stream_with_expected_version_zero_has_one_winner() {
    let db = TestDb::create_warm("race_expected_zero");
    race(&db, "account-new", 0, true);
}

#[test]
fn race_on_new_stream_second_wins_when_first_rolls_back() {
    let db = TestDb::create_warm("race_expected_zero_rollback");
    race(&db, "account-new", 0, false);
}

#[test]
fn race_with_expected_version_n_has_one_winner() {
    let db = TestDb::create_warm("race_expected_n");
    prepare_stream(&db, "account-7", 3);
    race(&db, "account-7", 3, true);
}

#[test]
fn race_with_expected_version_n_second_wins_when_first_rolls_back() {
    let db = TestDb::create_warm("race_expected_n_rollback");
    prepare_stream(&db, "account-7", 3);
    race(&db, "account-7", 3, false);
}
