//! The read horizon is held back only by transactions of the event store's
//! database that have appended: an open transaction in another database, or
//! in the same database on another table, delays no consumer; one that has
//! appended holds later positions back, and `es.horizon()` names it; a
//! transaction that took its id early and appends late is never skipped;
//! when an appender that held readers back ends without a notification of
//! its own, `es_events` announces `{"horizon": position}` (through the relay,
//! or a process started for it where the database has none), so LISTENing
//! consumers and the projection worker never wait for the next append.
//!
//! A prepared transaction that appended holds it until COMMIT PREPARED.
//!
//! Needs the library preloaded (the registry lives in shared memory); the
//! tests skip, saying so, on a server without it. Tests that use the
//! database `es_worker` (served by the worker and the relay) run one at a
//! time (`SERIAL`): an appender they hold open would hold the others back.

use pg_eventsource_integration::{
    append, backend_pid, connect, describe, wait_until, TestDb, ThrowawayCluster,
};
use postgres::fallible_iterator::FallibleIterator;
use postgres::Client;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DB: &str = "es_worker";
const WAIT: Duration = Duration::from_secs(60);
/// How long the unrelated transactions stay open at most.
const HOLD: Duration = Duration::from_secs(30);

static SERIAL: Mutex<()> = Mutex::new(());

fn ok<T>(what: &str, r: Result<T, postgres::Error>) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {}", describe(&e)))
}

fn preloaded() -> bool {
    let libs: String = ok(
        "SHOW shared_preload_libraries",
        connect("postgres").query_one("SHOW shared_preload_libraries", &[]),
    )
    .get(0);
    let yes = libs
        .split(',')
        .map(|l| l.trim().trim_matches('"'))
        .any(|l| l == "pg_eventsource" || l.ends_with("/pg_eventsource"));
    if !yes {
        println!(
            "SKIPPED: the server was not started with shared_preload_libraries=pg_eventsource; \
             without it the horizon is the snapshot's xmin (documented)"
        );
    }
    yes
}

fn tag(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        nanos % 1_000_000_000_000
    )
}

/// A connection to es_worker with the extension.
fn worker_db() -> Client {
    let mut c = connect(DB);
    ok(
        "CREATE EXTENSION",
        c.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_eventsource"),
    );
    c
}

fn position_of(c: &mut Client, stream: &str) -> i64 {
    ok(
        "position",
        c.query_one(
            "SELECT global_position FROM es.events WHERE stream_id = $1 AND version = 1",
            &[&stream],
        ),
    )
    .get(0)
}

/// Events of `stream_type` after `after` that es.read_all hands out now.
fn read_all_of(c: &mut Client, after: i64, stream_type: &str) -> Vec<(i64, String)> {
    ok(
        "es.read_all",
        c.query(
            "SELECT global_position, stream_id FROM es.read_all($1, 1000, NULL, ARRAY[$2::text])",
            &[&after, &stream_type],
        ),
    )
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// A session that opens a transaction holding a transaction id: an INSERT
/// into `table` (created first); it stays open until dropped or `end`.
struct OpenWrite {
    c: Client,
    pid: i32,
}

impl OpenWrite {
    fn start(db: &str, table: &str) -> OpenWrite {
        let mut c = connect(db);
        ok(
            "scratch table",
            c.batch_execute(&format!("CREATE TABLE IF NOT EXISTS {table} (x int)")),
        );
        let pid = backend_pid(&mut c);
        ok(
            "open write",
            c.batch_execute(&format!("BEGIN; INSERT INTO {table} VALUES (1)")),
        );
        OpenWrite { c, pid }
    }

    /// Its transaction is still running (checked from another session).
    fn still_open(&self, observer: &mut Client) -> bool {
        ok(
            "pg_stat_activity",
            observer.query_one(
                "SELECT count(*) = 1 FROM pg_stat_activity WHERE pid = $1 AND backend_xid IS NOT NULL",
                &[&self.pid],
            ),
        )
        .get(0)
    }

    fn end(mut self) {
        ok("rollback", self.c.batch_execute("ROLLBACK"));
    }
}

/// A thread that LISTENs on es_events in `db` and passes every payload on.
fn listen(mut c: Client, stop: Arc<AtomicBool>) -> (Receiver<String>, thread::JoinHandle<()>) {
    ok("LISTEN", c.batch_execute("LISTEN es_events"));
    let (tx, rx) = mpsc::channel();
    let h = thread::spawn(move || {
        while !stop.load(SeqCst) {
            let mut notes = c.notifications();
            let mut it = notes.timeout_iter(Duration::from_millis(100));
            while let Ok(Some(n)) = it.next() {
                if tx.send(n.payload().to_owned()).is_err() {
                    return;
                }
            }
        }
    });
    (rx, h)
}

/// Waits for a payload that satisfies `f`; panics after WAIT.
fn wait_note(rx: &Receiver<String>, what: &str, f: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(p) if f(&p) => return p,
            Ok(_) => {}
            Err(_) => panic!("no notification {what} within {WAIT:?}"),
        }
    }
}

