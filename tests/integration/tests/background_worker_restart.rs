//! The background worker comes back after it is terminated while the server
//! keeps running (`pg_terminate_backend`, or `DROP DATABASE ... WITH (FORCE)`
//! of its database), and then catches projections up again.
//!
//! A separate test binary from `background_worker.rs`, so that killing the
//! worker here never races that test (cargo runs test binaries one by one).

use pg_eventsource_integration::{append_batch, connect, describe, wait_until};
use postgres::Client;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DB: &str = "es_worker";
const WORKER_TYPE: &str = "pg_eventsource projections";

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

fn worker_pids(c: &mut Client) -> Vec<i32> {
    ok(
        "pg_stat_activity",
        c.query(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = $1 AND datname = $2",
            &[&WORKER_TYPE, &DB],
        ),
    )
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[test]
fn worker_restarts_after_being_terminated() {
    let mut admin = connect("postgres");
    if !preloaded(&mut admin) {
        println!(
            "SKIPPED background_worker_restart: the server was not started with \
             shared_preload_libraries=pg_eventsource, so there is no worker to test"
        );
        return;
    }
    let mut c = connect(DB);
    ok(
        "CREATE EXTENSION",
        c.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_eventsource"),
    );
    let mut before = Vec::new();
    assert!(
        wait_until(Duration::from_secs(30), || {
            before = worker_pids(&mut c);
            !before.is_empty()
        }),
        "no background worker of type {WORKER_TYPE:?} is connected to {DB}; see the server log"
    );
    for pid in &before {
        let done: bool = ok(
            "pg_terminate_backend",
            admin.query_one("SELECT pg_terminate_backend($1)", &[pid]),
        )
        .get(0);
        assert!(done, "pg_terminate_backend({pid}) returned false");
    }
    // The worker asks to be restarted 5 s after it ends; allow a minute.
    let mut after = Vec::new();
    let back = wait_until(Duration::from_secs(60), || {
        after = worker_pids(&mut c);
        after.iter().any(|p| !before.contains(p))
    });
    assert!(
        back,
        "the worker (pid {before:?}) was terminated and no new worker connected to {DB} within \
         60 s: it exits with code 0 on SIGTERM, so the postmaster never restarts it (it should \
         exit with code 1 unless the server is shutting down)"
    );

    // The new worker does the work.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let tag = format!("bgr{}x{}", std::process::id(), nanos % 1_000_000_000_000);
    let (table, handler, projection) = (
        format!("public.{tag}_seen"),
        format!("public.{tag}_record"),
        format!("{tag}_projection"),
    );
    ok(
        "read model and handler",
        c.batch_execute(&format!(
            "CREATE TABLE {table} (global_position bigint PRIMARY KEY);
             CREATE FUNCTION {handler}(e es.events) RETURNS void LANGUAGE sql AS $$
                 INSERT INTO {table} VALUES (e.global_position)
             $$;"
        )),
    );
    ok(
        "es.create_projection",
        c.execute(
            "SELECT es.create_projection($1, $2::text::regprocedure, mode => 'async',
                                         stream_types => ARRAY[$3::text])",
            &[&projection, &format!("{handler}(es.events)"), &tag],
        ),
    );
    ok(
        "append_events",
        append_batch(
            &mut c,
            &format!("{tag}-1"),
            r#"[{"type": "A", "data": 1}, {"type": "B", "data": 2}, {"type": "C", "data": 3}]"#,
            Some(0),
        ),
    );
    let mut state = (0i64, -1i64);
    assert!(
        wait_until(Duration::from_secs(30), || {
            let r = ok(
                "progress",
                c.query_one(
                    &format!(
                        "SELECT (SELECT count(*) FROM {table}), lag FROM es.projections WHERE name = $1"
                    ),
                    &[&projection],
                ),
            );
            state = (r.get(0), r.get(1));
            state == (3, 0)
        }),
        "the restarted worker did not catch the projection up within 30 s: {} of 3 events, lag {}",
        state.0,
        state.1
    );
    ok(
        "clean up",
        c.batch_execute(&format!(
            "SELECT es.drop_projection('{projection}'); DROP FUNCTION {handler}(es.events); DROP TABLE {table};"
        )),
    );
}
