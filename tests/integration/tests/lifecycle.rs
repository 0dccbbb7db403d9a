//! The deliberate exceptions to append-only (es.delete_stream, es.redact,
//! es.truncate_stream, retention, es.archive_stream), seen from outside the
//! server, where users rely on them:
//!
//! * consumers that are behind when a stream is redacted or hard-deleted
//!   (a subscriber with `es.poll`/`es.ack`, an async projection caught up by
//!   `es.run_projection`) never receive what was removed, receive the
//!   redacted data only, get each marker event (`$StreamDeleted`,
//!   `$EventsRedacted`) once, and every event still stored exactly once, in
//!   global order, while 8 writers keep appending to other streams;
//! * the background worker applies a stream type's retention by itself
//!   (`es.retention_interval`), keeping `es.load`'s answers and auditing
//!   every removed version;
//! * `pg_dump` and a restore keep every trace of the lifecycle (es.audit,
//!   es.stream_lifecycle, es.retention, tombstones, archived events) and
//!   its rules (hard-deleted and archived streams refuse appends, direct
//!   DELETE still fails);
//! * an erasure (redaction or hard delete) leaves no copy of the erased
//!   value anywhere: not in a dump, not in any table of schema `es`
//!   (snapshots included), not in an inline read model, not in a
//!   materialized aggregate table.

use pg_eventsource_integration::{
    append, append_batch, config, connect, connect_as, describe, dump_and_restore, host,
    pg_bin_dir, port, sqlstate, user, wait_child, wait_until, TestDb,
};
use postgres::error::SqlState;
use postgres::{Client, NoTls};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn ok<T>(what: &str, r: Result<T, postgres::Error>) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {}", describe(&e)))
}