/// A throwaway cluster with the library preloaded (and `options`), database
/// `db` with the extension, one committed warm-up append; a connection to it
/// and the position to read from.
fn warm_cluster(
    name: &str,
    port_var: &str,
    port: u16,
    options: &str,
    db: &str,
) -> (ThrowawayCluster, Client, i64) {
    let cluster = ThrowawayCluster::create(
        name,
        port_var,
        port,
        &format!("-c shared_preload_libraries=pg_eventsource {options}"),
        &[],
    );
    ok(
        "create database",
        cluster
            .connect("postgres")
            .batch_execute(&format!("CREATE DATABASE {db}")),
    );
    let mut c = cluster.connect(db);
    ok(
        "extension",
        c.batch_execute("CREATE EXTENSION pg_eventsource"),
    );
    ok("warm-up", append(&mut c, "warm-1", "A", "{}", None));
    let start: i64 = ok("start", c.query_one("SELECT es.read_horizon() - 1", &[])).get(0);
    (cluster, c, start)
}

#[test]
fn unrelated_open_transactions_delay_no_consumer() {
    if !preloaded() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = worker_db();
    let t = tag("hzu");
    let table = format!("public.{t}_seen");
    let handler = format!("public.{t}_record");
    ok(
        "read model, async projection, subscription",
        c.batch_execute(&format!(
            "CREATE TABLE {table} (global_position bigint PRIMARY KEY, stream_id text NOT NULL);
             CREATE FUNCTION {handler}(e es.events) RETURNS void LANGUAGE sql AS $$
                 INSERT INTO {table} VALUES (e.global_position, e.stream_id) $$;
             SELECT es.create_projection('{t}_projection', '{handler}(es.events)'::regprocedure,
                                         mode => 'async', stream_types => ARRAY['{t}']);
             SELECT es.subscribe('{t}_consumer', stream_types => ARRAY['{t}']);"
        )),
    );
    let start: i64 = ok("horizon", c.query_one("SELECT es.read_horizon() - 1", &[])).get(0);

    // A write transaction in another database, and one in this database on
    // another table: both hold transaction ids, neither appends.
    let other = TestDb::create_empty("horizon_other_db");
    let elsewhere = OpenWrite::start(&other.name, "public.busy");
    let same_db = OpenWrite::start(DB, &format!("public.{t}_other"));
    let opened = Instant::now();
    let mut observer = connect(DB);
    assert!(elsewhere.still_open(&mut observer) && same_db.still_open(&mut observer));

    let stop = Arc::new(AtomicBool::new(false));
    let (notes, listener) = listen(connect(DB), stop.clone());
    let mut reader = connect(DB);
    let mut sub = connect(DB);
    let consumer = format!("{t}_consumer");
    // Rounds over the whole time the unrelated transactions stay open.
    const ROUNDS: usize = 6;
    let mut worst = Duration::ZERO;
    for round in 1..=ROUNDS {
        let stream = format!("{t}-{round}");
        let appended_at = Instant::now();
        ok("append", append(&mut c, &stream, "Happened", "{}", None));
        let p = position_of(&mut c, &stream);

        // Nothing unrelated holds the horizon.
        let r = ok(
            "es.horizon",
            observer.query_one(
                "SELECT horizon_position, held_by, holder_pid IN ($1, $2) FROM es.horizon()",
                &[&elsewhere.pid, &same_db.pid],
            ),
        );
        let (h, held_by, by_blockers): (i64, Option<String>, Option<bool>) =
            (r.get(0), r.get(1), r.get(2));
        assert_ne!(
            by_blockers,
            Some(true),
            "es.horizon() names an unrelated transaction as holder (held_by {held_by:?})"
        );
        let mut latencies = Vec::new();
        // 1. es.read_all
        assert!(
            wait_until(HOLD, || read_all_of(&mut reader, start, &t).len() == round),
            "es.read_all did not hand out the event while unrelated transactions were open \
             (horizon {h}, event at {p})"
        );
        latencies.push(("es.read_all", appended_at.elapsed()));
        // 2. es.poll (acknowledging what it handed out)
        assert!(
            wait_until(HOLD, || {
                let rows = ok(
                    "es.poll",
                    reader.query("SELECT global_position FROM es.poll($1, 10)", &[&consumer]),
                );
                if let Some(last) = rows.last() {
                    let pos: i64 = last.get(0);
                    ok(
                        "es.ack",
                        reader.execute("SELECT es.ack($1, $2)", &[&consumer, &pos]),
                    );
                }
                rows.len() == 1
            }),
            "es.poll did not hand out the event while unrelated transactions were open"
        );
        latencies.push(("es.poll", appended_at.elapsed()));
        // 3. the async projection, run by the worker
        assert!(
            wait_until(HOLD, || {
                ok(
                    "read model",
                    reader.query_one(&format!("SELECT count(*) FROM {table}"), &[]),
                )
                .get::<_, i64>(0)
                    == round as i64
            }),
            "the worker did not project the event while unrelated transactions were open"
        );
        latencies.push(("async projection (worker)", appended_at.elapsed()));
        // 4. a LISTENing subscriber: notified, then reads it at once
        let payload = wait_note(&notes, "for the append", |n| n.contains(&stream));
        let got = read_all_of(&mut sub, start, &t);
        assert_eq!(
            got.last(),
            Some(&(p, stream.clone())),
            "after its notification ({payload}) a LISTENing subscriber could not read the event"
        );
        latencies.push(("LISTEN + es.read_all", appended_at.elapsed()));
        worst = worst.max(latencies.iter().map(|l| l.1).max().unwrap_or_default());
        assert!(
            elsewhere.still_open(&mut observer) && same_db.still_open(&mut observer),
            "the unrelated transactions ended before the checks were done"
        );
        println!(
            "round {round}, {:?} after the unrelated transactions began: {latencies:?}",
            opened.elapsed()
        );
        let next = opened + HOLD * round as u32 / ROUNDS as u32;
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    println!(
        "every event delivered to all four consumers within {worst:?} while the unrelated \
         transactions stayed open for {:?}",
        opened.elapsed()
    );
    stop.store(true, SeqCst);
    listener.join().unwrap();
    elsewhere.end();
    same_db.end();
    ok(
        "clean up",
        c.batch_execute(&format!(
            "SELECT es.drop_projection('{t}_projection'); SELECT es.unsubscribe('{t}_consumer');"
        )),
    );
}

#[test]
fn an_open_appender_holds_back_later_positions_and_is_named() {
    if !preloaded() {
        return;
    }
    let db = TestDb::create_warm("horizon_appender");
    let mut holder = db.connect();
    let holder_pid = backend_pid(&mut holder);
    ok(
        "open append",
        holder.batch_execute("BEGIN; SELECT es.append_event('held-1', 'A', '{}')"),
    );
    let mut c = db.connect();
    let start: i64 = ok("start", c.query_one("SELECT es.read_horizon() - 1", &[])).get(0);
    ok("append", append(&mut c, "later-1", "B", "{}", None));
    let later = position_of(&mut c, "later-1");
    thread::sleep(Duration::from_millis(300));
    let seen: Vec<String> = ok(
        "es.read_all",
        c.query("SELECT stream_id FROM es.read_all($1, 100)", &[&start]),
    )
    .iter()
    .map(|r| r.get(0))
    .collect();
    assert!(
        seen.is_empty(),
        "events at or above an open appender's position were handed out: {seen:?}"
    );
    let r = ok(
        "es.horizon",
        c.query_one(
            "SELECT held_by, holder_pid, holder_database, holder_age > interval '0',
                    held_back_events, horizon_position, readers_waiting
               FROM es.horizon()",
            &[],
        ),
    );
    assert_eq!(r.get::<_, Option<String>>(0).as_deref(), Some("appending"));
    assert_eq!(r.get::<_, Option<i32>>(1), Some(holder_pid));
    assert_eq!(
        r.get::<_, Option<String>>(2).as_deref(),
        Some(db.name.as_str())
    );
    assert_eq!(r.get::<_, Option<bool>>(3), Some(true));
    assert_eq!(
        r.get::<_, i64>(4),
        1,
        "held back: the committed later event"
    );
    assert!(r.get::<_, i64>(5) <= later);
    assert_eq!(
        r.get::<_, Option<bool>>(6),
        Some(true),
        "es.read_all waited for it"
    );
    ok("commit", holder.batch_execute("COMMIT"));
    let seen: Vec<String> = ok(
        "es.read_all",
        c.query("SELECT stream_id FROM es.read_all($1, 100)", &[&start]),
    )
    .iter()
    .map(|r| r.get(0))
    .collect();
    assert_eq!(seen, vec!["held-1".to_owned(), "later-1".to_owned()]);
}

#[test]
fn a_late_appender_is_never_skipped() {
    if !preloaded() {
        return;
    }
    let db = TestDb::create_warm("horizon_late");
    let mut c = db.connect();
    ok("table", c.batch_execute("CREATE TABLE side (x int)"));

    // One by hand: the id taken before a reader moves past it.
    let mut late = db.connect();
    ok(
        "early id",
        late.batch_execute("BEGIN; INSERT INTO side VALUES (1)"),
    );
    let early_xid: i64 = ok(
        "xid",
        late.query_one("SELECT pg_current_xact_id()::text::bigint", &[]),
    )
    .get(0);
    ok("append", append(&mut c, "first-1", "A", "{}", None));
    let seen = read_all_of_all(&mut c, 0);
    let checkpoint = seen.last().expect("the committed event").0;
    assert!(
        checkpoint > early_xid << 20,
        "the reader moved past the early id (held back only by appenders)"
    );
    ok(
        "late append",
        late.batch_execute("SELECT es.append_event('late-1', 'A', '{}'); COMMIT"),
    );
    let after = read_all_of_all(&mut c, checkpoint);
    assert_eq!(
        after.iter().map(|e| e.1.as_str()).collect::<Vec<_>>(),
        vec!["late-1"],
        "the late event must come after the checkpoint a reader already holds"
    );

    // Many at once: writers that take their id early and append late race a
    // reader paging by position; it sees every committed event exactly once.
    const WRITERS: usize = 6;
    const ROUNDS: usize = 40;
    let done = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let name = db.name.clone();
            let done = done.clone();
            thread::spawn(move || {
                let mut c = connect(&name);
                for r in 0..ROUNDS {
                    ok(
                        "early id",
                        c.batch_execute("BEGIN; INSERT INTO side VALUES (2)"),
                    );
                    thread::sleep(Duration::from_millis((r * 7 + w * 3) as u64 % 20));
                    let stream = format!("race-{w}-{r}");
                    ok("late append", append(&mut c, &stream, "A", "{}", None));
                    if r % 5 == 4 {
                        ok("rollback", c.batch_execute("ROLLBACK"));
                    } else {
                        ok("commit", c.batch_execute("COMMIT"));
                    }
                }
                done.fetch_add(1, SeqCst);
            })
        })
        .collect();
    let mut last = after.last().expect("late-1").0;
    let mut streams = BTreeSet::new();
    let deadline = Instant::now() + WAIT * 2;
    let expected = WRITERS * (ROUNDS - ROUNDS / 5);
    while streams.len() < expected {
        assert!(
            Instant::now() < deadline,
            "reader saw {} of {expected}",
            streams.len()
        );
        let page = read_all_of_all(&mut c, last);
        for (pos, s) in page {
            assert!(pos > last);
            last = pos;
            assert!(streams.insert(s.clone()), "{s} handed out twice");
        }
        if done.load(SeqCst) < WRITERS {
            thread::sleep(Duration::from_millis(3));
        }
    }
    for w in writers {
        w.join().unwrap();
    }
    let committed: i64 = ok(
        "count",
        c.query_one(
            "SELECT count(*) FROM es.events WHERE stream_id LIKE 'race-%'",
            &[],
        ),
    )
    .get(0);
    assert_eq!(committed as usize, expected);
    assert_eq!(
        streams.len(),
        expected,
        "the reader missed events of late appenders"
    );
}

