//! What user code must not cost others: memory that stays with the backend
//! after each catch-up batch or cache reload, and error details that carry
//! a Rust backtrace to the client.

use pg_eventsource_integration::{describe, TestDb, ThrowawayCluster};
use postgres::Client;

fn ok<T>(what: &str, r: Result<T, postgres::Error>) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {}", describe(&e)))
}

/// The backend's memory in all its contexts, in bytes (no timing involved).
fn backend_memory(c: &mut Client) -> i64 {
    ok(
        "pg_backend_memory_contexts",
        c.query_one(
            "SELECT sum(total_bytes)::bigint FROM pg_backend_memory_contexts",
            &[],
        ),
    )
    .get(0)
}

/// 2,000 catch-up batches with a SQL-language handler, then 2,000 reloads
/// of the inline cache each followed by a call of a SQL-language inline
/// handler: the backend's memory stays flat (it grew by about 32 kB per
/// batch and per reload when each handler's call information lived in
/// TopMemoryContext).
#[test]
fn catch_up_batches_and_cache_reloads_keep_memory_flat() {
    let db = TestDb::create("sec_memory");
    let mut c = db.connect();
    ok(
        "setup",
        c.batch_execute(
            "CREATE TABLE seen (n bigint);
             CREATE FUNCTION record_event(e es.events) RETURNS void LANGUAGE sql AS
                 $$ INSERT INTO seen VALUES (e.version) $$;
             CREATE FUNCTION inline_event(e es.events) RETURNS void LANGUAGE sql AS
                 $$ INSERT INTO seen VALUES (-e.version) $$;
             CREATE FUNCTION unrelated() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;
             SELECT es.create_projection('async_sql', 'record_event(es.events)', 'async',
                                         event_types => ARRAY['Counted']);
             SELECT es.create_projection('inline_sql', 'inline_event(es.events)', 'inline',
                                         event_types => ARRAY['Inline']);
             SELECT es.append_events('counter-1',
                 (SELECT jsonb_agg(jsonb_build_object('type', 'Counted', 'data', jsonb_build_object('i', i)))
                    FROM generate_series(1, 2300) i));",
        ),
    );
    // One catch-up batch of one event per call; the first 200 warm caches up.
    let batches = |c: &mut Client, n: i32| {
        ok(
            "catch-up batches",
            c.execute(
                "DO $$ BEGIN FOR i IN 1..$1 LOOP PERFORM es.run_projection('async_sql', 1); END LOOP; END $$"
                    .replace("$1", &n.to_string())
                    .as_str(),
                &[],
            ),
        );
    };
    batches(&mut c, 200);
    let before = backend_memory(&mut c);
    batches(&mut c, 2000);
    let after = backend_memory(&mut c);
    let handled: i64 = ok(
        "handled",
        c.query_one("SELECT count(*) FROM seen WHERE n > 0", &[]),
    )
    .get(0);
    assert_eq!(handled, 2200);
    assert!(
        after - before < 1024 * 1024,
        "2,000 catch-up batches grew the backend's memory by {} bytes ({before} -> {after})",
        after - before
    );

    // Each CREATE OR REPLACE FUNCTION drops the inline cache (any function
    // may be a handler); the append that follows reloads it and calls the
    // SQL handler once.
    let reloads = |c: &mut Client, n: i32| {
        ok(
            "reloads",
            c.execute(
                "DO $$ BEGIN FOR i IN 1..$1 LOOP
                     EXECUTE format('CREATE OR REPLACE FUNCTION unrelated() RETURNS int LANGUAGE sql AS %L', 'SELECT ' || i);
                     PERFORM es.append_event('inline-1', 'Inline', '{}');
                 END LOOP; END $$"
                    .replace("$1", &n.to_string())
                    .as_str(),
                &[],
            ),
        );
    };
    reloads(&mut c, 200);
    let before = backend_memory(&mut c);
    reloads(&mut c, 2000);
    let after = backend_memory(&mut c);
    let handled: i64 = ok(
        "handled",
        c.query_one("SELECT count(*) FROM seen WHERE n < 0", &[]),
    )
    .get(0);
    assert_eq!(handled, 2200);
    assert!(
        after - before < 1024 * 1024,
        "2,000 inline cache reloads grew the backend's memory by {} bytes ({before} -> {after})",
        after - before
    );
}

/// A throwaway cluster started with RUST_BACKTRACE=1 in its environment
/// (as a developer's shell, or a service manager, may have it).
fn backtrace_cluster() -> ThrowawayCluster {
    ThrowawayCluster::create(
        "backtrace-cluster",
        "ES_BACKTRACE_PGPORT",
        28820,
        "",
        &["RUST_BACKTRACE=1"],
    )
}

/// Reproduction 8: error details sent to clients carried a Rust backtrace
/// when the server ran with RUST_BACKTRACE set. Errors that pass through
/// the extension's Rust code: its own (a wrong expected version), and a
/// user's (an inline handler that raises).
#[test]
fn error_details_carry_no_rust_backtrace() {
    let cluster = backtrace_cluster();
    let mut c = cluster.connect("postgres");
    ok(
        "setup",
        c.batch_execute(
            "CREATE EXTENSION pg_eventsource;
             CREATE FUNCTION fails(e es.events) RETURNS void LANGUAGE plpgsql AS
                 $$ BEGIN RAISE EXCEPTION 'handler refuses' USING DETAIL = 'its own detail'; END $$;
             SELECT es.create_projection('fails', 'fails(es.events)', 'inline', ARRAY['Refused']);
             SELECT es.append_event('acct-1', 'Opened', '{}');",
        ),
    );
    let errors = [
        c.batch_execute("SELECT es.append_event('acct-1', 'Opened', '{}', expected_version => 7)")
            .expect_err("a wrong expected version"),
        c.batch_execute("SELECT es.append_event('acct-1', 'Refused', '{}')")
            .expect_err("a handler that raises"),
        c.batch_execute("SELECT es.fold(ROW(1, 'a-1', NULL, 1, 'x', '{}', '{}', gen_random_uuid(), now(), 1)::es.events)")
            .expect_err("a NULL field"),
    ];
    for e in &errors {
        let db = e.as_db_error().expect("a server error");
        let text = format!(
            "{} {} {}",
            db.message(),
            db.detail().unwrap_or(""),
            db.hint().unwrap_or("")
        );
        for marker in ["backtrace", "pgrx", "rust_begin_unwind", ".rs:", "  0: "] {
            assert!(
                !text.contains(marker),
                "an error sent to the client carries a Rust backtrace ({marker:?}): {text}"
            );
        }
    }
    assert_eq!(
        errors[1].as_db_error().and_then(|d| d.detail()),
        Some("its own detail"),
        "the handler's own detail must reach the client unchanged"
    );
}
