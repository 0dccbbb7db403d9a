//! On a hot standby (a streaming replica made with pg_basebackup from the
//! cluster under test) everything that only reads works and, once the
//! replica has replayed the primary's WAL, gives the primary's answers:
//! es.read_stream, es.read_all, es.load, es.load_at, es.fold, es.stats() and
//! es.verify('quick'). Appends there fail with PostgreSQL's read-only error.

use pg_eventsource_integration::{describe, host, port, wait_until, Standby, TestDb};
use postgres::Client;
use std::time::Duration;

/// The standby's port: `ES_STANDBY_PGPORT`, default 28817.
fn standby_port() -> u16 {
    std::env::var("ES_STANDBY_PGPORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(28817)
}

fn text(c: &mut Client, sql: &str) -> String {
    c.query_one(&format!("SELECT ({sql})::text"), &[])
        .unwrap_or_else(|e| panic!("{sql}: {}", describe(&e)))
        .get::<_, Option<String>>(0)
        .unwrap_or_default()
}

/// What the test compares between primary and standby.
const READS: &[&str] = &[
    "SELECT string_agg(version || ':' || event_type || ':' || data::text, ',' ORDER BY version) FROM es.read_stream('acct-1')",
    "SELECT count(*) || '/' || sum(global_position) FROM es.read_all(0, 100000)",
    "SELECT string_agg(l.stream_id || '@' || l.version || '=' || l.state::text, ';' ORDER BY l.stream_id) FROM es.streams s, es.load(s.stream_id) l",
    "SELECT state::text || '@' || version FROM es.load('acct-1', 7)",
    "SELECT state::text || '@' || version FROM es.load_at('acct-2', now())",
    "SELECT string_agg(stream_id || '=' || f::text, ';' ORDER BY stream_id) FROM (SELECT stream_id, es.fold(e ORDER BY version) f FROM es.events e GROUP BY stream_id) s",
    "SELECT es.stats() - 'horizon'",
    "SELECT count(*) FROM es.verify('quick')",
];

#[test]
fn reads_loads_and_checks_work_on_a_hot_standby() {
    let db = TestDb::create("hot_standby");
    let mut primary = db.connect();
    primary
        .batch_execute(
            "SELECT es.define_aggregate('acct', reducers => '{
                 \"Deposited\": [{\"add\": \"balance\", \"from\": \"$.amount\"}, {\"inc\": \"n\"}],
                 \"Withdrawn\": [{\"sub\": \"balance\", \"from\": \"$.amount\"}, {\"inc\": \"n\"}]}',
               initial_state => '{\"balance\": 0}', snapshot_every => 4);
             SELECT es.append_event('acct-' || (i % 3), CASE WHEN i % 4 = 0 THEN 'Withdrawn' ELSE 'Deposited' END,
                                    jsonb_build_object('amount', i * 0.25))
               FROM generate_series(1, 40) i;",
        )
        .unwrap();
    assert!(
        text(&mut primary, "SELECT count(*) FROM es.snapshots")
            .parse::<i64>()
            .unwrap()
            > 0,
        "the primary should have snapshots for the standby to use"
    );

    let standby = Standby::start("standby", &host(), port(), standby_port());
    let mut replica = standby.connect(&db.name);
    // One more append after the base backup, so it must arrive by streaming.
    primary
        .batch_execute("SELECT es.append_event('acct-1', 'Deposited', '{\"amount\": 1000}')")
        .unwrap();
    let target = text(&mut primary, "SELECT pg_current_wal_lsn()");
    assert!(
        wait_until(Duration::from_secs(60), || {
            text(
                &mut replica,
                &format!("SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"),
            ) == "true"
        }),
        "the standby did not replay up to {target}"
    );
    assert_eq!(text(&mut replica, "SELECT pg_is_in_recovery()"), "true");

    for sql in READS {
        // es.read_all's horizon on the standby follows the primary's running
        // transactions as replayed; give it a moment to agree.
        let mut last = (String::new(), String::new());
        let same = wait_until(Duration::from_secs(30), || {
            last = (text(&mut primary, sql), text(&mut replica, sql));
            last.0 == last.1
        });
        assert!(same, "{sql}\n primary: {}\n standby: {}", last.0, last.1);
        assert!(!last.0.is_empty(), "{sql} gave nothing");
    }
    assert_eq!(
        text(&mut replica, "SELECT count(*) FROM es.verify('quick')"),
        "0"
    );

    let err = replica
        .execute(
            "SELECT es.append_event('acct-1', 'Deposited', '{\"amount\": 1}')",
            &[],
        )
        .expect_err("an append on a standby must fail");
    assert_eq!(
        err.code().map(|c| c.code()),
        Some("25006"),
        "expected read_only_sql_transaction, got {}",
        describe(&err)
    );
}