fn read_all_of_all(c: &mut Client, after: i64) -> Vec<(i64, String)> {
    ok(
        "es.read_all",
        c.query(
            "SELECT global_position, stream_id FROM es.read_all($1, 1000)",
            &[&after],
        ),
    )
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// The holder rolls back (`commit` false) or commits with es.notify off:
/// a LISTENing consumer held back by it gets `{"horizon": p}`.
fn announced_when_holder_ends(commit: bool) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = worker_db();
    // A rollback is announced by the relay (nothing can be sent from an
    // aborted transaction): wait for it, in case it is (re)starting.
    assert!(
        wait_until(WAIT, || {
            ok(
                "relay",
                c.query_one(
                    "SELECT count(*) >= 1 FROM pg_stat_activity
                      WHERE backend_type = 'pg_eventsource notify relay' AND datname = current_database()",
                    &[],
                ),
            )
            .get(0)
        }),
        "no notify relay serves {DB}"
    );
    let t = tag(if commit { "hzc" } else { "hzr" });
    let start: i64 = ok("start", c.query_one("SELECT es.read_horizon() - 1", &[])).get(0);
    let stop = Arc::new(AtomicBool::new(false));
    let (notes, listener) = listen(connect(DB), stop.clone());

    let mut holder = connect(DB);
    ok(
        "open append",
        holder.batch_execute(&format!(
            "BEGIN; SET LOCAL es.notify = off;
             SELECT es.append_event('{t}-held', 'A', '{{}}', stream_type => '{t}')"
        )),
    );
    let held_at: i64 = ok(
        "held position",
        holder.query_one(
            "SELECT global_position FROM es.events WHERE stream_id = $1",
            &[&format!("{t}-held")],
        ),
    )
    .get(0);
    ok(
        "later append",
        c.query_one(
            "SELECT es.append_event($1, 'B', '{}', stream_type => $2)",
            &[&format!("{t}-later"), &t],
        ),
    );
    wait_note(&notes, "for the later append", |p| {
        p.contains(&format!("{t}-later"))
    });
    // the consumer reads: held back, so it waits on the holder
    let mut consumer = connect(DB);
    assert!(read_all_of(&mut consumer, start, &t).is_empty());
    let waiting: Option<bool> = ok(
        "es.horizon",
        c.query_one("SELECT readers_waiting FROM es.horizon()", &[]),
    )
    .get(0);
    assert_eq!(waiting, Some(true));

    ok(
        "end holder",
        holder.batch_execute(if commit { "COMMIT" } else { "ROLLBACK" }),
    );
    let note = wait_note(&notes, "announcing the horizon", |p| {
        p.contains("\"horizon\"")
    });
    assert_eq!(note, format!("{{\"horizon\": {held_at}}}"));
    let mut want = vec![format!("{t}-later")];
    if commit {
        want.insert(0, format!("{t}-held"));
    }
    let got: Vec<String> = read_all_of(&mut consumer, start, &t)
        .into_iter()
        .map(|e| e.1)
        .collect();
    assert_eq!(
        got, want,
        "after the announcement the consumer reads what was held back"
    );
    stop.store(true, SeqCst);
    listener.join().unwrap();
}