/// A name part unique to this run (process id and clock).
fn unique_tag(prefix: &str) -> String {
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

/// The rows of a query, each as one text value.
fn texts(c: &mut Client, sql: &str) -> Vec<String> {
    c.query(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {}", describe(&e)))
        .iter()
        .map(|r| {
            r.get::<_, Option<String>>(0)
                .unwrap_or_else(|| "NULL".into())
        })
        .collect()
}

/// `es.verify()`'s rows, as "check_name object: detail".
fn verify(c: &mut Client) -> Vec<String> {
    ok(
        "es.verify()",
        c.query("SELECT check_name, object, detail FROM es.verify()", &[]),
    )
    .iter()
    .map(|r| {
        format!(
            "{} {}: {}",
            r.get::<_, String>(0),
            r.get::<_, Option<String>>(1).unwrap_or_default(),
            r.get::<_, Option<String>>(2).unwrap_or_default()
        )
    })
    .collect()
}

/// Asserts that `r` failed with SQLSTATE `code`.
fn expect_code<T: std::fmt::Debug>(what: &str, r: Result<T, postgres::Error>, code: &SqlState) {
    match r {
        Err(e) if sqlstate(&e) == Some(code) => {}
        Err(e) => panic!(
            "{what}: expected SQLSTATE {}, got {}",
            code.code(),
            describe(&e)
        ),
        Ok(v) => panic!(
            "{what}: expected SQLSTATE {}, but it succeeded ({v:?})",
            code.code()
        ),
    }
}

/// Drops `role` from the cluster if it exists, with its privileges in `dbs`.
fn drop_role(dbs: &[&str], role: &str) {
    let mut su = connect("postgres");
    let exists: bool = ok(
        "pg_roles",
        su.query_one(
            "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)",
            &[&role],
        ),
    )
    .get(0);
    if !exists {
        return;
    }
    for db in dbs {
        ok(
            "DROP OWNED",
            connect(db).batch_execute(&format!("DROP OWNED BY {role} CASCADE")),
        );
    }
    ok("DROP ROLE", su.batch_execute(&format!("DROP ROLE {role}")));
}

fn preloaded(c: &mut Client) -> bool {
    let libs: String = ok(
        "SHOW shared_preload_libraries",
        c.query_one("SHOW shared_preload_libraries", &[]),
    )
    .get(0);
    libs.split(',')
        .map(|l| l.trim().trim_matches('"'))
        .any(|l| l == "pg_eventsource" || l.ends_with("/pg_eventsource"))
}

/// `pg_dump` (plain format) of `db`, as text; bounded by `timeout`.
fn pg_dump_plain(db: &str, timeout: Duration) -> String {
    let bin = pg_bin_dir();
    let mut child = Command::new(format!("{bin}/pg_dump"))
        .args([
            "-h",
            &host(),
            "-p",
            &port().to_string(),
            "-U",
            &user(),
            "--no-password",
            "-d",
            db,
        ])
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {bin}/pg_dump: {e}"));
    let read = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = read(Box::new(child.stdout.take().expect("pg_dump stdout")));
    let err = read(Box::new(child.stderr.take().expect("pg_dump stderr")));
    let status = wait_child(&mut child, "pg_dump", Instant::now() + timeout);
    let (out, err) = (out.join().expect("stdout"), err.join().expect("stderr"));
    assert!(status.success(), "pg_dump {db} failed ({status}):\n{err}");
    out
}

// ---------------------------------------------------------------------------
// 1. Delete and redact while writers append; consumers that are behind.

const WRITERS: usize = 8;
const CATCH_UP_THREADS: usize = 2;
const PROJECTION: &str = "lifecycle_projection";
const CONSUMER: &str = "lifecycle_consumer";
const ADMIN_ROLE: &str = "es_it_lifecycle_admin";
const SECRET_EMAIL: &str = "alice@example.com";

/// (global_position, stream_id, version, event_type, data as text)
type Ev = (i64, String, i64, String, String);

/// Lets the consumer loops run, or parks them (and tells when all are parked).
struct Gate {
    open: AtomicBool,
    parked: AtomicUsize,
    stop: AtomicBool,
    rounds: AtomicUsize,
}

impl Gate {
    /// Called at the top of each round of a consumer loop: returns once the
    /// gate is open (true) or the loops are told to stop (false); while
    /// closed, the caller counts as parked and does nothing.
    fn pass(&self, parked: &mut bool) -> bool {
        loop {
            if self.stop.load(SeqCst) {
                return false;
            }
            if self.open.load(SeqCst) {
                if *parked {
                    self.parked.fetch_sub(1, SeqCst);
                    *parked = false;
                }
                return true;
            }
            if !*parked {
                self.parked.fetch_add(1, SeqCst);
                *parked = true;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Appends to the writer's own streams (singles and batches) until told to stop.
fn write(w: usize, mut c: Client, start: Arc<Barrier>, stop: Arc<AtomicBool>, n: Arc<AtomicUsize>) {
    let deadline = Instant::now() + Duration::from_secs(600);
    let own = [format!("wr{w}-a"), format!("wr{w}-b")];
    start.wait();
    let mut step = 0usize;
    while !stop.load(SeqCst) {
        assert!(Instant::now() < deadline, "writer {w} ran out of time");
        let stream = &own[step % 2];
        let data = format!(r#"{{"w": {w}, "step": {step}}}"#);
        if step % 3 == 2 {
            let batch = format!(
                r#"[{{"type": "Batched", "data": {data}}}, {{"type": "Batched", "data": {data}}}]"#
            );
            ok("writer batch", append_batch(&mut c, stream, &batch, None));
            n.fetch_add(2, SeqCst);
        } else {
            ok(
                "writer single",
                append(&mut c, stream, "Written", &data, None),
            );
            n.fetch_add(1, SeqCst);
        }
        step += 1;
    }
}

/// Loops `es.run_projection(name, 300)` while the gate lets it.
fn catch_up(mut c: Client, gate: Arc<Gate>) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut handled = 0i64;
    let mut parked = false;
    while gate.pass(&mut parked) {
        assert!(
            Instant::now() < deadline,
            "the catch-up loop ran out of time"
        );
        let n: i64 = ok(
            "es.run_projection",
            c.query_one("SELECT es.run_projection($1, 300)", &[&PROJECTION]),
        )
        .get(0);
        handled += n;
        gate.rounds.fetch_add(1, SeqCst);
        if n == 0 {
            thread::sleep(Duration::from_millis(5));
        }
    }
    handled
}

/// Loops `es.poll` / `es.ack` while the gate lets it; returns what it
/// received, in order.
fn consume(mut c: Client, gate: Arc<Gate>) -> Vec<Ev> {
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut got: Vec<Ev> = Vec::new();
    let mut parked = false;
    while gate.pass(&mut parked) {
        assert!(Instant::now() < deadline, "the consumer ran out of time");
        let page: Vec<Ev> = ok(
            "es.poll",
            c.query(
                "SELECT global_position, stream_id, version, event_type, data::text
                   FROM es.poll($1, 200)",
                &[&CONSUMER],
            ),
        )
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
        gate.rounds.fetch_add(1, SeqCst);
        let Some(last) = page.last().map(|e| e.0) else {
            thread::sleep(Duration::from_millis(5));
            continue;
        };
        got.extend(page);
        ok(
            "es.ack",
            c.execute("SELECT es.ack($1, $2)", &[&CONSUMER, &last]),
        );
    }
    got
}

/// Every event `es.read_all` hands out after position 0, with its data.
fn read_all_events(c: &mut Client, want: usize) -> Vec<Ev> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut all: Vec<Ev> = Vec::new();
    let mut last = 0i64;
    while all.len() < want {
        let page: Vec<Ev> = ok(
            "es.read_all",
            c.query(
                "SELECT global_position, stream_id, version, event_type, data::text
                   FROM es.read_all($1, 1000)",
                &[&last],
            ),
        )
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
        if page.is_empty() {
            assert!(
                Instant::now() < deadline,
                "es.read_all handed out {} of {want} stored events within 120 s",
                all.len()
            );
            thread::sleep(Duration::from_millis(20));
            continue;
        }
        last = page.last().unwrap().0;
        all.extend(page);
    }
    all
}

/// What a consumer received, checked against the lifecycle operations and
/// against everything still stored.
fn check_consumer(
    who: &str,
    got: &[Ev],
    all: &[Ev],
    removed_b: (i64, i64),
    cust_a: &str,
    cust_b: &str,
) {
    let removed: Vec<&Ev> = got
        .iter()
        .filter(|e| e.1 == cust_b && e.2 >= removed_b.0 && e.2 <= removed_b.1)
        .collect();
    assert!(
        removed.is_empty(),
        "{who} received events of {cust_b}'s hard-deleted versions {}..={}: {removed:?}",
        removed_b.0,
        removed_b.1
    );
    let count = |stream: &str, ty: &str| got.iter().filter(|e| e.1 == stream && e.3 == ty).count();
    assert_eq!(
        count(cust_b, "$StreamDeleted"),
        1,
        "{who}: \"$StreamDeleted\" events of {cust_b} received"
    );
    assert_eq!(
        count(cust_a, "$EventsRedacted"),
        1,
        "{who}: \"$EventsRedacted\" events of {cust_a} received"
    );
    let leaked: Vec<&Ev> = got.iter().filter(|e| e.4.contains(SECRET_EMAIL)).collect();
    assert!(
        leaked.is_empty(),
        "{who} was behind when {cust_a} was redacted, yet received the unredacted data: {leaked:?}"
    );
    let mut times: HashMap<i64, usize> = HashMap::new();
    for e in got {
        *times.entry(e.0).or_default() += 1;
    }
    let twice: Vec<_> = times.iter().filter(|(_, &n)| n > 1).collect();
    assert!(
        twice.is_empty(),
        "{who}: events received more than once: {twice:?}"
    );
    for pair in got.windows(2) {
        assert!(
            pair[0].0 < pair[1].0,
            "{who}: received position {} after {}: not in global order",
            pair[1].0,
            pair[0].0
        );
    }
    let got_map: BTreeMap<i64, &Ev> = got.iter().map(|e| (e.0, e)).collect();
    let all_map: BTreeMap<i64, &Ev> = all.iter().map(|e| (e.0, e)).collect();
    let missing: Vec<_> = all_map
        .iter()
        .filter(|(p, _)| !got_map.contains_key(p))
        .map(|(_, e)| e)
        .take(10)
        .collect();
    let extra: Vec<_> = got_map
        .iter()
        .filter(|(p, _)| !all_map.contains_key(p))
        .map(|(_, e)| e)
        .take(10)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{who}: received {} events, {} are stored; not received e.g. {missing:?}; received but \
         not stored e.g. {extra:?}",
        got.len(),
        all.len()
    );
    for (g, a) in got.iter().zip(all) {
        assert_eq!(g, a, "{who}: an event received differs from the stored one");
    }
}

#[test]
fn delete_and_redact_while_writers_append() {
    let started = Instant::now();
    let db = TestDb::create_warm("lc_delete_redact");
    let mut c = db.connect();
    drop_role(&[], ADMIN_ROLE);
    ok(
        "admin role",
        c.batch_execute(&format!(
            "CREATE ROLE {ADMIN_ROLE} LOGIN; SELECT es.grant_admin('{ADMIN_ROLE}');"
        )),
    );
    ok(
        "read model, projection, subscriber",
        c.batch_execute(&format!(
            "CREATE SEQUENCE public.arrival;
             CREATE TABLE public.projected (
                 global_position bigint  PRIMARY KEY,
                 stream_id       text    NOT NULL,
                 version         bigint  NOT NULL,
                 event_type      text    NOT NULL,
                 data            jsonb   NOT NULL,
                 arrival         bigint  NOT NULL DEFAULT nextval('public.arrival'),
                 repeats         integer NOT NULL DEFAULT 0
             );
             CREATE FUNCTION public.project(e es.events) RETURNS void LANGUAGE sql AS $$
                 INSERT INTO public.projected AS p (global_position, stream_id, version, event_type, data)
                 VALUES (e.global_position, e.stream_id, e.version, e.event_type, e.data)
                 ON CONFLICT (global_position) DO UPDATE SET repeats = p.repeats + 1
             $$;
             SELECT es.create_projection('{PROJECTION}', 'public.project(es.events)'::regprocedure,
                                         mode => 'async');
             SELECT es.subscribe('{CONSUMER}');"
        )),
    );

    let gate = Arc::new(Gate {
        open: AtomicBool::new(true),
        parked: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        rounds: AtomicUsize::new(0),
    });
    let catch_ups: Vec<_> = (0..CATCH_UP_THREADS)
        .map(|_| {
            let (cl, g) = (db.connect(), Arc::clone(&gate));
            thread::spawn(move || catch_up(cl, g))
        })
        .collect();
    let consumer = {
        let (cl, g) = (db.connect(), Arc::clone(&gate));
        thread::spawn(move || consume(cl, g))
    };

    let stop_writers = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(WRITERS));
    let clients: Vec<Client> = (0..WRITERS).map(|_| db.connect()).collect();
    let writers: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(w, cl)| {
            let (start, stop, n) = (
                Arc::clone(&start),
                Arc::clone(&stop_writers),
                Arc::clone(&committed),
            );
            thread::spawn(move || write(w, cl, start, stop, n))
        })
        .collect();

    // The consumers keep up with the writers for a while ...
    let mut obs = db.connect();
    assert!(
        wait_until(Duration::from_secs(120), || {
            committed.load(SeqCst) >= 2000
                && ok(
                    "progress",
                    obs.query_one(
                        "SELECT (SELECT count(*) FROM public.projected) > 0
                            AND (SELECT position FROM es.subscriptions WHERE consumer = $1) > 0",
                        &[&CONSUMER],
                    ),
                )
                .get::<_, bool>(0)
        }),
        "within 120 s the writers committed {} events and the consumers did not both start",
        committed.load(SeqCst)
    );
    // ... and are then held back (parked), so they are behind the target
    // streams' events, which are appended now.
    gate.open.store(false, SeqCst);
    assert!(
        wait_until(Duration::from_secs(120), || gate.parked.load(SeqCst)
            == CATCH_UP_THREADS + 1),
        "the consumer loops did not park"
    );
    let cust_a = "cust-A";
    let cust_b = "cust-B";
    for i in 1..=4i64 {
        let data = format!(
            r#"{{"email": "{SECRET_EMAIL}", "name": "Alice", "n": {i}, "address": {{"city": "Oslo"}}}}"#
        );
        assert_eq!(
            ok(
                "cust-A",
                append(&mut c, cust_a, "ContactChanged", &data, Some(i - 1))
            ),
            i
        );
    }
    assert_eq!(
        ok(
            "cust-B",
            append_batch(
                &mut c,
                cust_b,
                r#"[{"type": "Opened", "data": {"email": "bob@example.com"}},
                    {"type": "Deposited", "data": {"amount": 10}},
                    {"type": "Deposited", "data": {"amount": 20}}]"#,
                Some(0),
            )
        ),
        3
    );
    assert_eq!(
        ok(
            "cust-B",
            append(&mut c, cust_b, "Withdrawn", r#"{"amount": 5}"#, Some(3))
        ),
        4
    );
    let (first_target, checkpoint, projection_position): (i64, i64, i64) = {
        let r = ok(
            "behind",
            obs.query_one(
                "SELECT (SELECT min(global_position) FROM es.events WHERE stream_id IN ('cust-A', 'cust-B')),
                        (SELECT position FROM es.subscriptions WHERE consumer = $1),
                        (SELECT position FROM es.projections WHERE name = $2)",
                &[&CONSUMER, &PROJECTION],
            ),
        );
        (r.get(0), r.get(1), r.get(2))
    };
    assert!(
        checkpoint < first_target && projection_position < first_target,
        "the consumers are not behind the target streams: checkpoint {checkpoint}, projection \
         position {projection_position}, first target event at {first_target}"
    );

    // While the writers run: redact cust-A, hard-delete cust-B, each in a
    // transaction of its own, as a role given es.grant_admin.
    let mut admin = connect_as(&db.name, ADMIN_ROLE);
    let before_ops = committed.load(SeqCst);
    ok("BEGIN", admin.batch_execute("BEGIN"));
    let redacted: i64 = ok(
        "es.redact",
        admin.query_one(
            "SELECT es.redact('cust-A', '{\"email\": \"[redacted]\"}', 'gdpr')",
            &[],
        ),
    )
    .get(0);
    ok("COMMIT", admin.batch_execute("COMMIT"));
    assert_eq!(redacted, 4, "events es.redact changed");
    ok("BEGIN", admin.batch_execute("BEGIN"));
    let deleted: i64 = ok(
        "es.delete_stream",
        admin.query_one(
            "SELECT es.delete_stream('cust-B', hard => true, reason => 'closed')",
            &[],
        ),
    )
    .get(0);
    ok("COMMIT", admin.batch_execute("COMMIT"));
    assert_eq!(deleted, 4, "events es.delete_stream removed");
    assert!(
        writers.iter().all(|t| !t.is_finished()),
        "a writer stopped during the lifecycle operations"
    );
    let audit: Vec<String> = texts(
        &mut obs,
        "SELECT format('%s %s %s %s %s %s', by_role, operation, stream_id, versions, event_count, reason)
           FROM es.audit ORDER BY id",
    );
    assert_eq!(
        audit,
        vec![
            format!("{ADMIN_ROLE} redact cust-A [1,5) 4 gdpr"),
            format!("{ADMIN_ROLE} delete_stream cust-B [1,5) 4 closed"),
        ],
        "es.audit"
    );

    // The consumers go on while the writers still run; then the writers stop.
    gate.open.store(true, SeqCst);
    assert!(
        wait_until(Duration::from_secs(120), || committed.load(SeqCst)
            >= before_ops + 2000),
        "the writers committed only {} events after the lifecycle operations",
        committed.load(SeqCst) - before_ops
    );
    stop_writers.store(true, SeqCst);
    for t in writers {
        t.join().expect("a writer thread panicked");
    }

    // Drain both fully.
    let total: i64 = ok(
        "count",
        obs.query_one("SELECT count(*) FROM es.events", &[]),
    )
    .get(0);
    let last_position: i64 = ok(
        "max",
        obs.query_one("SELECT max(global_position) FROM es.events", &[]),
    )
    .get(0);
    let mut state = (0i64, 0i64, String::new(), None::<String>, 0i64);
    let drained = wait_until(Duration::from_secs(300), || {
        let r = ok(
            "progress",
            obs.query_one(
                "SELECT p.position, p.lag, p.status, p.last_error,
                        (SELECT s.position FROM es.subscriptions s WHERE s.consumer = $2)
                   FROM es.projections p WHERE p.name = $1",
                &[&PROJECTION, &CONSUMER],
            ),
        );
        state = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        state.0 == last_position && state.1 == 0 && state.4 == last_position
    });
    assert!(
        drained,
        "the consumers did not drain within 300 s: projection at {} (lag {}, {} {:?}), \
         subscriber at {}, last event at {last_position}",
        state.0, state.1, state.2, state.3, state.4
    );
    let rounds = gate.rounds.load(SeqCst);
    assert!(
        wait_until(Duration::from_secs(60), || gate.rounds.load(SeqCst)
            >= rounds + 6),
        "the consumer loops stopped going round"
    );
    gate.stop.store(true, SeqCst);
    let handled: i64 = catch_ups
        .into_iter()
        .map(|t| t.join().expect("a catch-up thread panicked"))
        .sum();
    let received = consumer.join().expect("the consumer thread panicked");
    assert_eq!(
        ok(
            "final run_projection",
            obs.query_one("SELECT es.run_projection($1, 500)", &[&PROJECTION]),
        )
        .get::<_, i64>(0),
        0,
        "a final es.run_projection still found events"
    );
    assert_eq!(
        ok(
            "final poll",
            obs.query_one("SELECT count(*) FROM es.poll($1, 1000)", &[&CONSUMER]),
        )
        .get::<_, i64>(0),
        0,
        "a final es.poll still returned events"
    );

    // What is stored: cust-A redacted, cust-B only its tombstone.
    let all = read_all_events(&mut obs, total as usize);
    assert_eq!(all.len() as i64, total, "events es.read_all handed out");
    let stored_a: Vec<&Ev> = all.iter().filter(|e| e.1 == cust_a).collect();
    assert_eq!(stored_a.len(), 5, "cust-A: 4 events and $EventsRedacted");
    for e in stored_a.iter().filter(|e| e.3 == "ContactChanged") {
        let data: serde_json::Value = serde_json::from_str(&e.4).expect("event data");
        assert_eq!(
            data,
            serde_json::json!({"email": "[redacted]", "name": "Alice", "n": e.2,
                               "address": {"city": "Oslo"}}),
            "cust-A version {} after the redaction: only the masked path changes",
            e.2
        );
    }
    let stored_b: Vec<&Ev> = all.iter().filter(|e| e.1 == cust_b).collect();
    assert_eq!(
        stored_b
            .iter()
            .map(|e| (e.2, e.3.as_str()))
            .collect::<Vec<_>>(),
        vec![(5, "$StreamDeleted")],
        "cust-B after the hard delete"
    );

    let rows = ok(
        "read model",
        obs.query(
            "SELECT global_position, stream_id, version, event_type, data::text, repeats
               FROM public.projected ORDER BY arrival",
            &[],
        ),
    );
    let repeated: Vec<(i64, i32)> = rows
        .iter()
        .filter(|r| r.get::<_, i32>(5) > 0)
        .map(|r| (r.get(0), r.get(5)))
        .collect();
    assert!(
        repeated.is_empty(),
        "projection: events handled more than once (position, repeats): {repeated:?}"
    );
    let projected: Vec<Ev> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    check_consumer("the projection", &projected, &all, (1, 4), cust_a, cust_b);
    check_consumer("the subscriber", &received, &all, (1, 4), cust_a, cust_b);
    assert_eq!(
        handled, total,
        "events the catch-up calls reported handling"
    );

    let problems = verify(&mut obs);
    assert!(problems.is_empty(), "es.verify(): {problems:#?}");

    drop(admin);
    drop_role(&[&db.name], ADMIN_ROLE);
    println!(
        "{total} events stored, {} received by each consumer; {} writer events before the \
         lifecycle operations, {} in all; {:.1} s",
        received.len(),
        before_ops,
        committed.load(SeqCst),
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------
// 2. Retention applied by the background worker.

const WORKER_DB: &str = "es_worker";
const RETENTION_STREAMS: usize = 100;
const RETENTION_PER_STREAM: i64 = 1000;
const RETENTION_KEEP: i64 = 10;

/// Puts `es.retention_interval` back and removes the run's retention, also
/// when the test fails.
struct RetentionCleanup {
    stream_type: String,
}

impl Drop for RetentionCleanup {
    fn drop(&mut self) {
        // No panics here: this also runs while a failed test unwinds.
        if let Ok(mut admin) = config("postgres").connect(NoTls) {
            let _ = admin.batch_execute("ALTER SYSTEM RESET es.retention_interval");
            let _ = admin.batch_execute("SELECT pg_reload_conf()");
        }
        if let Ok(mut c) = config(WORKER_DB).connect(NoTls) {
            let _ = c.execute(
                "SELECT es.set_retention(r.stream_type) FROM es.retention r WHERE r.stream_type = $1",
                &[&self.stream_type],
            );
        }
    }
}

#[test]
fn retention_by_the_worker() {
    let started = Instant::now();
    let mut admin = connect("postgres");
    if !preloaded(&mut admin) {
        println!(
            "SKIPPED retention_by_the_worker: the server was not started with \
             shared_preload_libraries=pg_eventsource, so there is no worker to test"
        );
        return;
    }
    let dbs: String = ok(
        "SHOW es.worker_databases",
        admin.query_one("SHOW es.worker_databases", &[]),
    )
    .get(0);
    assert!(
        dbs.split(',').any(|d| d.trim() == WORKER_DB),
        "pg_eventsource is preloaded but es.worker_databases = {dbs:?} does not name {WORKER_DB}"
    );
    let mut c = connect(WORKER_DB);
    ok(
        "CREATE EXTENSION",
        c.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_eventsource"),
    );

    // A stream type of this run's own: es_worker is shared.
    let stream_type = unique_tag("ret");
    let streams: Vec<String> = (0..RETENTION_STREAMS)
        .map(|i| format!("{stream_type}-{i}"))
        .collect();
    ok(
        "es.define_aggregate",
        c.execute(
            r#"SELECT es.define_aggregate($1, reducers => '{
                 "Ticked": [{"add": "total", "from": "$.n"}, {"inc": "count"},
                            {"set": "last", "from": "$.n"}]}', snapshot_every => 50)"#,
            &[&stream_type],
        ),
    );

    // 100,000 events: 100 streams of 1,000, in batches, from 4 threads.
    let chunks: Vec<Vec<String>> = streams
        .chunks(RETENTION_STREAMS / 4)
        .map(|s| s.to_vec())
        .collect();
    let loaders: Vec<_> = chunks
        .into_iter()
        .map(|mine| {
            let mut cl = connect(WORKER_DB);
            thread::spawn(move || {
                for stream in &mine {
                    let mut v = 0i64;
                    while v < RETENTION_PER_STREAM {
                        let items: Vec<String> = (v + 1..=v + 250)
                            .map(|n| format!(r#"{{"type": "Ticked", "data": {{"n": {n}}}}}"#))
                            .collect();
                        let batch = format!("[{}]", items.join(","));
                        v = ok(
                            "append_events",
                            append_batch(&mut cl, stream, &batch, Some(v)),
                        );
                    }
                }
            })
        })
        .collect();
    for t in loaders {
        t.join().expect("a loader thread panicked");
    }
    let stored: i64 = ok(
        "count",
        c.query_one(
            "SELECT count(*) FROM es.events WHERE stream_type = $1",
            &[&stream_type],
        ),
    )
    .get(0);
    assert_eq!(stored, RETENTION_STREAMS as i64 * RETENTION_PER_STREAM);

    let sample: Vec<&String> = [0usize, 17, 42, 99].iter().map(|&i| &streams[i]).collect();
    let load = |c: &mut Client, s: &str| -> (i64, String) {
        let r = ok(
            "es.load",
            c.query_one("SELECT version, state::text FROM es.load($1)", &[&s]),
        );
        (r.get(0), r.get(1))
    };
    let before: Vec<(i64, String)> = sample.iter().map(|s| load(&mut c, s)).collect();
    assert_eq!(before[0].0, RETENTION_PER_STREAM);

    let _cleanup = RetentionCleanup {
        stream_type: stream_type.clone(),
    };
    ok(
        "es.set_retention",
        c.execute(
            "SELECT es.set_retention($1, max_count => $2)",
            &[&stream_type, &RETENTION_KEEP],
        ),
    );
    ok(
        "ALTER SYSTEM",
        admin.batch_execute("ALTER SYSTEM SET es.retention_interval = 1"),
    );
    ok("reload", admin.batch_execute("SELECT pg_reload_conf()"));

    // No client applies retention from here on: wait for the worker.
    let deadline = Instant::now() + Duration::from_secs(180);
    let waited = Instant::now();
    let last: (i64, i64, i64) = loop {
        let r = ok(
            "progress",
            c.query_one(
                "SELECT count(*), count(*) FILTER (WHERE n = $2), coalesce(sum(n), 0)::bigint
                   FROM (SELECT stream_id, count(*) AS n FROM es.events
                          WHERE stream_type = $1 GROUP BY stream_id) x",
                &[&stream_type, &RETENTION_KEEP],
            ),
        );
        let now: (i64, i64, i64) = (r.get(0), r.get(1), r.get(2));
        if now.1 == RETENTION_STREAMS as i64 {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "the worker did not apply the retention within 180 s: {} of {} streams hold \
             {RETENTION_KEEP} events ({} events of the type left); see the server log",
            now.1,
            now.0,
            now.2
        );
        thread::sleep(Duration::from_millis(250));
    };
    let waited = waited.elapsed();
    assert_eq!(last.0, RETENTION_STREAMS as i64, "streams of the type");

    // The last 10 versions stay; es.load gives the same answers.
    let kept: i64 = ok(
        "kept versions",
        c.query_one(
            "SELECT count(*) FROM es.events WHERE stream_type = $1 AND version > $2",
            &[&stream_type, &(RETENTION_PER_STREAM - RETENTION_KEEP)],
        ),
    )
    .get(0);
    assert_eq!(
        kept,
        RETENTION_STREAMS as i64 * RETENTION_KEEP,
        "the kept events are the last ones"
    );
    let after: Vec<(i64, String)> = sample.iter().map(|s| load(&mut c, s)).collect();
    assert_eq!(after, before, "es.load of {sample:?} after the retention");

    // es.audit explains every removed version, as apply_retention.
    let audited: BTreeMap<String, (String, i64)> = ok(
        "es.audit",
        c.query(
            "SELECT stream_id, range_agg(versions)::text, sum(event_count)::bigint
               FROM es.audit WHERE operation = 'apply_retention' AND stream_id = ANY ($1)
              GROUP BY stream_id",
            &[&streams],
        ),
    )
    .iter()
    .map(|r| (r.get(0), (r.get(1), r.get(2))))
    .collect();
    let removed = RETENTION_PER_STREAM - RETENTION_KEEP;
    for s in &streams {
        assert_eq!(
            audited.get(s),
            Some(&(format!("{{[1,{})}}", removed + 1), removed)),
            "es.audit's apply_retention rows for {s}"
        );
    }
    let lifecycle: i64 = ok(
        "es.stream_lifecycle",
        c.query_one(
            "SELECT count(*) FROM es.stream_lifecycle WHERE stream_id = ANY ($1) AND first_version = $2",
            &[&streams, &(removed + 1)],
        ),
    )
    .get(0);
    assert_eq!(
        lifecycle, RETENTION_STREAMS as i64,
        "es.stream_lifecycle.first_version"
    );
    let problems: Vec<String> = ok(
        "es.verify()",
        c.query(
            "SELECT format('%s %s: %s', check_name, object, detail) FROM es.verify()
              WHERE object LIKE $1 || '-%'",
            &[&stream_type],
        ),
    )
    .iter()
    .map(|r| r.get(0))
    .collect();
    assert!(
        problems.is_empty(),
        "es.verify() for the run's streams: {problems:#?}"
    );

    // Leave the shared database and the cluster as they were.
    ok(
        "ALTER SYSTEM RESET",
        admin.batch_execute("ALTER SYSTEM RESET es.retention_interval"),
    );
    ok("reload", admin.batch_execute("SELECT pg_reload_conf()"));
    ok(
        "remove the retention",
        c.execute("SELECT es.set_retention($1)", &[&stream_type]),
    );
    let left: i64 = ok(
        "es.retention",
        c.query_one(
            "SELECT count(*) FROM es.retention WHERE stream_type = $1",
            &[&stream_type],
        ),
    )
    .get(0);
    assert_eq!(
        left, 0,
        "es.set_retention(type) did not remove the retention"
    );
    println!(
        "the worker cut {} streams to {RETENTION_KEEP} events {:.1} s after the reload; {:.1} s in all",
        RETENTION_STREAMS,
        waited.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------
// 3. Dump and restore keep the lifecycle.

/// Everything a restore must keep, one query each.
const KEPT: [(&str, &str); 8] = [
    ("es.audit", "SELECT a::text FROM es.audit a ORDER BY id"),
    (
        "es.stream_lifecycle",
        "SELECT l::text FROM es.stream_lifecycle l ORDER BY stream_id",
    ),
    (
        "es.retention",
        "SELECT r::text FROM es.retention r ORDER BY stream_type",
    ),
    (
        "es.events",
        "SELECT e::text FROM es.events e ORDER BY global_position",
    ),
    (
        "es.archived_events",
        "SELECT e::text FROM es.archived_events e ORDER BY global_position",
    ),
    (
        "es.streams",
        "SELECT s::text FROM es.streams s ORDER BY stream_id",
    ),
    (
        "es.snapshots",
        "SELECT s::text FROM es.snapshots s ORDER BY stream_id, revision, version",
    ),
    (
        "es.load of every stream",
        "SELECT l::text FROM es.streams s, es.load(s.stream_id) l ORDER BY s.stream_id",
    ),
];

fn ticks(from: i64, to: i64) -> String {
    let items: Vec<String> = (from..=to)
        .map(|n| format!(r#"{{"type": "Ticked", "data": {{"n": {n}}}}}"#))
        .collect();
    format!("[{}]", items.join(","))
}

#[test]
fn dump_restore_keeps_lifecycle() {
    let started = Instant::now();
    let source = TestDb::create("lc_dump_source");
    let mut src = source.connect();
    for ty in ["trunc", "soft", "hard", "arch", "red", "ret"] {
        ok(
            "es.define_aggregate",
            src.execute(
                r#"SELECT es.define_aggregate($1, reducers => '{
                     "Ticked": [{"add": "total", "from": "$.n"}, {"inc": "count"}],
                     "Contact": [{"set": "email", "from": "$.email"}]}', snapshot_every => 3)"#,
                &[&ty],
            ),
        );
    }
    // A truncated stream.
    ok(
        "trunc-1",
        append_batch(&mut src, "trunc-1", &ticks(1, 10), Some(0)),
    );
    // A soft-deleted stream with a later append.
    ok(
        "soft-1",
        append_batch(&mut src, "soft-1", &ticks(1, 3), Some(0)),
    );
    // A hard-deleted stream.
    ok(
        "hard-1",
        append_batch(&mut src, "hard-1", &ticks(1, 3), Some(0)),
    );
    // An archived stream.
    ok(
        "arch-1",
        append_batch(&mut src, "arch-1", &ticks(1, 4), Some(0)),
    );
    // A redacted stream.
    ok(
        "red-1",
        append_batch(
            &mut src,
            "red-1",
            r#"[{"type": "Contact", "data": {"email": "eve@example.com", "name": "Eve"}},
                {"type": "Ticked", "data": {"n": 7}},
                {"type": "Contact", "data": {"email": "eve@example.com"}}]"#,
            Some(0),
        ),
    );
    // A stream cut by retention, and a retention that has nothing to cut yet.
    ok(
        "ret-1",
        append_batch(&mut src, "ret-1", &ticks(1, 8), Some(0)),
    );
    ok(
        "ret-2",
        append_batch(&mut src, "ret-2", &ticks(1, 2), Some(0)),
    );
    ok(
        "lifecycle",
        src.batch_execute(
            "SELECT es.truncate_stream('trunc-1', 7, 'too old');
             SELECT es.delete_stream('soft-1', reason => 'start over');
             SELECT es.delete_stream('hard-1', hard => true, reason => 'closed');
             SELECT es.archive_stream('arch-1', 'cold');
             SELECT es.redact('red-1', '{\"email\": \"[redacted]\"}', 'gdpr');
             SELECT es.set_retention('ret', max_count => 3);
             SELECT es.set_retention('trunc', max_age => interval '30 days');
             SELECT es.apply_retention();",
        ),
    );
    assert_eq!(
        ok(
            "soft-1 after delete",
            append(&mut src, "soft-1", "Ticked", r#"{"n": 100}"#, Some(4))
        ),
        5
    );
    assert_eq!(
        ok(
            "soft-1 after delete",
            append(&mut src, "soft-1", "Ticked", r#"{"n": 101}"#, Some(5))
        ),
        6
    );
    let operations = texts(&mut src, "SELECT operation FROM es.audit ORDER BY id");
    assert_eq!(
        operations,
        [
            "truncate_stream",
            "delete_stream",
            "delete_stream",
            "archive_stream",
            "redact",
            "apply_retention"
        ],
        "es.audit in the source database"
    );
    let src_problems = verify(&mut src);
    assert!(
        src_problems.is_empty(),
        "es.verify() in the source database: {src_problems:#?}"
    );
    let src_kept: Vec<Vec<String>> = KEPT.iter().map(|(_, q)| texts(&mut src, q)).collect();
    let arch_read = "SELECT e::text FROM es.read_stream('arch-1') e";
    let arch_load = "SELECT l::text FROM es.load('arch-1') l";
    let src_arch_read = texts(&mut src, arch_read);
    let src_arch_load = texts(&mut src, arch_load);
    assert_eq!(
        src_arch_read.len(),
        4,
        "es.read_stream of the archived stream"
    );

    let restored = TestDb::create_empty("lc_dump_restored");
    dump_and_restore(&source.name, &restored.name, Duration::from_secs(180));
    let mut dst = restored.connect();

    for ((what, q), before) in KEPT.iter().zip(&src_kept) {
        assert_eq!(&texts(&mut dst, q), before, "{what} after the restore");
    }
    let tombstones = texts(
        &mut dst,
        "SELECT format('%s %s %s', stream_id, version, data->'hard') FROM es.events
          WHERE event_type = '$StreamDeleted' ORDER BY stream_id",
    );
    assert_eq!(
        tombstones,
        ["hard-1 4 true", "soft-1 4 false"],
        "tombstones after the restore"
    );
    assert_eq!(
        texts(&mut dst, arch_read),
        src_arch_read,
        "es.read_stream of the archived stream after the restore"
    );
    assert_eq!(
        texts(&mut dst, arch_load),
        src_arch_load,
        "es.load of the archived stream after the restore"
    );
    let arch_in_read_all: i64 = ok(
        "read_all",
        dst.query_one(
            "SELECT count(*) FROM es.read_all(0, 10000) WHERE stream_id = 'arch-1'",
            &[],
        ),
    )
    .get(0);
    assert_eq!(
        arch_in_read_all, 0,
        "es.read_all hands out the archived stream's events"
    );

    // The rules hold in the restored database.
    let ns = SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE;
    expect_code(
        "append to the hard-deleted stream",
        append(&mut dst, "hard-1", "Ticked", "{}", None),
        &ns,
    );
    expect_code(
        "append to the archived stream",
        append(&mut dst, "arch-1", "Ticked", "{}", None),
        &ns,
    );
    for sql in [
        "DELETE FROM es.events WHERE stream_id = 'trunc-1'",
        "UPDATE es.events SET data = '{}' WHERE stream_id = 'red-1'",
        "DELETE FROM es.archived_events",
        "DELETE FROM es.audit",
    ] {
        expect_code(sql, dst.execute(sql, &[]), &ns);
    }
    let problems = verify(&mut dst);
    assert!(
        problems.is_empty(),
        "es.verify() in the restored database: {problems:#?}"
    );

    // And the lifecycle goes on from where it was.
    assert_eq!(
        ok(
            "soft-1",
            append(&mut dst, "soft-1", "Ticked", r#"{"n": 102}"#, Some(6))
        ),
        7
    );
    let max_id: i64 = ok("max id", dst.query_one("SELECT max(id) FROM es.audit", &[])).get(0);
    let moved: i64 = ok(
        "es.unarchive_stream",
        dst.query_one("SELECT es.unarchive_stream('arch-1')", &[]),
    )
    .get(0);
    assert_eq!(moved, 4, "es.unarchive_stream in the restored database");
    let new_id: i64 = ok("new id", dst.query_one("SELECT max(id) FROM es.audit", &[])).get(0);
    assert_eq!(
        new_id,
        max_id + 1,
        "the audit ids continue after the restore"
    );
    let src_positions = texts(
        &mut src,
        "SELECT global_position::text FROM es.archived_events WHERE stream_id = 'arch-1' ORDER BY version",
    );
    assert_eq!(
        texts(
            &mut dst,
            "SELECT global_position::text FROM es.events WHERE stream_id = 'arch-1' ORDER BY version",
        ),
        src_positions,
        "the unarchived events' positions"
    );
    let problems = verify(&mut dst);
    assert!(
        problems.is_empty(),
        "es.verify() in the restored database after more changes: {problems:#?}"
    );
    println!("dump and restore: {:.1} s", started.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------------------
// 4. An erasure leaves no copy.

/// Every place in database `db` where `secret` is still found.
fn copies_of(db: &TestDb, c: &mut Client, secret: &str) -> Vec<String> {
    let mut found = Vec::new();
    let dump = pg_dump_plain(&db.name, Duration::from_secs(120));
    for line in dump.lines().filter(|l| l.contains(secret)) {
        found.push(format!(
            "pg_dump: {}",
            line.chars().take(300).collect::<String>()
        ));
    }
    let tables = texts(
        c,
        "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = 'es'
          ORDER BY tablename",
    );
    assert!(tables.len() >= 10, "tables in schema es: {tables:?}");
    for table in tables
        .iter()
        .map(String::as_str)
        .chain(["public.person_state", "public.contacts"])
    {
        let rows = ok(
            table,
            c.query(
                &format!("SELECT t::text FROM {table} t WHERE strpos(t::text, $1) > 0"),
                &[&secret],
            ),
        );
        for r in rows {
            found.push(format!("{table}: {}", r.get::<_, String>(0)));
        }
    }
    found
}

/// Before the erasure the secret is where the checks look (else they prove nothing).
fn present_everywhere(db: &TestDb, c: &mut Client, secret: &str, before: &str) {
    let found = copies_of(db, c, secret);
    for place in [
        "pg_dump",
        "es.events",
        "es.snapshots",
        "public.person_state",
        "public.contacts",
    ] {
        assert!(
            found.iter().any(|f| f.starts_with(place)),
            "before {before} the secret should be in {place}; found in: {found:#?}"
        );
    }
}

#[test]
fn erasure_leaves_no_copy() {
    let started = Instant::now();
    let db = TestDb::create("lc_erasure");
    let mut c = db.connect();
    ok(
        "aggregate, materialized table, inline projection",
        c.batch_execute(
            r#"SELECT es.define_aggregate('person', reducers => '{
                   "Registered":     [{"set": "email", "from": "$.email"}, {"set": "name", "from": "$.name"}],
                   "EmailConfirmed": [{"set": "email", "from": "$.email"}, {"inc": "confirmations"}],
                   "Renamed":        [{"set": "name", "from": "$.name"}]}', snapshot_every => 2);
               SELECT es.materialize_aggregate('person', 'public.person_state');
               CREATE TABLE public.contacts (
                   stream_id text   NOT NULL,
                   version   bigint NOT NULL,
                   email     text,
                   PRIMARY KEY (stream_id, version)
               );
               CREATE FUNCTION public.contacts_project(e es.events) RETURNS void LANGUAGE sql AS $$
                   INSERT INTO public.contacts VALUES (e.stream_id, e.version, e.data->>'email')
               $$;
               CREATE FUNCTION public.contacts_reset() RETURNS void LANGUAGE sql AS $$
                   DELETE FROM public.contacts
               $$;
               SELECT es.create_projection('contacts', 'public.contacts_project(es.events)', 'inline',
                                           stream_types => ARRAY['person'],
                                           reset => 'public.contacts_reset()');"#,
        ),
    );
    let new_secret = |c: &mut Client| -> String {
        ok(
            "secret",
            c.query_one("SELECT 'x' || gen_random_uuid() || '@example.com'", &[]),
        )
        .get(0)
    };
    let fill = |c: &mut Client, stream: &str, secret: &str| {
        let events = format!(
            r#"[{{"type": "Registered", "data": {{"email": "{secret}", "name": "Alice"}}}},
                {{"type": "Renamed", "data": {{"name": "Alice B."}}}},
                {{"type": "EmailConfirmed", "data": {{"email": "{secret}"}}}},
                {{"type": "Renamed", "data": {{"name": "Alice C."}}}},
                {{"type": "EmailConfirmed", "data": {{"email": "{secret}"}}}}]"#
        );
        assert_eq!(
            ok("append_events", append_batch(c, stream, &events, Some(0))),
            5
        );
    };
    // Someone else's data, left alone.
    ok(
        "person-2",
        append(
            &mut c,
            "person-2",
            "Registered",
            r#"{"email": "bob@example.com", "name": "Bob"}"#,
            Some(0),
        ),
    );

    // A redaction.
    let secret1 = new_secret(&mut c);
    fill(&mut c, "person-1", &secret1);
    present_everywhere(&db, &mut c, &secret1, "the redaction");
    let n: i64 = ok(
        "es.redact",
        c.query_one(
            "SELECT es.redact('person-1', '{\"email\": \"[redacted]\"}', 'gdpr')",
            &[],
        ),
    )
    .get(0);
    assert_eq!(n, 3, "events es.redact changed");
    let after_redact = copies_of(&db, &mut c, &secret1);
    let verify_after_redact = verify(&mut c);
    let contacts: Vec<String> = texts(
        &mut c,
        "SELECT format('%s %s %s', stream_id, version, email) FROM public.contacts
          WHERE stream_id = 'person-1' ORDER BY version",
    );

    // A hard delete.
    let secret2 = new_secret(&mut c);
    fill(&mut c, "person-3", &secret2);
    present_everywhere(&db, &mut c, &secret2, "the hard delete");
    let n: i64 = ok(
        "es.delete_stream",
        c.query_one(
            "SELECT es.delete_stream('person-3', hard => true, reason => 'erasure request')",
            &[],
        ),
    )
    .get(0);
    assert_eq!(n, 5, "events es.delete_stream removed");
    let after_delete = copies_of(&db, &mut c, &secret2);
    let verify_after_delete = verify(&mut c);

    assert!(
        after_redact.is_empty()
            && after_delete.is_empty()
            && verify_after_redact.is_empty()
            && verify_after_delete.is_empty(),
        "copies left after es.redact('person-1', {{\"email\": \"[redacted]\"}}): {after_redact:#?}\n\
         copies left after es.delete_stream('person-3', hard => true): {after_delete:#?}\n\
         es.verify() after the redaction: {verify_after_redact:#?}\n\
         es.verify() after the hard delete: {verify_after_delete:#?}"
    );
    assert_eq!(
        contacts,
        [
            "person-1 1 [redacted]",
            "person-1 2 NULL",
            "person-1 3 [redacted]",
            "person-1 4 NULL",
            "person-1 5 [redacted]",
            "person-1 6 NULL"
        ]
        .map(|s| s.replace("NULL", "")),
        "the inline read model, rebuilt after the redaction"
    );
    let bob = texts(
        &mut c,
        "SELECT state->>'email' FROM public.person_state WHERE stream_id = 'person-2'",
    );
    assert_eq!(
        bob,
        ["bob@example.com"],
        "another stream's materialized state"
    );
    println!("erasure: {:.1} s", started.elapsed().as_secs_f64());
}
