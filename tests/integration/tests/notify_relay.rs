//! With the library preloaded, a database in `es.worker_databases` has a
//! notification relay: appenders hand their payload over after commit and
//! the relay's own backend sends `NOTIFY es_events`, one per committed
//! appending transaction, with the same payload. A terminated relay makes
//! appenders notify directly until it is back; a relay that cannot keep up
//! folds what does not fit in its queue into one summary notification.
//!
//! Runs in database `es_worker` (created by the test scripts, served by the
//! relay). Other runs may share it, so every stream here carries a tag unique
//! to the run, and notifications are matched by it. The tests of this file
//! stop or terminate the relay, so they run one at a time (`SERIAL`).

use pg_eventsource_integration::{
    append, append_batch, backend_pid, connect, describe, wait_until,
};
use postgres::fallible_iterator::FallibleIterator;
use postgres::Client;
use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DB: &str = "es_worker";
/// The `backend_type` of the relay in pg_stat_activity.
const RELAY_TYPE: &str = "pg_eventsource notify relay";
const WAIT: Duration = Duration::from_secs(30);

static SERIAL: Mutex<()> = Mutex::new(());

fn ok<T>(what: &str, r: Result<T, postgres::Error>) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {}", describe(&e)))
}

/// A connection to es_worker with the extension, or None (test skipped)
/// when the server does not preload the library.
fn setup(test: &str) -> Option<Client> {
    let mut admin = connect("postgres");
    let libs: String = ok(
        "SHOW shared_preload_libraries",
        admin.query_one("SHOW shared_preload_libraries", &[]),
    )
    .get(0);
    if !libs
        .split(',')
        .map(|l| l.trim().trim_matches('"'))
        .any(|l| l == "pg_eventsource" || l.ends_with("/pg_eventsource"))
    {
        println!(
            "SKIPPED {test}: the server was not started with \
             shared_preload_libraries=pg_eventsource, so there is no relay to test"
        );
        return None;
    }
    let dbs: String = ok(
        "SHOW es.worker_databases",
        admin.query_one("SHOW es.worker_databases", &[]),
    )
    .get(0);
    assert!(
        dbs.split(',').any(|d| d.trim() == DB),
        "pg_eventsource is preloaded but es.worker_databases = {dbs:?} does not name {DB}"
    );
    let mut c = relaying(DB);
    ok(
        "CREATE EXTENSION",
        c.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_eventsource"),
    );
    Some(c)
}

/// A session whose notifications always go through the relay while one is
/// alive (`es.notify_always_relay`): by default a transaction notifies
/// itself when no other notifying transaction is committing, which would
/// make which process sends what depend on timing.
fn relaying(db: &str) -> Client {
    let mut c = connect(db);
    ok(
        "SET es.notify_always_relay",
        c.batch_execute("SET es.notify_always_relay = on"),
    );
    c
}

fn relay_pid(c: &mut Client) -> Option<i32> {
    ok(
        "pg_stat_activity",
        c.query_opt(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = $1 AND datname = $2",
            &[&RELAY_TYPE, &DB],
        ),
    )
    .map(|r| r.get(0))
}

fn wait_relay(c: &mut Client, not: Option<i32>) -> i32 {
    let mut pid = None;
    assert!(
        wait_until(WAIT, || {
            pid = relay_pid(c).filter(|p| Some(*p) != not);
            pid.is_some()
        }),
        "no relay of type {RELAY_TYPE:?} (other than {not:?}) is connected to {DB} \
         (pg_stat_activity); see the server log"
    );
    pid.unwrap()
}

/// Unique to this run; no '-', so that it is the stream type of "{tag}-...".
fn tag(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("{test}{}x{}", std::process::id(), nanos % 1_000_000_000_000)
}

#[derive(Debug, Clone)]
struct Note {
    payload: String,
    process_id: i32,
}