#[test]
fn a_rolled_back_holder_announces_the_horizon() {
    if preloaded() {
        announced_when_holder_ends(false);
    }
}

#[test]
fn a_holder_without_notifications_announces_the_horizon_at_commit() {
    if preloaded() {
        announced_when_holder_ends(true);
    }
}

/// The worker wakes for the announcement: with es.worker_interval at ten
/// minutes it would otherwise not look again.
#[test]
fn the_worker_catches_up_without_polling() {
    if !preloaded() {
        return;
    }
    let db = "hzw";
    let cluster = ThrowawayCluster::create(
        "horizon-worker",
        "ES_HORIZON_PGPORT",
        28821,
        &format!(
            "-c shared_preload_libraries=pg_eventsource -c es.worker_databases={db} \
             -c es.worker_interval=600000"
        ),
        &[],
    );
    let mut admin = cluster.connect("postgres");
    ok(
        "create database",
        admin.batch_execute(&format!("CREATE DATABASE {db}")),
    );
    let mut c = cluster.connect(db);
    ok(
        "projection",
        c.batch_execute(
            "CREATE EXTENSION pg_eventsource;
             CREATE TABLE seen (stream_id text PRIMARY KEY);
             CREATE FUNCTION record(e es.events) RETURNS void LANGUAGE sql AS $$
                 INSERT INTO seen VALUES (e.stream_id) $$;
             SELECT es.create_projection('p', 'record(es.events)'::regprocedure, mode => 'async');",
        ),
    );
    fn seen(c: &mut Client, s: &str) -> bool {
        ok(
            "seen",
            c.query_one("SELECT count(*) = 1 FROM seen WHERE stream_id = $1", &[&s]),
        )
        .get(0)
    }
    assert!(
        wait_until(WAIT, || {
            ok(
                "worker",
                c.query_one(
                    "SELECT count(*) >= 1 FROM pg_stat_activity WHERE backend_type = 'pg_eventsource projections'",
                    &[],
                ),
            )
            .get(0)
        }),
        "no worker connected"
    );
    ok("warm-up", append(&mut c, "warm-1", "A", "{}", None));
    assert!(
        wait_until(WAIT, || seen(&mut c, "warm-1")),
        "the worker did not wake for an append"
    );

    let mut holder = cluster.connect(db);
    ok(
        "open append",
        holder.batch_execute("BEGIN; SELECT es.append_event('held-1', 'A', '{}')"),
    );
    ok("later append", append(&mut c, "later-1", "A", "{}", None));
    // the worker, woken by the later commit, is held back by the open appender
    assert!(
        wait_until(WAIT, || {
            ok(
                "es.horizon",
                c.query_one("SELECT readers_waiting FROM es.horizon()", &[]),
            )
            .get::<_, Option<bool>>(0)
                == Some(true)
        }),
        "the worker did not read while the appender was open"
    );
    assert!(!seen(&mut c, "later-1"));
    ok("rollback", holder.batch_execute("ROLLBACK"));
    assert!(
        wait_until(WAIT, || seen(&mut c, "later-1")),
        "the worker did not catch up after the holder rolled back (it polls only every 10 minutes)"
    );
}

