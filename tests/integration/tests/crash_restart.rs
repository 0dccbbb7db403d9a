//! Crash safety: the postmaster of a cluster is killed with
//! SIGKILL while 8 clients append (single events with and without expected
//! versions, `es.append_events` batches, and transactions appending to two
//! streams), with an aggregate taking snapshots every 5 events, an inline
//! projection and the built-in materializer running in the appending
//! transactions. After a restart (crash recovery):
//!
//! * every append that returned success is there, with the stream, version,
//!   type and data the client sent (found by the event ids the client chose);
//! * nothing is partial: each batch or transaction is all there or not at all;
//!   appends that were rejected (40001) are absent; no event appears that no
//!   client sent;
//! * `es.verify()` (full: snapshots and the materialized table equal folds
//!   from scratch) is empty;
//! * the inline projection's table holds, per stream, exactly its committed
//!   events;
//! * appending works again, and the projection and materializer follow.
//!
//! The shared cluster under test is never touched: this test runs its own
//! throwaway cluster from the same binaries (`ES_PG_BIN`), on port 28818 (or
//! `ES_CRASH_PGPORT`), with its own socket directory, stopped on drop and
//! removed unless the test failed.

use pg_eventsource_integration::{describe, run_command, wait_until, ThrowawayCluster};
use postgres::error::SqlState;
use postgres::Client;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const WRITERS: usize = 8;
const STREAMS: usize = 24;
/// The postmaster is killed once the writers have this many committed events
/// between them (or when `KILL_AFTER` has passed, whichever comes first).
const KILL_AT_EVENTS: usize = 2_000;
const KILL_AFTER: Duration = Duration::from_secs(90);
/// A writer that somehow never sees its connection break stops after this.
const WRITER_DEADLINE: Duration = Duration::from_secs(240);
const DB: &str = "crash";

fn run(cmd: &mut Command) -> String {
    run_command(cmd)
}

/// This test's cluster, with the library preloaded.
fn create_cluster() -> ThrowawayCluster {
    ThrowawayCluster::create(
        "crash-cluster",
        "ES_CRASH_PGPORT",
        28818,
        "-c shared_preload_libraries=pg_eventsource -c max_connections=40",
        &[],
    )
}

fn postmaster_pid(cluster: &ThrowawayCluster) -> i32 {
    let text = std::fs::read_to_string(cluster.data().join("postmaster.pid"))
        .expect("postmaster.pid of the crash-test cluster");
    text.lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid in postmaster.pid: {text:?}"))
}

/// Process ids whose parent is `parent` (from /proc).
fn children_of(parent: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...; comm may contain spaces and parentheses
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let ppid: Option<i32> = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok());
        if ppid == Some(parent) {
            out.push(pid);
        }
    }
    out
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn sigkill(pid: i32) {
    run(Command::new("kill").args(["-KILL", &pid.to_string()]));
}

// ---------------------------------------------------------------------------
// What the writers send and what came back.

#[derive(Debug, Clone)]
struct Ev {
    id: String,
    stream: String,
    event_type: &'static str,
    thread: usize,
    n: u64,
    amount: String,
    /// The version the append reported for this event (committed ops only).
    version: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// The append (or COMMIT) returned success.
    Committed,
    /// The server rejected it (40001, 40P01): nothing may be written.
    Rejected,
    /// The connection broke before an answer: all or nothing may be there.
    Unknown(String),
}

#[derive(Debug, Clone)]
struct Op {
    kind: &'static str,
    events: Vec<Ev>,
    outcome: Outcome,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Writer {
    t: usize,
    n: u64,
    rng: Rng,
    known: HashMap<String, i64>,
}

impl Writer {
    fn event(&mut self, stream: &str) -> Ev {
        self.n += 1;
        let cents = (self.n * 7919 + self.t as u64 * 104_729) % 100_000;
        Ev {
            // the client chooses every event id
            id: format!("00000000-0000-4000-8{:03x}-{:012x}", self.t, self.n),
            stream: stream.to_string(),
            event_type: if self.rng.below(4) == 0 {
                "Withdrawn"
            } else {
                "Deposited"
            },
            thread: self.t,
            n: self.n,
            amount: format!("{}.{:02}", cents / 100, cents % 100),
            version: None,
        }
    }