/// A connection blocked on LISTEN es_events in a thread of its own.
struct Listener {
    rx: Receiver<Note>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    fn start() -> Listener {
        let mut c = connect(DB);
        ok("LISTEN", c.batch_execute("LISTEN es_events"));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let thread = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(600);
                let mut notes = c.notifications();
                while !stop.load(SeqCst) {
                    assert!(Instant::now() < deadline, "the listener ran out of time");
                    // A fresh iterator each time: one whose timeout has
                    // elapsed once never waits again, and then no longer
                    // reads from the socket (postgres 0.19's TimeoutIter).
                    match notes.timeout_iter(Duration::from_millis(100)).next() {
                        Ok(Some(n)) => {
                            let _ = tx.send(Note {
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
        Listener {
            rx,
            stop,
            thread: Some(thread),
        }
    }

    fn next(&self, what: &str) -> Note {
        match self.rx.recv_timeout(WAIT) {
            Ok(n) => n,
            Err(RecvTimeoutError::Timeout) => panic!(
                "no NOTIFY es_events arrived within {} s after {what}",
                WAIT.as_secs()
            ),
            Err(RecvTimeoutError::Disconnected) => {
                panic!("the listener thread ended (see its panic above) while waiting for {what}")
            }
        }
    }

    /// The next notification that names a stream of type `tag`, or an
    /// overflow summary (others come from other sessions using the database).
    fn next_of(&self, c: &mut Client, tag: &str, what: &str) -> (Note, Payload) {
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(
                Instant::now() < deadline,
                "no notification of {tag} for {what}"
            );
            let n = self.next(what);
            let p = parse(c, &n.payload);
            if p.stream_types.iter().any(|t| t == tag) || (p.truncated && p.streams.is_empty()) {
                return (n, p);
            }
        }
    }

    fn finish(mut self) {
        self.stop.store(true, SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("the listener thread panicked");
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Payload {
    events: i64,
    first_position: i64,
    last_position: i64,
    streams: Vec<String>,
    stream_types: Vec<String>,
    truncated: bool,
}

fn parse(c: &mut Client, payload: &str) -> Payload {
    let row = c
        .query_one(
            "SELECT (p->>'events')::bigint, (p->>'first_position')::bigint,
                    (p->>'last_position')::bigint,
                    ARRAY(SELECT jsonb_array_elements_text(p->'streams') ORDER BY 1),
                    ARRAY(SELECT jsonb_array_elements_text(p->'stream_types') ORDER BY 1),
                    (p->>'streams_truncated')::boolean
               FROM (SELECT $1::text::jsonb AS p) s",
            &[&payload],
        )
        .unwrap_or_else(|e| {
            panic!(
                "payload {payload:?} is not the JSON expected: {}",
                describe(&e)
            )
        });
    Payload {
        events: row
            .get::<_, Option<i64>>(0)
            .unwrap_or_else(|| panic!("payload {payload:?} has no \"events\"")),
        first_position: row
            .get::<_, Option<i64>>(1)
            .unwrap_or_else(|| panic!("payload {payload:?} has no \"first_position\"")),
        last_position: row
            .get::<_, Option<i64>>(2)
            .unwrap_or_else(|| panic!("payload {payload:?} has no \"last_position\"")),
        streams: row.get(3),
        stream_types: row.get(4),
        truncated: row
            .get::<_, Option<bool>>(5)
            .unwrap_or_else(|| panic!("payload {payload:?} has no \"streams_truncated\"")),
    }
}

/// (events, first position, last position) stored for `streams`.
fn stored(c: &mut Client, streams: &[String]) -> (i64, i64, i64) {
    let row = ok(
        "es.events",
        c.query_one(
            "SELECT count(*), coalesce(min(global_position), 0), coalesce(max(global_position), 0)
               FROM es.events WHERE stream_id = ANY ($1)",
            &[&streams],
        ),
    );
    (row.get(0), row.get(1), row.get(2))
}

/// What the payload of a transaction that appended exactly `streams` says.
fn expected(c: &mut Client, tag: &str, streams: &[String]) -> Payload {
    let (events, first, last) = stored(c, streams);
    assert!(events > 0, "nothing was stored for {streams:?}");
    let mut sorted = streams.to_vec();
    sorted.sort();
    sorted.dedup();
    Payload {
        events,
        first_position: first,
        last_position: last,
        streams: sorted,
        stream_types: vec![tag.to_string()],
        truncated: false,
    }
}

/// Appends to `stream` and waits until its notification arrives from the
/// relay (`relay`), skipping direct ones sent before the relay was marked
/// alive. Afterwards every notification of `tag` comes after this one.
fn warm_up(c: &mut Client, l: &Listener, tag: &str, relay: i32) {
    let deadline = Instant::now() + WAIT;
    for k in 0.. {
        assert!(
            Instant::now() < deadline,
            "no notification came from the relay (pid {relay}) within {} s",
            WAIT.as_secs()
        );
        let stream = format!("{tag}-warm{k}");
        ok("warm-up append", append(c, &stream, "Warm", "{}", Some(0)));
        let (n, p) = l.next_of(c, tag, "a warm-up append");
        assert_eq!(p.streams, vec![stream]);
        if n.process_id == relay {
            return;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn relay_sends_one_notification_per_committed_transaction() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut c) = setup("relay_sends_one_notification_per_committed_transaction") else {
        return;
    };
    let relay = wait_relay(&mut c, None);
    let tag = tag("rlya");
    let listener = Listener::start();
    warm_up(&mut c, &listener, &tag, relay);

    // 8 appenders at once; every fifth transaction rolls back. Each
    // transaction appends to streams of its own, which identify it.
    const THREADS: usize = 8;
    const TXNS: usize = 40;
    let start = Arc::new(std::sync::Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let tag = tag.clone();
            let start = Arc::clone(&start);
            thread::spawn(move || {
                let mut a = relaying(DB);
                let pid = backend_pid(&mut a);
                let mut txns: Vec<(Vec<String>, bool)> = Vec::new();
                start.wait();
                for k in 0..TXNS {
                    let s1 = format!("{tag}-t{t}k{k}a");
                    let s2 = format!("{tag}-t{t}k{k}b");
                    if k % 5 == 4 {
                        ok("BEGIN", a.batch_execute("BEGIN"));
                        ok("append", append(&mut a, &s1, "Ghost", "{}", Some(0)));
                        ok(
                            "batch",
                            append_batch(&mut a, &s2, r#"[{"type": "Ghost", "data": 1}]"#, None),
                        );
                        ok("ROLLBACK", a.batch_execute("ROLLBACK"));
                        txns.push((vec![s1, s2], false));
                        continue;
                    }
                    match k % 3 {
                        0 => {
                            ok("append", append(&mut a, &s1, "Single", "{}", Some(0)));
                            txns.push((vec![s1], true));
                        }
                        1 => {
                            ok(
                                "batch",
                                append_batch(
                                    &mut a,
                                    &s1,
                                    r#"[{"type": "B1", "data": 1}, {"type": "B2", "data": 2},
                                        {"type": "B2", "data": 3}]"#,
                                    Some(0),
                                ),
                            );
                            txns.push((vec![s1], true));
                        }
                        _ => {
                            ok("BEGIN", a.batch_execute("BEGIN"));
                            ok("append", append(&mut a, &s1, "Two", "{}", Some(0)));
                            ok(
                                "batch",
                                append_batch(
                                    &mut a,
                                    &s2,
                                    r#"[{"type": "Two", "data": 1}, {"type": "Two", "data": 2}]"#,
                                    None,
                                ),
                            );
                            ok("COMMIT", a.batch_execute("COMMIT"));
                            txns.push((vec![s1, s2], true));
                        }
                    }
                }
                (pid, txns)
            })
        })
        .collect();
    let mut appender_pids = Vec::new();
    let mut txns = Vec::new();
    for w in workers {
        let (pid, t) = w.join().expect("an appender thread panicked");
        appender_pids.push(pid);
        txns.extend(t);
    }

    // A last append: relayed notifications arrive in commit order, so once
    // its notification is in, all the others are.
    let marker = format!("{tag}-marker");
    ok(
        "marker append",
        append(&mut c, &marker, "Marked", "{}", Some(0)),
    );
    let mut notes: Vec<(Note, Payload)> = Vec::new();
    loop {
        let (n, p) = listener.next_of(&mut c, &tag, "the appends");
        if p.streams == [marker.clone()] {
            assert_eq!(n.process_id, relay, "the marker was not relayed");
            break;
        }
        notes.push((n, p));
    }
    listener.finish();

    let mut by_streams: HashMap<Vec<String>, Vec<&(Note, Payload)>> = HashMap::new();
    for np in &notes {
        by_streams.entry(np.1.streams.clone()).or_default().push(np);
    }
    let committed = txns.iter().filter(|t| t.1).count();
    for (streams, was_committed) in &txns {
        let mut key = streams.clone();
        key.sort();
        let got = by_streams.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        if !was_committed {
            assert!(
                got.is_empty(),
                "a rolled-back transaction notified: {got:?}"
            );
            assert_eq!(
                stored(&mut c, streams).0,
                0,
                "rolled-back events were stored"
            );
            continue;
        }
        assert_eq!(
            got.len(),
            1,
            "transaction of {streams:?}: {} notifications instead of one",
            got.len()
        );
        let (n, p) = got[0];
        assert_eq!(
            n.process_id, relay,
            "the notification of {streams:?} came from pid {} (appenders: {appender_pids:?}), \
             not from the relay (pid {relay})",
            n.process_id
        );
        assert_eq!(
            *p,
            expected(&mut c, &tag, streams),
            "payload {:?} does not describe the transaction",
            n.payload
        );
    }
    assert_eq!(
        notes.len(),
        committed,
        "notifications for something else than the committed transactions"
    );
    println!(
        "{committed} committed transactions of 8 concurrent appenders, {} rolled back: \
         {committed} notifications, all from the relay (pid {relay})",
        txns.len() - committed
    );
}

#[test]
fn appenders_notify_directly_while_the_relay_is_gone() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut c) = setup("appenders_notify_directly_while_the_relay_is_gone") else {
        return;
    };
    let relay = wait_relay(&mut c, None);
    let tag = tag("rlyb");
    let listener = Listener::start();
    warm_up(&mut c, &listener, &tag, relay);
    let mut a = relaying(DB);
    let appender = backend_pid(&mut a);

    let terminated: bool = ok(
        "pg_terminate_backend",
        c.query_one("SELECT pg_terminate_backend($1)", &[&relay]),
    )
    .get(0);
    assert!(terminated, "could not terminate the relay (pid {relay})");
    assert!(
        wait_until(WAIT, || relay_pid(&mut c).is_none()),
        "the relay (pid {relay}) is still there after pg_terminate_backend"
    );

    // Gone (it comes back after its restart time, 5 s): direct NOTIFY.
    let s = format!("{tag}-direct");
    ok("append", append(&mut a, &s, "Direct", "{}", Some(0)));
    let (n, p) = listener.next_of(&mut c, &tag, "an append while the relay is gone");
    assert!(
        relay_pid(&mut c).is_none(),
        "the relay came back too soon for this test (restart time shorter than 5 s?)"
    );
    assert_eq!(
        n.process_id, appender,
        "without a relay, the appender (pid {appender}) sends the notification itself"
    );
    assert_eq!(p, expected(&mut c, &tag, &[s]));

    // Back: relayed again (the first appends after its start may still go
    // directly, until it has marked itself alive).
    let again = wait_relay(&mut c, Some(relay));
    let deadline = Instant::now() + WAIT;
    let mut k = 0;
    loop {
        let s = format!("{tag}-again{k}");
        ok("append", append(&mut a, &s, "Again", "{}", Some(0)));
        let (n, p) = listener.next_of(&mut c, &tag, "an append after the relay's restart");
        assert_eq!(p, expected(&mut c, &tag, std::slice::from_ref(&s)));
        assert!(
            n.process_id == appender || n.process_id == again,
            "notification from pid {} (appender {appender}, new relay {again})",
            n.process_id
        );
        if n.process_id == again {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted relay (pid {again}) sent nothing within {} s",
            WAIT.as_secs()
        );
        k += 1;
        thread::sleep(Duration::from_millis(100));
    }
    let s = format!("{tag}-last");
    ok("append", append(&mut a, &s, "Last", "{}", Some(0)));
    let (n, p) = listener.next_of(&mut c, &tag, "the last append");
    assert_eq!(n.process_id, again, "not relayed once the relay is back");
    assert_eq!(p, expected(&mut c, &tag, &[s]));
    listener.finish();
}

/// Stops the relay process (SIGSTOP) while it waits on its latch, holding
/// nothing; resumes it (SIGCONT) when dropped, also when the test fails.
struct Paused(i32);

fn signal(pid: i32, sig: &str) -> bool {
    Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

impl Paused {
    fn pause(c: &mut Client, pid: i32) -> Paused {
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(
                signal(pid, "-STOP"),
                "cannot send SIGSTOP to the relay (pid {pid}): this test must run on the \
                 server's machine as root or as the server's user"
            );
            let paused = Paused(pid);
            assert!(
                wait_until(Duration::from_secs(5), || state(pid) == Some('T')),
                "the relay (pid {pid}) did not stop"
            );
            // Stopped inside its latch wait (not mid-way through sending,
            // with its queue's lock held).
            let row = ok(
                "wait event",
                c.query_one(
                    "SELECT coalesce(wait_event_type, ''), coalesce(wait_event, '')
                       FROM pg_stat_activity WHERE pid = $1",
                    &[&pid],
                ),
            );
            if (row.get::<_, String>(0), row.get::<_, String>(1))
                == ("Extension".into(), "Extension".into())
            {
                return paused;
            }
            drop(paused);
            assert!(Instant::now() < deadline, "the relay was never idle");
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        signal(self.0, "-CONT");
    }
}

#[test]
fn payloads_that_do_not_fit_are_folded_into_one_summary() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut c) = setup("payloads_that_do_not_fit_are_folded_into_one_summary") else {
        return;
    };
    let relay = wait_relay(&mut c, None);
    let tag = tag("rlyc");
    let listener = Listener::start();
    warm_up(&mut c, &listener, &tag, relay);
    let buffer_kb: String = ok(
        "SHOW es.notify_relay_buffer",
        c.query_one("SHOW es.notify_relay_buffer", &[]),
    )
    .get(0);
    let mut a = relaying(DB);

    // With the relay stopped, nothing is sent: the queue fills, then each
    // further payload is folded. Each transaction's payload is about 4.7 kB
    // (ten long stream ids), so 150 of them pass a 256 kB queue.
    const TXNS: usize = 150;
    const STREAMS: usize = 10;
    let paused = Paused::pause(&mut c, relay);
    let pad = "p".repeat(430);
    let mut txns: Vec<Vec<String>> = Vec::new();
    for i in 0..TXNS {
        let streams: Vec<String> = (0..STREAMS)
            .map(|j| format!("{tag}-o{i}s{j}{pad}"))
            .collect();
        ok("BEGIN", a.batch_execute("BEGIN"));
        for s in &streams {
            ok("append", append(&mut a, s, "Filled", "{}", Some(0)));
        }
        ok("COMMIT", a.batch_execute("COMMIT"));
        txns.push(streams);
    }
    assert!(
        listener.rx.try_recv().is_err(),
        "a notification arrived while the relay was stopped"
    );
    drop(paused);

    // The queued payloads in commit order, then one summary of the rest.
    let mut k = 0;
    let summary = loop {
        let (n, p) = listener.next_of(&mut c, &tag, "resuming the relay");
        assert_eq!(n.process_id, relay, "not sent by the relay");
        if p.truncated && p.streams.is_empty() {
            break p;
        }
        assert!(k < TXNS, "more notifications than transactions");
        assert_eq!(
            p,
            expected(&mut c, &tag, &txns[k]),
            "notification {k} is not transaction {k}'s payload"
        );
        k += 1;
    };
    assert!(
        k > 0 && k < TXNS,
        "{k} of {TXNS} payloads were queued (es.notify_relay_buffer = {buffer_kb}): \
         expected some, not all"
    );
    let rest: Vec<String> = txns[k..].iter().flatten().cloned().collect();
    let (events, first, last) = stored(&mut c, &rest);
    assert_eq!(
        (
            summary.events,
            summary.first_position,
            summary.last_position
        ),
        (events, first, last),
        "the summary does not cover the {} transactions that did not fit",
        TXNS - k
    );
    assert_eq!(events, ((TXNS - k) * STREAMS) as i64);
    assert!(summary.stream_types.is_empty());

    // Drained: the next append is relayed on its own.
    let s = format!("{tag}-after");
    ok("append", append(&mut a, &s, "After", "{}", Some(0)));
    let (n, p) = listener.next_of(&mut c, &tag, "an append after the summary");
    assert_eq!(n.process_id, relay);
    assert_eq!(p, expected(&mut c, &tag, &[s]));
    listener.finish();
    println!(
        "{k} payloads queued (es.notify_relay_buffer = {buffer_kb}), {} folded into one summary",
        TXNS - k
    );
}

/// The default: a transaction notifies itself when no other notifying
/// transaction is committing, and hands its notification to the relay when
/// one is (so appenders never wait for each other's commits). Either way
/// each committed transaction is notified exactly once, with its payload.
#[test]
fn by_default_only_contended_commits_go_through_the_relay() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut c) = setup("by_default_only_contended_commits_go_through_the_relay") else {
        return;
    };
    let relay = wait_relay(&mut c, None);
    let tag = tag("rlyd");
    let listener = Listener::start();
    warm_up(&mut c, &listener, &tag, relay);

    // Alone: the appender sends its own notification (the relay may be busy
    // for a moment after the warm-up, so a few tries).
    let mut a = connect(DB);
    let appender = backend_pid(&mut a);
    let mut direct = false;
    for k in 0..10 {
        let stream = format!("{tag}-alone{k}");
        ok("append", append(&mut a, &stream, "Alone", "{}", Some(0)));
        let (n, p) = listener.next_of(&mut c, &tag, "an uncontended append");
        assert_eq!(p.streams, vec![stream]);
        if n.process_id == appender {
            direct = true;
            break;
        }
        assert_eq!(
            n.process_id, relay,
            "a notification from neither the appender nor the relay"
        );
        thread::sleep(Duration::from_millis(200));
    }
    assert!(direct, "an uncontended append never notified by itself");

    // 8 appenders at once, sync commit on: their commits overlap.
    const THREADS: usize = 8;
    const TXNS: usize = 40;
    let start = Arc::new(std::sync::Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let tag = tag.clone();
            let start = Arc::clone(&start);
            thread::spawn(move || {
                let mut a = connect(DB);
                let pid = backend_pid(&mut a);
                let mut streams = Vec::new();
                start.wait();
                for k in 0..TXNS {
                    let s = format!("{tag}-t{t}k{k}");
                    ok("append", append(&mut a, &s, "Busy", "{}", Some(0)));
                    streams.push(s);
                }
                (pid, streams)
            })
        })
        .collect();
    let mut pid_of: HashMap<String, i32> = HashMap::new();
    for w in workers {
        let (pid, streams) = w.join().expect("an appender thread panicked");
        for s in streams {
            pid_of.insert(s, pid);
        }
    }
    // Collect until every transaction was notified, then a little longer
    // for any duplicate.
    let mut got: HashMap<String, Vec<(Note, Payload)>> = HashMap::new();
    let mut seen = 0;
    while seen < pid_of.len() {
        let (n, p) = listener.next_of(&mut c, &tag, "the concurrent appends");
        assert_eq!(
            p.streams.len(),
            1,
            "payload {:?} names more than one stream",
            n.payload
        );
        let s = p.streams[0].clone();
        assert!(
            pid_of.contains_key(&s),
            "a notification of {s:?}, which no appender wrote"
        );
        let e = got.entry(s).or_default();
        if e.is_empty() {
            seen += 1;
        }
        e.push((n, p));
    }
    let quiet = Instant::now() + Duration::from_millis(500);
    while Instant::now() < quiet {
        if let Ok(n) = listener.rx.recv_timeout(Duration::from_millis(100)) {
            let p = parse(&mut c, &n.payload);
            if p.stream_types.contains(&tag) {
                panic!(
                    "a notification after every transaction had one: {:?}",
                    n.payload
                );
            }
        }
    }
    listener.finish();
    let (mut relayed, mut own) = (0, 0);
    for (s, notes) in &got {
        assert_eq!(
            notes.len(),
            1,
            "{s}: {} notifications instead of one",
            notes.len()
        );
        let (n, p) = &notes[0];
        assert_eq!(
            *p,
            expected(&mut c, &tag, std::slice::from_ref(s)),
            "payload {:?}",
            n.payload
        );
        if n.process_id == relay {
            relayed += 1;
        } else {
            assert_eq!(
                n.process_id, pid_of[s],
                "{s} was notified by pid {}, neither its appender nor the relay",
                n.process_id
            );
            own += 1;
        }
    }
    assert!(
        relayed > 0,
        "none of {} overlapping commits went through the relay: appenders waited for each other",
        got.len()
    );
    println!(
        "{} transactions of 8 concurrent appenders: {own} notified by themselves, {relayed} by the relay",
        got.len()
    );
}