/// Without a relay (the database is not in es.worker_databases) a rollback
/// is announced by a short-lived background process.
#[test]
fn a_rollback_is_announced_where_no_relay_serves_the_database() {
    if !preloaded() {
        return;
    }
    let db = "hza";
    let (cluster, mut c, start) = warm_cluster(
        "horizon-announce",
        "ES_HORIZON_ANNOUNCE_PGPORT",
        28822,
        "",
        db,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (notes, listener) = listen(cluster.connect(db), stop.clone());

    let mut holder = cluster.connect(db);
    ok(
        "open append",
        holder.batch_execute("BEGIN; SELECT es.append_event('held-1', 'A', '{}')"),
    );
    let held_at: i64 = ok(
        "held position",
        holder.query_one(
            "SELECT global_position FROM es.events WHERE stream_id = 'held-1'",
            &[],
        ),
    )
    .get(0);
    ok("later append", append(&mut c, "later-1", "A", "{}", None));
    wait_note(&notes, "for the later append", |p| p.contains("later-1"));
    let mut consumer = cluster.connect(db);
    assert!(read_all_of_all(&mut consumer, start).is_empty());
    ok("rollback", holder.batch_execute("ROLLBACK"));
    let note = wait_note(&notes, "announcing the horizon", |p| {
        p.contains("\"horizon\"")
    });
    assert_eq!(note, format!("{{\"horizon\": {held_at}}}"));
    let got: Vec<String> = read_all_of_all(&mut consumer, start)
        .into_iter()
        .map(|e| e.1)
        .collect();
    assert_eq!(got, vec!["later-1".to_owned()]);
    stop.store(true, SeqCst);
    listener.join().unwrap();
}

/// A prepared transaction that appended holds the horizon until COMMIT
/// PREPARED, although its backend has moved on (its slot is free again).
#[test]
fn a_prepared_appender_holds_back_until_it_commits() {
    if !preloaded() {
        return;
    }
    let db = "hzp";
    let (cluster, mut c, start) = warm_cluster(
        "horizon-prepared",
        "ES_HORIZON_PREPARED_PGPORT",
        28823,
        "-c max_prepared_transactions=4",
        db,
    );

    let mut p = cluster.connect(db);
    ok(
        "prepare",
        p.batch_execute(
            "BEGIN; SELECT es.append_event('prepared-1', 'A', '{}'); PREPARE TRANSACTION 'hzp1'",
        ),
    );
    // the session goes on with other work; the prepared transaction stays
    ok("later append", append(&mut c, "later-1", "A", "{}", None));
    ok("other work", p.batch_execute("SELECT 1"));
    assert!(
        read_all_of_all(&mut c, start).is_empty(),
        "an event after a prepared appender's position was handed out before it committed"
    );
    let held_by: Option<String> = ok(
        "es.horizon",
        c.query_one("SELECT held_by FROM es.horizon()", &[]),
    )
    .get(0);
    assert_eq!(held_by.as_deref(), Some("prepared"));
    ok("commit prepared", c.batch_execute("COMMIT PREPARED 'hzp1'"));
    let got: Vec<String> = read_all_of_all(&mut c, start)
        .into_iter()
        .map(|e| e.1)
        .collect();
    assert_eq!(got, vec!["prepared-1".to_owned(), "later-1".to_owned()]);
}