    fn stream(&mut self) -> String {
        format!("acct-{}", self.rng.below(STREAMS as u64))
    }
}

fn data_json(e: &Ev) -> String {
    format!(
        r#"{{"t": {}, "n": {}, "amount": {}}}"#,
        e.thread, e.n, e.amount
    )
}

fn batch_json(events: &[Ev]) -> String {
    let parts: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                r#"{{"type": "{}", "data": {}, "id": "{}", "metadata": {{"writer": {}}}}}"#,
                e.event_type,
                data_json(e),
                e.id,
                e.thread
            )
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

fn append_one(c: &mut Client, e: &Ev, expected: Option<i64>) -> Result<i64, postgres::Error> {
    let data = data_json(e);
    let meta = format!(r#"{{"writer": {}}}"#, e.thread);
    c.query_one(
        "SELECT es.append_event($1, $2, $3::text::jsonb, expected_version => $4,
                                metadata => $5::text::jsonb, event_id => $6::text::uuid)",
        &[&e.stream, &e.event_type, &data, &expected, &meta, &e.id],
    )
    .map(|r| r.get(0))
}

fn append_many(
    c: &mut Client,
    events: &[Ev],
    expected: Option<i64>,
) -> Result<i64, postgres::Error> {
    c.query_one(
        "SELECT es.append_events($1, $2::text::jsonb, expected_version => $3)",
        &[&events[0].stream, &batch_json(events), &expected],
    )
    .map(|r| r.get(0))
}

/// Whether an error means the server refused the append (and wrote nothing).
fn is_rejection(e: &postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

struct Shared {
    killed: AtomicBool,
    committed_events: AtomicUsize,
    ops: Mutex<Vec<Op>>,
    unexpected: Mutex<Vec<String>>,
}

/// One writer: appends until its connection breaks (the crash). Returns when
/// the connection is gone or the deadline passes.
fn write(t: usize, mut c: Client, shared: Arc<Shared>) {
    let mut w = Writer {
        t,
        n: 0,
        rng: Rng(0x9e37_79b9_7f4a_7c15 ^ ((t as u64 + 1) * 0x1000_0001)),
        known: HashMap::new(),
    };
    let deadline = Instant::now() + WRITER_DEADLINE;
    while Instant::now() < deadline {
        let choice = w.rng.below(10);
        let (kind, mut events, result): (&'static str, Vec<Ev>, Result<Vec<i64>, postgres::Error>) =
            match choice {
                // a single event, no expected version
                0..=2 => {
                    let s = w.stream();
                    let e = w.event(&s);
                    let r = append_one(&mut c, &e, None).map(|v| vec![v]);
                    ("single", vec![e], r)
                }
                // a single event, expecting the version this writer last saw
                3..=4 => {
                    let s = w.stream();
                    let expected = *w.known.get(&s).unwrap_or(&0);
                    let e = w.event(&s);
                    let r = append_one(&mut c, &e, Some(expected)).map(|v| vec![v]);
                    ("single+expected", vec![e], r)
                }
                // a batch of 2..=8 events, with or without an expected version
                5..=7 => {
                    let s = w.stream();
                    let size = 2 + w.rng.below(7) as usize;
                    let events: Vec<Ev> = (0..size).map(|_| w.event(&s)).collect();
                    let expected = if choice == 7 {
                        Some(*w.known.get(&s).unwrap_or(&0))
                    } else {
                        None
                    };
                    let r = append_many(&mut c, &events, expected)
                        .map(|v| (0..size as i64).map(|i| v - size as i64 + 1 + i).collect());
                    ("batch", events, r)
                }
                // one transaction: a single event on one stream and a batch
                // on another (lower stream first, so no deadlocks)
                _ => {
                    let a = w.stream();
                    let mut b = w.stream();
                    while b == a {
                        b = w.stream();
                    }
                    let (a, b) = if a < b { (a, b) } else { (b, a) };
                    let first = w.event(&a);
                    let size = 2 + w.rng.below(3) as usize;
                    let rest: Vec<Ev> = (0..size).map(|_| w.event(&b)).collect();
                    let r = (|| {
                        c.batch_execute("BEGIN")?;
                        let v1 = append_one(&mut c, &first, None)?;
                        let v2 = append_many(&mut c, &rest, None)?;
                        c.batch_execute("COMMIT")?;
                        let mut v = vec![v1];
                        v.extend((0..size as i64).map(|i| v2 - size as i64 + 1 + i));
                        Ok(v)
                    })();
                    if r.is_err() && !c.is_closed() {
                        let _ = c.batch_execute("ROLLBACK");
                    }
                    let mut events = vec![first];
                    events.extend(rest);
                    ("transaction", events, r)
                }
            };
        let stop = match result {
            Ok(versions) => {
                for (e, v) in events.iter_mut().zip(versions) {
                    e.version = Some(v);
                    w.known.insert(e.stream.clone(), v);
                }
                shared
                    .committed_events
                    .fetch_add(events.len(), Ordering::SeqCst);
                shared.ops.lock().unwrap().push(Op {
                    kind,
                    events,
                    outcome: Outcome::Committed,
                });
                false
            }
            Err(e) if is_rejection(&e) => {
                shared.ops.lock().unwrap().push(Op {
                    kind,
                    events: events.clone(),
                    outcome: Outcome::Rejected,
                });
                // learn the streams' versions again
                for ev in &events {
                    match c.query_one("SELECT es.stream_version($1)", &[&ev.stream]) {
                        Ok(r) => {
                            w.known.insert(ev.stream.clone(), r.get(0));
                        }
                        Err(_) => break,
                    }
                }
                c.is_closed()
            }
            Err(e) => {
                let what = describe(&e);
                if !shared.killed.load(Ordering::SeqCst) {
                    shared
                        .unexpected
                        .lock()
                        .unwrap()
                        .push(format!("writer {t}, {kind}: {what}"));
                }
                shared.ops.lock().unwrap().push(Op {
                    kind,
                    events,
                    outcome: Outcome::Unknown(what),
                });
                true
            }
        };
        if stop {
            return;
        }
    }
}

fn ok<T>(what: &str, r: Result<T, postgres::Error>) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {}", describe(&e)))
}

fn setup(c: &mut Client) {
    ok(
        "setup",
        c.batch_execute(
            r#"
            SELECT es.define_aggregate('acct', reducers => '{
                "Deposited": [{"add": "balance", "from": "$.amount"}, {"inc": "deposits"}],
                "Withdrawn": [{"sub": "balance", "from": "$.amount"}, {"inc": "withdrawals"}],
                "*": [{"set": "last_n", "from": "$.n"}, {"set": "last_writer", "from": "$metadata.writer"},
                      {"set": "version", "from": "$version"}]
            }', initial_state => '{"balance": 0}', snapshot_every => 5);

            CREATE TABLE public.stream_summary (
                stream_id    text    PRIMARY KEY,
                events       bigint  NOT NULL,
                last_version bigint  NOT NULL,
                balance      numeric NOT NULL,
                event_ids    uuid[]  NOT NULL
            );
            CREATE FUNCTION public.summarize(e es.events) RETURNS void LANGUAGE sql AS $$
                INSERT INTO public.stream_summary AS s VALUES (
                    e.stream_id, 1, e.version,
                    CASE e.event_type WHEN 'Withdrawn' THEN -1 ELSE 1 END * (e.data->>'amount')::numeric,
                    ARRAY[e.event_id])
                ON CONFLICT (stream_id) DO UPDATE
                   SET events = s.events + 1, last_version = EXCLUDED.last_version,
                       balance = s.balance + EXCLUDED.balance,
                       event_ids = s.event_ids || EXCLUDED.event_ids
            $$;
            SELECT es.create_projection('summary', 'public.summarize(es.events)', 'inline',
                                        stream_types => ARRAY['acct']);
            SELECT es.materialize_aggregate('acct', 'public.acct_state');
            -- the first append records the position offset; done before the race
            SELECT es.append_event('warmup-0', 'WarmedUp', '{}');
            "#,
        ),
    );
}

/// Rows where the inline projection's table differs from the events.
const SUMMARY_MISMATCHES: &str = "
    SELECT coalesce(g.stream_id, s.stream_id),
           format('events: %s, %s, %s; projection: %s, %s, %s; ids equal: %s',
                  g.events, g.last_version, g.balance, s.events, s.last_version, s.balance,
                  g.event_ids = s.event_ids)
      FROM (SELECT stream_id, count(*) AS events, max(version) AS last_version,
                   sum(CASE event_type WHEN 'Withdrawn' THEN -1 ELSE 1 END * (data->>'amount')::numeric) AS balance,
                   array_agg(event_id ORDER BY version) AS event_ids
              FROM es.events WHERE stream_type = 'acct' GROUP BY stream_id) g
      FULL JOIN public.stream_summary s ON s.stream_id = g.stream_id
     WHERE (g.events, g.last_version, g.balance, g.event_ids)
           IS DISTINCT FROM (s.events, s.last_version, s.balance, s.event_ids)
     ORDER BY 1";

fn verify_rows(c: &mut Client) -> Vec<String> {
    ok(
        "es.verify()",
        c.query(
            "SELECT format('%s | %s | %s', check_name, object, detail) FROM es.verify()",
            &[],
        ),
    )
    .iter()
    .map(|r| r.get(0))
    .collect()
}

fn summary_mismatches(c: &mut Client) -> Vec<String> {
    ok("projection check", c.query(SUMMARY_MISMATCHES, &[]))
        .iter()
        .map(|r| format!("{}: {}", r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect()
}

struct Stored {
    stream: String,
    version: i64,
    event_type: String,
    t: Option<String>,
    n: Option<String>,
    amount: Option<String>,
}

fn stored_events(c: &mut Client) -> HashMap<String, Stored> {
    ok(
        "reading es.events",
        c.query(
            "SELECT event_id::text, stream_id, version, event_type,
                    data->>'t', data->>'n', data->>'amount'
               FROM es.events WHERE stream_type = 'acct'",
            &[],
        ),
    )
    .iter()
    .map(|r| {
        (
            r.get(0),
            Stored {
                stream: r.get(1),
                version: r.get(2),
                event_type: r.get(3),
                t: r.get(4),
                n: r.get(5),
                amount: r.get(6),
            },
        )
    })
    .collect()
}

/// Differences between an event as sent and as stored.
fn mismatch(e: &Ev, s: &Stored) -> Option<String> {
    let sent = (
        e.stream.as_str(),
        e.event_type,
        e.thread.to_string(),
        e.n.to_string(),
        e.amount.as_str(),
    );
    let got = (
        s.stream.as_str(),
        s.event_type.as_str(),
        s.t.clone().unwrap_or_default(),
        s.n.clone().unwrap_or_default(),
        s.amount.as_deref().unwrap_or(""),
    );
    if sent != got || e.version.is_some_and(|v| v != s.version) {
        Some(format!(
            "event {}: sent {sent:?} (version {:?}), stored {got:?} at version {}",
            e.id, e.version, s.version
        ))
    } else {
        None
    }
}

#[test]
fn sigkill_of_the_postmaster_while_appending_loses_no_acknowledged_append() {
    let cluster = create_cluster();
    {
        let mut admin = cluster.connect("postgres");
        ok(
            "CREATE DATABASE",
            admin.batch_execute(&format!("CREATE DATABASE {DB}")),
        );
    }
    let mut setup_client = cluster.connect(DB);
    ok(
        "CREATE EXTENSION",
        setup_client.batch_execute("CREATE EXTENSION pg_eventsource"),
    );
    setup(&mut setup_client);
    drop(setup_client);

    let shared = Arc::new(Shared {
        killed: AtomicBool::new(false),
        committed_events: AtomicUsize::new(0),
        ops: Mutex::new(Vec::new()),
        unexpected: Mutex::new(Vec::new()),
    });
    let writers: Vec<_> = (0..WRITERS)
        .map(|t| {
            let c = cluster.connect(DB);
            let shared = shared.clone();
            thread::spawn(move || write(t, c, shared))
        })
        .collect();

    // Let the writers get going, then pull the plug while they are appending.
    let reached = wait_until(KILL_AFTER, || {
        shared.committed_events.load(Ordering::SeqCst) >= KILL_AT_EVENTS
            || writers.iter().any(|w| w.is_finished())
    });
    let before_kill = shared.committed_events.load(Ordering::SeqCst);
    assert!(
        writers.iter().all(|w| !w.is_finished()),
        "a writer stopped before the crash: {:?}",
        shared.unexpected.lock().unwrap()
    );
    let postmaster = postmaster_pid(&cluster);
    let children = children_of(postmaster);
    shared.killed.store(true, Ordering::SeqCst);
    sigkill(postmaster);
    println!(
        "killed the postmaster (pid {postmaster}, {} children) with {before_kill} events committed{}",
        children.len(),
        if reached { "" } else { " (kill deadline reached)" }
    );

    // The writers' connections break; every writer must notice.
    let writers_done = wait_until(Duration::from_secs(120), || {
        writers.iter().all(|w| w.is_finished())
    });
    assert!(
        writers_done,
        "writers still running 120 s after the postmaster was killed"
    );
    for w in writers {
        w.join().expect("writer thread panicked");
    }
    // The postmaster's children notice its death and exit; a restart needs
    // them gone (they hold the shared memory). Kill stragglers.
    if !wait_until(Duration::from_secs(60), || {
        children.iter().all(|&p| !alive(p))
    }) {
        for &p in children.iter().filter(|&&p| alive(p)) {
            let _ = Command::new("kill")
                .args(["-KILL", &p.to_string()])
                .output();
        }
        assert!(
            wait_until(Duration::from_secs(30), || children
                .iter()
                .all(|&p| !alive(p))),
            "children of the killed postmaster are still alive"
        );
    }
    assert!(!alive(postmaster), "the postmaster survived SIGKILL");

    let unexpected = shared.unexpected.lock().unwrap().clone();
    assert!(
        unexpected.is_empty(),
        "errors other than 40001 before the crash:\n{}",
        unexpected.join("\n")
    );

    cluster.start("log-2");
    let log2 = cluster.log("log-2");
    assert!(
        log2.contains("automatic recovery in progress")
            || log2.contains("was interrupted")
            || log2.contains("not properly shut down"),
        "the restart did not go through crash recovery; its log:\n{log2}"
    );

    let mut c = cluster.connect(DB);
    let stored = stored_events(&mut c);
    let ops = shared.ops.lock().unwrap().clone();

    let mut problems: Vec<String> = Vec::new();
    let mut sent_ids: HashSet<&str> = HashSet::new();
    let (mut committed, mut rejected, mut unknown_in, mut unknown_out) = (0, 0, 0, 0);
    for op in &ops {
        let present: Vec<&Ev> = op
            .events
            .iter()
            .filter(|e| stored.contains_key(&e.id))
            .collect();
        for e in &op.events {
            sent_ids.insert(e.id.as_str());
        }
        let ids: Vec<&str> = op.events.iter().map(|e| e.id.as_str()).collect();
        match &op.outcome {
            Outcome::Committed => {
                committed += 1;
                if present.len() != op.events.len() {
                    problems.push(format!(
                        "acknowledged {} lost {} of its {} events after the crash: {ids:?}",
                        op.kind,
                        op.events.len() - present.len(),
                        op.events.len()
                    ));
                }
            }
            Outcome::Rejected => {
                rejected += 1;
                if !present.is_empty() {
                    problems.push(format!(
                        "rejected {} left {} events behind: {ids:?}",
                        op.kind,
                        present.len()
                    ));
                }
            }
            Outcome::Unknown(err) => {
                if present.is_empty() {
                    unknown_out += 1;
                } else if present.len() == op.events.len() {
                    unknown_in += 1;
                } else {
                    problems.push(format!(
                        "partial {}: {} of {} events after the crash ({err}): {ids:?}",
                        op.kind,
                        present.len(),
                        op.events.len()
                    ));
                }
            }
        }
        for e in present {
            if let Some(m) = mismatch(e, &stored[&e.id]) {
                problems.push(m);
            }
        }
    }
    let strangers: Vec<&String> = stored
        .keys()
        .filter(|id| !sent_ids.contains(id.as_str()))
        .collect();
    if !strangers.is_empty() {
        problems.push(format!(
            "{} stored events that no writer sent, e.g. {:?}",
            strangers.len(),
            &strangers[..strangers.len().min(5)]
        ));
    }
    println!(
        "{} operations: {committed} acknowledged, {rejected} rejected (40001), \
         {unknown_in} cut off by the crash and committed, {unknown_out} cut off and absent; \
         {} events stored",
        ops.len(),
        stored.len()
    );
    assert!(
        problems.is_empty(),
        "{} problems after crash recovery:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(committed > 0, "no append succeeded before the crash");

    let snapshots: i64 = ok(
        "count snapshots",
        c.query_one(
            "SELECT count(*) FROM es.snapshots WHERE stream_type = 'acct'",
            &[],
        ),
    )
    .get(0);
    assert!(snapshots > 0, "no snapshots were taken");
    let verify = verify_rows(&mut c);
    assert!(
        verify.is_empty(),
        "es.verify() after crash recovery:\n{}",
        verify.join("\n")
    );
    let summary = summary_mismatches(&mut c);
    assert!(
        summary.is_empty(),
        "the inline projection differs from the events after crash recovery:\n{}",
        summary.join("\n")
    );

    // es.read_all hands out every stored event once, in increasing position.
    let all: Vec<i64> = ok(
        "es.events positions",
        c.query("SELECT global_position FROM es.events ORDER BY 1", &[]),
    )
    .iter()
    .map(|r| r.get(0))
    .collect();
    let mut seen: Vec<i64> = Vec::new();
    let complete = wait_until(Duration::from_secs(60), || {
        loop {
            let after = seen.last().copied().unwrap_or(0);
            let page: Vec<i64> = ok(
                "es.read_all",
                c.query(
                    "SELECT global_position FROM es.read_all($1, 1000)",
                    &[&after],
                ),
            )
            .iter()
            .map(|r| r.get(0))
            .collect();
            if page.is_empty() {
                break;
            }
            seen.extend(page);
        }
        seen.len() >= all.len()
    });
    assert!(
        complete,
        "es.read_all handed out {} of {} events after crash recovery",
        seen.len(),
        all.len()
    );
    assert!(
        seen == all,
        "es.read_all after crash recovery differs from es.events in position order"
    );

    // Appending works again, and the projection and materializer follow.
    for s in 0..STREAMS {
        let stream = format!("acct-{s}");
        let v: i64 = ok(
            "es.stream_version",
            c.query_one("SELECT es.stream_version($1)", &[&stream]),
        )
        .get(0);
        let got: i64 = ok(
            &format!("append to {stream} after the restart"),
            c.query_one(
                "SELECT es.append_events($1, '[{\"type\": \"Deposited\", \"data\": {\"amount\": 1.5}},
                                            {\"type\": \"Withdrawn\", \"data\": {\"amount\": 0.25}}]',
                                          expected_version => $2)",
                &[&stream, &v],
            ),
        )
        .get(0);
        assert_eq!(got, v + 2, "{stream}: version after appending 2 events");
    }
    let verify = verify_rows(&mut c);
    assert!(
        verify.is_empty(),
        "es.verify() after appending past the crash:\n{}",
        verify.join("\n")
    );
    let summary = summary_mismatches(&mut c);
    assert!(
        summary.is_empty(),
        "the inline projection differs after appending past the crash:\n{}",
        summary.join("\n")
    );
}
