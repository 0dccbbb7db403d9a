//! A backend killed (`pg_terminate_backend`) in the middle of an async
//! catch-up leaves the read model consistent with the projection's position:
//! the handler's table holds exactly the matching events at or below
//! `es.projections.position`, and a later `es.run_projection` completes it
//! with every event handled exactly once.

use pg_eventsource_integration::{append_batch, describe, wait_until, TestDb};
use postgres::Client;
use std::thread;
use std::time::Duration;

const STREAMS: usize = 6;
const BATCHES_PER_STREAM: usize = 2;
const BATCH: usize = 250;
/// Every fifth event is of a type the projection does not want.
const IGNORED_EVERY: usize = 5;
const PROJECTION: &str = "slow_counter";

fn ok<T>(what: &str, r: Result<T, postgres::Error>) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {}", describe(&e)))
}

fn setup(c: &mut Client) {
    ok(
        "read model and handler",
        c.batch_execute(
            "CREATE TABLE public.seen (
                 global_position bigint PRIMARY KEY,
                 stream_id       text   NOT NULL,
                 version         bigint NOT NULL,
                 repeats         integer NOT NULL DEFAULT 0
             );
             -- nextval is not transactional: other sessions see the handler's
             -- progress while the catch-up's transaction is still open.
             CREATE SEQUENCE public.handler_calls;
             CREATE FUNCTION public.slow_record(e es.events) RETURNS void
             LANGUAGE plpgsql AS $$
             BEGIN
                 PERFORM nextval('public.handler_calls');
                 PERFORM pg_sleep(0.001);
                 INSERT INTO public.seen AS s (global_position, stream_id, version)
                 VALUES (e.global_position, e.stream_id, e.version)
                 ON CONFLICT (global_position) DO UPDATE SET repeats = s.repeats + 1;
             END
             $$;",
        ),
    );
    ok(
        "es.create_projection",
        c.execute(
            "SELECT es.create_projection($1, 'public.slow_record(es.events)'::regprocedure,
                                         mode => 'async', event_types => ARRAY['Counted'])",
            &[&PROJECTION],
        ),
    );
}

fn append_history(c: &mut Client) -> i64 {
    let mut counted = 0i64;
    for s in 0..STREAMS {
        let stream = format!("item-{s}");
        for b in 0..BATCHES_PER_STREAM {
            let events: Vec<String> = (0..BATCH)
                .map(|j| {
                    let seq = b * BATCH + j;
                    let ty = if seq % IGNORED_EVERY == IGNORED_EVERY - 1 {
                        "Ignored"
                    } else {
                        counted += 1;
                        "Counted"
                    };
                    format!(r#"{{"type": "{ty}", "data": {{"s": {s}, "seq": {seq}}}}}"#)
                })
                .collect();
            ok(
                "append_events",
                append_batch(
                    c,
                    &stream,
                    &format!("[{}]", events.join(",")),
                    Some((b * BATCH) as i64),
                ),
            );
        }
    }
    counted
}

fn calls(c: &mut Client) -> i64 {
    ok(
        "handler_calls",
        c.query_one(
            "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM public.handler_calls",
            &[],
        ),
    )
    .get(0)
}

/// The projection's position, after checking that the read model holds
/// exactly the matching events at or below it, each once.
fn check_consistent(c: &mut Client, when: &str) -> i64 {
    let row = ok(
        "es.projections",
        c.query_one(
            "SELECT position, status, last_error FROM es.projections WHERE name = $1",
            &[&PROJECTION],
        ),
    );
    let (position, status, last_error): (i64, String, Option<String>) =
        (row.get(0), row.get(1), row.get(2));
    assert_eq!(
        status, "running",
        "{when}: the projection is {status} ({last_error:?})"
    );
    let missing: Vec<i64> = ok(
        "missing",
        c.query(
            "SELECT e.global_position FROM es.events e
              WHERE e.event_type = 'Counted' AND e.global_position <= $1
                AND NOT EXISTS (SELECT FROM public.seen s WHERE s.global_position = e.global_position)
              ORDER BY 1",
            &[&position],
        ),
    )
    .iter()
    .map(|r| r.get(0))
    .collect();
    let extra: Vec<(i64, String, i64)> = ok(
        "extra",
        c.query(
            "SELECT s.global_position, s.stream_id, s.version FROM public.seen s
              WHERE s.global_position > $1
                 OR NOT EXISTS (SELECT FROM es.events e
                                 WHERE e.global_position = s.global_position
                                   AND e.event_type = 'Counted'
                                   AND e.stream_id = s.stream_id AND e.version = s.version)
              ORDER BY 1",
            &[&position],
        ),
    )
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect();
    let repeated: Vec<(i64, i32)> = ok(
        "repeated",
        c.query(
            "SELECT global_position, repeats FROM public.seen WHERE repeats > 0 ORDER BY 1",
            &[],
        ),
    )
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    assert!(
        missing.is_empty(),
        "{when}: {} matching events at or below the position {position} are not in the read model \
         (lost), e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(
        extra.is_empty(),
        "{when}: the read model has {} rows above the position {position} or for no matching event \
         (the position lags the read model), e.g. {:?}",
        extra.len(),
        &extra[..extra.len().min(10)]
    );
    assert!(
        repeated.is_empty(),
        "{when}: events handled more than once: {:?}",
        &repeated[..repeated.len().min(10)]
    );
    position
}

/// Starts a catch-up on its own connection (one `es.run_projection(name,
/// max_events)` call, or a loop of them), waits until its backend is running
/// the call and the handler has run at least `progress` more times, kills
/// the backend, and checks the catch-up did not finish on its own.
fn kill_mid_catch_up(db: &TestDb, max_events: i32, in_a_loop: bool, progress: i64) {
    let mut observer = db.connect();
    let mut victim = db.connect();
    let pid: i32 = ok("pid", victim.query_one("SELECT pg_backend_pid()", &[])).get(0);
    let before = calls(&mut observer);
    let catch_up = thread::spawn(move || -> Result<i64, postgres::Error> {
        let mut total = 0i64;
        loop {
            let n: i64 = victim
                .query_one(
                    "SELECT es.run_projection($1, $2)",
                    &[&PROJECTION, &max_events],
                )?
                .get(0);
            total += n;
            if !in_a_loop || n == 0 {
                return Ok(total);
            }
        }
    });
    assert!(
        wait_until(Duration::from_secs(60), || {
            ok(
                "pg_stat_activity",
                observer.query_one(
                    "SELECT count(*) FROM pg_stat_activity
                      WHERE pid = $1 AND state = 'active' AND query LIKE '%es.run_projection%'",
                    &[&pid],
                ),
            )
            .get::<_, i64>(0)
                == 1
                || catch_up.is_finished()
        }),
        "backend {pid} was not seen running es.run_projection within 60 s"
    );
    assert!(
        wait_until(Duration::from_secs(120), || {
            calls(&mut observer) >= before + progress || catch_up.is_finished()
        }),
        "the handler ran only {} times in 120 s",
        calls(&mut observer) - before
    );
    assert!(
        !catch_up.is_finished(),
        "the catch-up finished before it could be killed (the handler is too fast for this test)"
    );
    let terminated: bool = ok(
        "pg_terminate_backend",
        observer.query_one("SELECT pg_terminate_backend($1)", &[&pid]),
    )
    .get(0);
    assert!(terminated, "pg_terminate_backend({pid}) returned false");
    match catch_up.join().expect("the catch-up thread panicked") {
        Ok(n) => panic!(
            "the catch-up returned normally ({n} events) although its backend was terminated mid-way"
        ),
        Err(e) => println!("the killed catch-up got: {}", describe(&e)),
    }
    assert!(
        wait_until(Duration::from_secs(30), || {
            ok(
                "pg_stat_activity",
                observer.query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                    &[&pid],
                ),
            )
            .get::<_, i64>(0)
                == 0
        }),
        "backend {pid} was still there 30 s after pg_terminate_backend"
    );
    println!(
        "killed backend {pid} after the handler ran {} times",
        calls(&mut observer) - before
    );
}

