//! An async projection (caught up by client loops of `es.run_projection`)
//! and a subscriber (`es.poll` / `es.ack`) keep up with 8 concurrent writers
//! while one transaction holds events with low positions open until every
//! writer is done. At the end both have exactly the committed events, each
//! once, each stream in version order, the held transaction's events
//! included, and nothing of rolled-back transactions.

use pg_eventsource_integration::{append, append_batch, describe, wait_until, TestDb};
use postgres::Client;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

const WRITERS: usize = 8;
/// Committed events per writer.
const PER_WRITER: usize = 200;
const SHARED_STREAMS: usize = 4;
const CATCH_UP_THREADS: usize = 2;
const PROJECTION: &str = "exactly_once";
const CONSUMER: &str = "exactly_once_consumer";

/// (global_position, stream_id, version)
type Ev = (i64, String, i64);

fn ok<T>(what: &str, r: Result<T, postgres::Error>) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {}", describe(&e)))
}

fn batch_json(w: usize, seq: usize, n: usize) -> String {
    let items: Vec<String> = (0..n)
        .map(|j| {
            format!(
                r#"{{"type": "Batched", "data": {{"w": {w}, "seq": {}}}}}"#,
                seq + j
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

/// Appends exactly `PER_WRITER` committed events to the writer's two own
/// streams and to the shared streams: singles and batches in autocommit,
/// transactions over several streams, and rolled-back transactions.
fn write(w: usize, mut c: Client, start: Arc<Barrier>, committed: Arc<AtomicUsize>) {
    let deadline = Instant::now() + Duration::from_secs(240);
    let own = [format!("acct-w{w}a"), format!("acct-w{w}b")];
    let mut own_v = [0i64, 0i64];
    let mut seq = 0usize;
    let mut step = 0usize;
    start.wait();
    while seq < PER_WRITER {
        assert!(Instant::now() < deadline, "writer {w} ran out of time");
        let left = PER_WRITER - seq;
        let shared = format!("shared-{}", (w + step) % SHARED_STREAMS);
        let data = format!(r#"{{"w": {w}, "seq": {seq}}}"#);
        let n = match step % 6 {
            0 => {
                own_v[0] = ok(
                    "single",
                    append(&mut c, &own[0], "Single", &data, Some(own_v[0])),
                );
                1
            }
            1 => {
                let n = left.min(2 + step % 4);
                own_v[1] = ok(
                    "batch",
                    append_batch(&mut c, &own[1], &batch_json(w, seq, n), Some(own_v[1])),
                );
                n
            }
            2 => {
                ok(
                    "shared single",
                    append(&mut c, &shared, "Shared", &data, None),
                );
                1
            }
            3 => {
                // One transaction over three streams (one shared stream only,
                // so writers cannot deadlock on the shared streams' rows).
                let n = left.min(4);
                ok("BEGIN", c.batch_execute("BEGIN"));
                own_v[0] = ok(
                    "tx single",
                    append(&mut c, &own[0], "InTx", &data, Some(own_v[0])),
                );
                if n >= 2 {
                    let m = (n - 1).min(2);
                    ok(
                        "tx shared batch",
                        append_batch(&mut c, &shared, &batch_json(w, seq + 1, m), None),
                    );
                    if n > 1 + m {
                        own_v[1] = ok(
                            "tx own batch",
                            append_batch(
                                &mut c,
                                &own[1],
                                &batch_json(w, seq + 1 + m, n - 1 - m),
                                Some(own_v[1]),
                            ),
                        );
                    }
                }
                ok("COMMIT", c.batch_execute("COMMIT"));
                n
            }
            4 => {
                ok("BEGIN", c.batch_execute("BEGIN"));
                ok(
                    "rolled back single",
                    append(&mut c, &own[0], "RolledBack", &data, Some(own_v[0])),
                );
                ok(
                    "rolled back batch",
                    append_batch(&mut c, &own[1], &batch_json(w, seq, 3), Some(own_v[1])),
                );
                ok("ROLLBACK", c.batch_execute("ROLLBACK"));
                0
            }
            _ => {
                let n = left.min(3);
                ok(
                    "shared batch",
                    append_batch(&mut c, &shared, &batch_json(w, seq, n), None),
                );
                n
            }
        };
        seq += n;
        committed.fetch_add(n, SeqCst);
        step += 1;
    }
}

/// Loops `es.run_projection(name, 500)` until told to stop.
fn catch_up(mut c: Client, stop: Arc<AtomicBool>, rounds: Arc<AtomicUsize>) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut handled = 0i64;
    while !stop.load(SeqCst) {
        assert!(
            Instant::now() < deadline,
            "the catch-up loop ran out of time"
        );
        let n: i64 = ok(
            "es.run_projection",
            c.query_one("SELECT es.run_projection($1, 500)", &[&PROJECTION]),
        )
        .get(0);
        handled += n;
        rounds.fetch_add(1, SeqCst);
        if n == 0 {
            thread::sleep(Duration::from_millis(5));
        }
    }
    handled
}

/// Loops `es.poll` / `es.ack` until told to stop; returns what it received,
/// in order.
fn consume(mut c: Client, stop: Arc<AtomicBool>, rounds: Arc<AtomicUsize>) -> Vec<Ev> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut got: Vec<Ev> = Vec::new();
    let mut last = 0i64;
    while !stop.load(SeqCst) {
        assert!(Instant::now() < deadline, "the consumer ran out of time");
        let page: Vec<Ev> = ok(
            "es.poll",
            c.query(
                "SELECT global_position, stream_id, version FROM es.poll($1, 200)",
                &[&CONSUMER],
            ),
        )
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
        rounds.fetch_add(1, SeqCst);
        if page.is_empty() {
            thread::sleep(Duration::from_millis(5));
            continue;
        }
        for e in &page {
            assert!(
                e.0 > last,
                "es.poll returned position {} after the acked position {last}",
                e.0
            );
            last = e.0;
        }
        got.extend(page);
        ok(
            "es.ack",
            c.execute("SELECT es.ack($1, $2)", &[&CONSUMER, &last]),
        );
    }
    got
}

fn subscriptions_installed(c: &mut Client) -> bool {
    ok(
        "to_regprocedure",
        c.query_one(
            "SELECT to_regprocedure('es.subscribe(text, text[], text[], bigint)') IS NOT NULL
                AND to_regprocedure('es.poll(text, integer)') IS NOT NULL
                AND to_regprocedure('es.ack(text, bigint)') IS NOT NULL",
            &[],
        ),
    )
    .get(0)
}

/// Whether the extension's SQL sources (sql/*.sql of this repository)
/// define es.subscribe: then the subscriber half must run.
fn source_defines_subscriptions() -> bool {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sql");
    std::fs::read_dir(&dir)
        .map(|entries| {
            entries.filter_map(Result::ok).any(|e| {
                e.path().extension().is_some_and(|x| x == "sql")
                    && std::fs::read_to_string(e.path())
                        .is_ok_and(|t| t.contains("FUNCTION es.subscribe("))
            })
        })
        .unwrap_or(false)
}

/// Checks that `got` (in arrival order) is exactly `all`, once each, in
/// global order (stream version order is checked by the caller).
fn check_delivery(who: &str, got: &[Ev], all: &[Ev], held: &[Ev]) {
    let mut count: HashMap<i64, usize> = HashMap::new();
    for e in got {
        *count.entry(e.0).or_default() += 1;
    }
    let twice: Vec<_> = count.iter().filter(|(_, &n)| n > 1).collect();
    assert!(
        twice.is_empty(),
        "{who}: events received more than once: {twice:?}"
    );
    let got_set: BTreeSet<&Ev> = got.iter().collect();
    let all_set: BTreeSet<&Ev> = all.iter().collect();
    let missing: Vec<_> = all_set.difference(&got_set).take(10).collect();
    let extra: Vec<_> = got_set.difference(&all_set).take(10).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{who}: received {} events, {} are committed; missing e.g. {missing:?}; not committed (or \
         with other stream/version) e.g. {extra:?}",
        got.len(),
        all.len()
    );
    for h in held {
        assert!(
            got_set.contains(h),
            "{who}: the held transaction's event {h:?} never arrived"
        );
    }
    for pair in got.windows(2) {
        assert!(
            pair[0].0 < pair[1].0,
            "{who}: received position {} after {}: not in global order",
            pair[1].0,
            pair[0].0
        );
    }
}

/// Where `got` (in arrival order) breaks a stream's version order: for each
/// such event, (stream, version, position, the version that came before it).
fn version_order_breaks(got: &[Ev]) -> Vec<(String, i64, i64, i64)> {
    let mut versions: BTreeMap<&str, i64> = BTreeMap::new();
    let mut breaks = Vec::new();
    for (pos, stream, version) in got {
        let v = versions.entry(stream.as_str()).or_insert(0);
        if *version != *v + 1 {
            breaks.push((stream.clone(), *version, *pos, *v));
        }
        *v = (*v).max(*version);
    }
    breaks
}

/// What the projection and the subscriber received, in arrival order.
struct Delivered {
    projected: Vec<Ev>,
    /// None when es.subscribe is not installed.
    received: Option<Vec<Ev>>,
}

/// Runs the whole scenario in database `es_it_{db_name}` and checks that
/// both got every committed event exactly once, in global order.
fn run_scenario(db_name: &str) -> Delivered {
    let db = TestDb::create_warm(db_name);
    let mut c = db.connect();
    ok(
        "read model and handler",
        c.batch_execute(
            "CREATE SEQUENCE public.arrival;
             CREATE TABLE public.projected (
                 global_position bigint  PRIMARY KEY,
                 stream_id       text    NOT NULL,
                 version         bigint  NOT NULL,
                 arrival         bigint  NOT NULL DEFAULT nextval('public.arrival'),
                 repeats         integer NOT NULL DEFAULT 0
             );
             CREATE FUNCTION public.project(e es.events) RETURNS void LANGUAGE sql AS $$
                 INSERT INTO public.projected AS p (global_position, stream_id, version)
                 VALUES (e.global_position, e.stream_id, e.version)
                 ON CONFLICT (global_position) DO UPDATE SET repeats = p.repeats + 1
             $$;",
        ),
    );
    ok(
        "es.create_projection",
        c.execute(
            "SELECT es.create_projection($1, 'public.project(es.events)'::regprocedure, mode => 'async')",
            &[&PROJECTION],
        ),
    );
    let with_subscriber = subscriptions_installed(&mut c);
    assert!(
        with_subscriber || !source_defines_subscriptions(),
        "the repository's sql/ defines es.subscribe but the installed extension has no \
         es.subscribe/es.poll/es.ack: install the current build"
    );
    if with_subscriber {
        ok(
            "es.subscribe",
            c.execute("SELECT es.subscribe($1)", &[&CONSUMER]),
        );
    } else {
        println!(
            "SKIPPED (subscriber half only): es.subscribe/es.poll/es.ack are neither in the \
             installed extension nor in sql/; the projection half runs"
        );
    }

    let stop = Arc::new(AtomicBool::new(false));
    let catch_up_rounds = Arc::new(AtomicUsize::new(0));
    let consumer_rounds = Arc::new(AtomicUsize::new(0));
    let catch_ups: Vec<_> = (0..CATCH_UP_THREADS)
        .map(|_| {
            let (cl, stop, rounds) = (
                db.connect(),
                Arc::clone(&stop),
                Arc::clone(&catch_up_rounds),
            );
            thread::spawn(move || catch_up(cl, stop, rounds))
        })
        .collect();
    let consumer = with_subscriber.then(|| {
        let (cl, stop, rounds) = (
            db.connect(),
            Arc::clone(&stop),
            Arc::clone(&consumer_rounds),
        );
        thread::spawn(move || consume(cl, stop, rounds))
    });

    let committed = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(WRITERS));
    let clients: Vec<Client> = (0..WRITERS).map(|_| db.connect()).collect();
    let writers: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(w, cl)| {
            let (start, committed) = (Arc::clone(&start), Arc::clone(&committed));
            thread::spawn(move || write(w, cl, start, committed))
        })
        .collect();

    // Once the writers are well under way, H appends (taking its transaction
    // id, hence its positions, now) and stays open: every writer transaction
    // that starts after this gets higher positions and commits before H.
    assert!(
        wait_until(Duration::from_secs(120), || {
            committed.load(SeqCst) >= WRITERS * PER_WRITER / 4
                || writers.iter().all(|t| t.is_finished())
        }),
        "the writers committed only {} events in 120 s",
        committed.load(SeqCst)
    );
    let mut h = db.connect();
    ok("H BEGIN", h.batch_execute("BEGIN"));
    ok(
        "H single",
        append(&mut h, "held-1", "Held", r#"{"h": 1}"#, Some(0)),
    );
    ok(
        "H batch",
        append_batch(
            &mut h,
            "held-2",
            r#"[{"type": "Held", "data": {"h": 2}}, {"type": "Held", "data": {"h": 3}}]"#,
            Some(0),
        ),
    );
    ok(
        "H second single",
        append(&mut h, "held-1", "Held", r#"{"h": 4}"#, Some(1)),
    );
    let (h_first, h_last): (i64, i64) = {
        let r = ok(
            "H positions",
            h.query_one(
                "SELECT min(global_position), max(global_position) FROM es.events
                  WHERE stream_id IN ('held-1', 'held-2')",
                &[],
            ),
        );
        (r.get(0), r.get(1))
    };
    let committed_before_h = committed.load(SeqCst);

    for t in writers {
        t.join().expect("a writer thread panicked");
    }

    // Every writer committed; H is open. Let both loops run a few more rounds:
    // neither may pass H's positions.
    let (cr, sr) = (catch_up_rounds.load(SeqCst), consumer_rounds.load(SeqCst));
    assert!(
        wait_until(Duration::from_secs(60), || {
            catch_up_rounds.load(SeqCst) >= cr + 5
                && (!with_subscriber || consumer_rounds.load(SeqCst) >= sr + 5)
        }),
        "the catch-up and consumer loops stopped going round"
    );
    let mut obs = db.connect();
    let writer_events_above_h: i64 = ok(
        "writer events above H",
        obs.query_one(
            "SELECT count(*) FROM es.events WHERE stream_id NOT LIKE 'held-%' AND global_position > $1",
            &[&h_last],
        ),
    )
    .get(0);
    assert!(
        writer_events_above_h > 0,
        "no committed writer event has a position above H's: the out-of-order commit did not happen"
    );
    let (position_while_h_open, projected_max): (i64, Option<i64>) = {
        let r = ok(
            "projection while H is open",
            obs.query_one(
                "SELECT (SELECT position FROM es.projections WHERE name = $1),
                        (SELECT max(global_position) FROM public.projected)",
                &[&PROJECTION],
            ),
        );
        (r.get(0), r.get(1))
    };
    assert!(
        position_while_h_open < h_first && projected_max.unwrap_or(0) < h_first,
        "while H was open the projection moved to {position_while_h_open} (read model up to \
         {projected_max:?}), past H's first position {h_first}: H's events would be skipped"
    );
    if with_subscriber {
        let checkpoint: i64 = ok(
            "checkpoint",
            obs.query_one(
                "SELECT position FROM es.subscriptions WHERE consumer = $1",
                &[&CONSUMER],
            ),
        )
        .get(0);
        assert!(
            checkpoint < h_first,
            "while H was open the consumer's checkpoint moved to {checkpoint}, past H's first \
             position {h_first}"
        );
    }

    ok("H COMMIT", h.batch_execute("COMMIT"));

    // Everything is committed. Wait until both have drained it.
    let all: Vec<Ev> = ok(
        "es.events",
        obs.query(
            "SELECT global_position, stream_id, version FROM es.events ORDER BY global_position",
            &[],
        ),
    )
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect();
    assert_eq!(
        all.len(),
        1 + WRITERS * PER_WRITER + 4,
        "events committed in total (warm-up, writers, H)"
    );
    let total = all.len() as i64;
    let mut state = (0i64, -1i64, String::new(), None::<String>);
    let drained = wait_until(Duration::from_secs(120), || {
        let r = ok(
            "progress",
            obs.query_one(
                "SELECT (SELECT count(*) FROM public.projected), lag, status, last_error
                   FROM es.projections WHERE name = $1",
                &[&PROJECTION],
            ),
        );
        state = (r.get(0), r.get(1), r.get(2), r.get(3));
        state.0 >= total && state.1 == 0
    });
    assert!(
        drained,
        "the projection did not catch up within 120 s after the last commit: {} of {total} \
         events in the read model, lag {}, status {} ({:?})",
        state.0, state.1, state.2, state.3
    );
    let consumer_target = consumer_rounds.load(SeqCst);
    if with_subscriber {
        let lagging = || -> i64 {
            // Whatever lies after the checkpoint.
            db.connect()
                .query_one(
                    "SELECT count(*) FROM es.events WHERE global_position >
                       (SELECT position FROM es.subscriptions WHERE consumer = $1)",
                    &[&CONSUMER],
                )
                .map(|r| r.get(0))
                .unwrap_or(-1)
        };
        assert!(
            wait_until(Duration::from_secs(120), || lagging() == 0
                && consumer_rounds.load(SeqCst) > consumer_target),
            "the consumer did not ack every event within 120 s after the last commit ({} left)",
            lagging()
        );
    }
    stop.store(true, SeqCst);
    let handled: i64 = catch_ups
        .into_iter()
        .map(|t| t.join().expect("a catch-up thread panicked"))
        .sum();
    let received = consumer.map(|t| t.join().expect("the consumer thread panicked"));

    // A last catch-up and poll find nothing more.
    let more: i64 = ok(
        "final run_projection",
        obs.query_one("SELECT es.run_projection($1, 500)", &[&PROJECTION]),
    )
    .get(0);
    assert_eq!(more, 0, "a final es.run_projection still found events");

    let held: Vec<Ev> = all
        .iter()
        .filter(|e| e.1.starts_with("held-"))
        .cloned()
        .collect();
    assert_eq!(held.len(), 4, "H's events committed");

    // The projection: exactly the committed events, once each, in order.
    let rows = ok(
        "read model",
        obs.query(
            "SELECT global_position, stream_id, version, repeats FROM public.projected ORDER BY arrival",
            &[],
        ),
    );
    let repeated: Vec<(i64, i32)> = rows
        .iter()
        .filter(|r| r.get::<_, i32>(3) > 0)
        .map(|r| (r.get(0), r.get(3)))
        .collect();
    assert!(
        repeated.is_empty(),
        "projection: events handled more than once (position, repeats): {repeated:?}"
    );
    let projected: Vec<Ev> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    check_delivery("projection", &projected, &all, &held);
    let (status, position, events_handled): (String, i64, i64) = {
        let r = ok(
            "es.projections",
            obs.query_one(
                "SELECT status, position, events_handled FROM es.projections WHERE name = $1",
                &[&PROJECTION],
            ),
        );
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!(status, "running");
    assert_eq!(
        position,
        all.last().unwrap().0,
        "the projection's final position"
    );
    assert_eq!(
        handled, total,
        "events the catch-up calls reported handling"
    );
    assert_eq!(events_handled, total, "es.projections.events_handled");

    // The subscriber: the same.
    if let Some(received) = &received {
        check_delivery("subscriber", received, &all, &held);
        let left: i64 = ok(
            "final poll",
            obs.query_one("SELECT count(*) FROM es.poll($1, 1000)", &[&CONSUMER]),
        )
        .get(0);
        assert_eq!(left, 0, "a final es.poll still returned events");
    }

    let rolled_back: i64 = ok(
        "rolled back",
        obs.query_one(
            "SELECT count(*) FROM es.events WHERE event_type = 'RolledBack'",
            &[],
        ),
    )
    .get(0);
    assert_eq!(
        rolled_back, 0,
        "events of rolled-back transactions were stored"
    );
    println!(
        "{total} events; H at {h_first}..={h_last} appended after {committed_before_h} writer events, \
         {writer_events_above_h} writer events above it; projection position while H was open \
         {position_while_h_open}; catch-up rounds {}; subscriber: {}",
        catch_up_rounds.load(SeqCst),
        match &received {
            Some(r) => format!("{} events in {} polls", r.len(), consumer_rounds.load(SeqCst)),
            None => "SKIPPED (es.subscribe not installed)".into(),
        }
    );
    Delivered {
        projected,
        received,
    }
}

#[test]
fn projection_and_subscriber_get_every_committed_event_exactly_once() {
    let d = run_scenario("projection_subscriber_exactly_once");
    // Each stream in version order: a transaction can take its id before
    // another that appends to the same stream first and commits first; the
    // append must still give the later version the later position.
    for (who, got) in [
        ("projection", Some(&d.projected)),
        ("subscriber", d.received.as_ref()),
    ] {
        if let Some(got) = got {
            let breaks = version_order_breaks(got);
            assert!(
                breaks.is_empty(),
                "{who}: {} events arrived out of their stream's version order \
                 (stream, version, position, highest version before it), e.g. {:?}",
                breaks.len(),
                &breaks[..breaks.len().min(10)]
            );
        }
    }
}
