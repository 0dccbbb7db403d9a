//! With the library in `shared_preload_libraries` and the database named in
//! `es.worker_databases`, the background worker catches an async projection
//! up with no client ever calling `es.run_projection`.
//!
//! The worker serves the database `es_worker` (created by the test scripts
//! when they start the cluster). Other runs may share that database, so
//! every name here is unique to this run, and the projection only looks at
//! this run's stream type.

use pg_eventsource_integration::{append, append_batch, connect, describe, wait_until};
use postgres::Client;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DB: &str = "es_worker";
/// The `backend_type` of the worker in pg_stat_activity.
const WORKER_TYPE: &str = "pg_eventsource projections";
const WAIT: Duration = Duration::from_secs(30);

fn ok<T>(what: &str, r: Result<T, postgres::Error>) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {}", describe(&e)))
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

#[test]
fn worker_catches_up_async_projection_without_client_calls() {
    // Connect to the maintenance database first: whether the worker can run
    // at all does not depend on es_worker existing.
    let mut admin = connect("postgres");
    if !preloaded(&mut admin) {
        println!(
            "SKIPPED background_worker: the server was not started with \
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
        dbs.split(',').any(|d| d.trim() == DB),
        "pg_eventsource is preloaded but es.worker_databases = {dbs:?} does not name {DB}: \
         start the server with -c es.worker_databases={DB}"
    );
    let exists: bool = ok(
        "pg_database",
        admin.query_one(
            "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)",
            &[&DB],
        ),
    )
    .get(0);
    assert!(
        exists,
        "database {DB} does not exist: the test scripts create it after starting the server"
    );

    let mut c = connect(DB);
    ok(
        "CREATE EXTENSION",
        c.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_eventsource"),
    );
    assert!(
        wait_until(WAIT, || {
            ok(
                "pg_stat_activity",
                c.query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = $1 AND datname = $2",
                    &[&WORKER_TYPE, &DB],
                ),
            )
            .get::<_, i64>(0)
                >= 1
        }),
        "no background worker of type {WORKER_TYPE:?} is connected to {DB} (pg_stat_activity); \
         see the server log"
    );

    // Unique to this run.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let tag = format!("bgw{}x{}", std::process::id(), nanos % 1_000_000_000_000);
    let table = format!("public.{tag}_seen");
    let handler = format!("public.{tag}_record");
    let projection = format!("{tag}_projection");
    let stream_type = tag.clone();
    ok(
        "read model and handler",
        c.batch_execute(&format!(
            "CREATE TABLE {table} (
                 global_position bigint PRIMARY KEY,
                 stream_id       text   NOT NULL,
                 version         bigint NOT NULL,
                 backend_type    text,
                 repeats         integer NOT NULL DEFAULT 0
             );
             CREATE FUNCTION {handler}(e es.events) RETURNS void LANGUAGE sql AS $$
                 INSERT INTO {table} AS s (global_position, stream_id, version, backend_type)
                 VALUES (e.global_position, e.stream_id, e.version,
                         (SELECT a.backend_type FROM pg_catalog.pg_stat_activity a
                           WHERE a.pid = pg_catalog.pg_backend_pid()))
                 ON CONFLICT (global_position) DO UPDATE SET repeats = s.repeats + 1
             $$;"
        )),
    );
    ok(
        "es.create_projection",
        c.execute(
            "SELECT es.create_projection($1, $2::text::regprocedure, mode => 'async',
                                         stream_types => ARRAY[$3::text])",
            &[&projection, &format!("{handler}(es.events)"), &stream_type],
        ),
    );

    // Appends: singles, a batch, and a transaction with several appends.
    let mut expected = 0i64;
    for s in 0..4 {
        let stream = format!("{stream_type}-{s}");
        for v in 0..5 {
            ok(
                "append",
                append(
                    &mut c,
                    &stream,
                    "Ticked",
                    &format!(r#"{{"v": {v}}}"#),
                    Some(v),
                ),
            );
            expected += 1;
        }
        ok(
            "append_events",
            append_batch(
                &mut c,
                &stream,
                r#"[{"type": "Tocked", "data": 1}, {"type": "Tocked", "data": 2}, {"type": "Tocked", "data": 3}]"#,
                Some(5),
            ),
        );
        expected += 3;
    }
    ok("BEGIN", c.batch_execute("BEGIN"));
    for s in 0..4 {
        ok(
            "append in a transaction",
            append(
                &mut c,
                &format!("{stream_type}-{s}"),
                "Closed",
                "{}",
                Some(8),
            ),
        );
        expected += 1;
    }
    ok("COMMIT", c.batch_execute("COMMIT"));

    // No es.run_projection from here on: wait for the worker.
    let mut last = (0i64, -1i64, String::new(), None::<String>);
    let caught_up = wait_until(WAIT, || {
        let r = ok(
            "progress",
            c.query_one(
                &format!(
                    "SELECT (SELECT count(*) FROM {table}), p.lag, p.status, p.last_error
                       FROM es.projections p WHERE p.name = $1"
                ),
                &[&projection],
            ),
        );
        last = (r.get(0), r.get(1), r.get(2), r.get(3));
        last.0 == expected && last.1 == 0
    });
    assert!(
        caught_up,
        "the worker did not catch the projection up within {} s: {} of {expected} events in the \
         read model, lag {}, status {} (last_error {:?}); is the worker running in {DB}? see the \
         server log",
        WAIT.as_secs(),
        last.0,
        last.1,
        last.2,
        last.3
    );
    assert_eq!(last.2, "running", "projection status ({:?})", last.3);

    // Exactly the run's events, once each, handled by the worker.
    let row = ok(
        "comparison",
        c.query_one(
            &format!(
                "SELECT
                   (SELECT count(*) FROM es.events e WHERE e.stream_type = $1
                      AND NOT EXISTS (SELECT FROM {table} s WHERE s.global_position = e.global_position
                                        AND s.stream_id = e.stream_id AND s.version = e.version)),
                   (SELECT count(*) FROM {table} s WHERE NOT EXISTS
                      (SELECT FROM es.events e WHERE e.global_position = s.global_position
                         AND e.stream_type = $1)),
                   (SELECT count(*) FROM {table} WHERE repeats > 0),
                   (SELECT array_agg(DISTINCT coalesce(backend_type, '?')) FROM {table}),
                   (SELECT position FROM es.projections WHERE name = $2),
                   (SELECT max(global_position) FROM es.events WHERE stream_type = $1)"
            ),
            &[&stream_type, &projection],
        ),
    );
    let (missing, extra, repeated): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    let handled_by: Vec<String> = row.get(3);
    let (position, max_position): (i64, i64) = (row.get(4), row.get(5));
    assert_eq!(missing, 0, "events of the run missing from the read model");
    assert_eq!(extra, 0, "read-model rows for no event of the run");
    assert_eq!(repeated, 0, "events handled more than once");
    assert_eq!(
        position, max_position,
        "the projection's position is not the run's last event"
    );
    assert_eq!(
        handled_by,
        vec![WORKER_TYPE.to_string()],
        "the events were handled by backends other than the worker"
    );
    // What the worker wrote reaches the table's statistics while it runs
    // (autovacuum decides from them): it reports them at most once a second.
    let mut counted = 0i64;
    let reported = wait_until(WAIT, || {
        counted = ok(
            "pg_stat_user_tables",
            c.query_one(
                "SELECT coalesce(sum(n_tup_ins), 0)::bigint FROM pg_catalog.pg_stat_user_tables
                  WHERE relid = $1::text::regclass",
                &[&table],
            ),
        )
        .get(0);
        counted == expected
    });
    assert!(
        reported,
        "pg_stat_user_tables counts {counted} rows inserted into the read model, not the \
         {expected} the worker wrote: the worker does not report its statistics"
    );
    println!("the worker handled {expected} events of projection {projection}");

    // Leave the shared database as it was (the events stay: they are append-only).
    ok(
        "clean up",
        c.batch_execute(&format!(
            "SELECT es.drop_projection('{projection}'); DROP FUNCTION {handler}(es.events); DROP TABLE {table};"
        )),
    );
}