#[test]
fn killed_catch_up_leaves_read_model_consistent_with_position() {
    let db = TestDb::create_warm("catch_up_killed");
    let mut c = db.connect();
    setup(&mut c);
    let counted = append_history(&mut c);

    // A first, committed step: the position is somewhere in the middle.
    let first: i64 = ok(
        "first run_projection",
        c.query_one("SELECT es.run_projection($1, 400)", &[&PROJECTION]),
    )
    .get(0);
    assert_eq!(first, 400, "the first catch-up step");
    let p1 = check_consistent(&mut c, "after the first step");
    assert!(p1 > 0);

    // One call that would handle everything, killed mid-way: its whole
    // transaction is gone, so nothing moved.
    kill_mid_catch_up(&db, 100_000, false, 300);
    let p2 = check_consistent(&mut c, "after killing one long es.run_projection call");
    assert_eq!(
        p2, p1,
        "the killed call's transaction never committed, yet the position moved"
    );

    // A client loop of small steps, killed mid-way: some steps committed,
    // the one running was lost whole.
    kill_mid_catch_up(&db, 150, true, 700);
    let p3 = check_consistent(&mut c, "after killing a loop of es.run_projection calls");
    assert!(
        p3 > p2,
        "the loop's committed steps did not move the position"
    );
    let seen_mid: i64 = ok(
        "count",
        c.query_one("SELECT count(*) FROM public.seen", &[]),
    )
    .get(0);
    assert!(
        seen_mid < counted,
        "the loop had finished everything before it was killed"
    );

    // Later catch-ups complete it.
    let mut steps = 0;
    loop {
        let n: i64 = ok(
            "run_projection after the kills",
            c.query_one("SELECT es.run_projection($1, 1000)", &[&PROJECTION]),
        )
        .get(0);
        if n == 0 {
            break;
        }
        steps += 1;
        assert!(steps <= 100, "es.run_projection keeps returning events");
    }
    let last = check_consistent(&mut c, "after the final catch-up");
    let (seen, lag): (i64, i64) = {
        let r = ok(
            "final counts",
            c.query_one(
                "SELECT (SELECT count(*) FROM public.seen),
                        (SELECT lag FROM es.projections WHERE name = $1)",
                &[&PROJECTION],
            ),
        );
        (r.get(0), r.get(1))
    };
    let max_counted: i64 = ok(
        "max",
        c.query_one(
            "SELECT max(global_position) FROM es.events WHERE event_type = 'Counted'",
            &[],
        ),
    )
    .get(0);
    assert_eq!(lag, 0, "lag after the final catch-up");
    assert_eq!(
        last, max_counted,
        "the position after the final catch-up is not the last matching event"
    );
    assert_eq!(
        seen, counted,
        "the read model does not hold every matching event exactly once"
    );
    println!(
        "{counted} matching events; positions: first step {p1}, after the loop {p3}, final {last}; \
         read model held {seen_mid} rows before the final catch-up"
    );
}
