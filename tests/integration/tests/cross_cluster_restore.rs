//! A dump restored into another cluster, whose transaction ids are lower than
//! the source's: `es.read_all` hands out every restored event before anything
//! is appended there, and what is appended there afterwards gets positions
//! above every restored one, so a consumer's stored position from the source
//! cluster never skips it.

use pg_eventsource_integration::{
    one_i64, pg_bin_dir, read_all_until, run_command as run, TestDb, ThrowawayCluster,
};
use std::process::Command;
use std::time::Duration;

/// A throwaway second cluster (its own initdb, so its own system identifier
/// and a low transaction counter).
fn second_cluster() -> ThrowawayCluster {
    ThrowawayCluster::create("second-cluster", "ES_SECOND_PGPORT", 28816, "", &[])
}

#[test]
fn restore_into_another_cluster_keeps_the_global_order_going() {
    let source = TestDb::create("xcluster_source");
    let mut src = source.connect();
    // Make sure the source's transaction ids are well above a new cluster's.
    src.batch_execute(
        "DO $$ BEGIN FOR i IN 1..3000 LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$",
    )
    .unwrap();
    for i in 0..20 {
        src.query_one(
            "SELECT es.append_event($1, 'Deposited', jsonb_build_object('i', $2::int))",
            &[&format!("acct-{}", i % 4), &i],
        )
        .unwrap();
    }
    let source_last = one_i64(&mut src, "SELECT max(global_position) FROM es.events");
    let source_events = read_all_until(&mut src, 0, 20, Duration::from_secs(60));
    assert_eq!(source_events.len(), 20);

    let second = second_cluster();
    let mut admin = second.connect("postgres");
    admin.batch_execute("CREATE DATABASE restored").unwrap();
    let target_xid = one_i64(&mut admin, "SELECT txid_current()");
    assert!(
        (target_xid << 20) < source_last,
        "the second cluster's ids ({target_xid}) must start below the source's positions"
    );

    let bin = pg_bin_dir();
    run(Command::new("bash").arg("-c").arg(format!(
        "set -o pipefail; {bin}/pg_dump -h 127.0.0.1 -p {} -U postgres -d {} \
         | {bin}/psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p {} -U postgres -d restored",
        pg_eventsource_integration::port(),
        source.name,
        second.port
    )));

    let mut dst = second.connect("restored");
    // Before anything is appended here, every restored event is handed out.
    let restored: Vec<i64> = dst
        .query("SELECT global_position FROM es.read_all(0, NULL)", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let expected: Vec<i64> = source_events.iter().map(|e| e.global_position).collect();
    assert_eq!(restored, expected, "restored events, in the source's order");

    // A consumer that had read everything in the source resumes from there.
    let v = one_i64(
        &mut dst,
        "SELECT es.append_event('acct-0', 'Deposited', '{\"i\": 99}', 5)",
    );
    assert_eq!(v, 6);
    let new_pos = one_i64(
        &mut dst,
        "SELECT global_position FROM es.events WHERE stream_id = 'acct-0' AND version = 6",
    );
    assert!(
        new_pos > source_last,
        "a new append ({new_pos}) must come after every restored event ({source_last})"
    );
    let after: Vec<(i64, String)> = dst
        .query(
            "SELECT global_position, stream_id FROM es.read_all($1, NULL)",
            &[&source_last],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(after, vec![(new_pos, "acct-0".to_string())]);
    // and the offset is recorded, so later appends agree
    assert_eq!(
        one_i64(
            &mut dst,
            "SELECT count(*) FROM es.position_base WHERE system_identifier = es._system_identifier() AND NOT restored_foreign AND xid_offset > 0"
        ),
        1
    );
    let next = one_i64(&mut dst, "SELECT es.append_event('acct-9', 'Opened', '{}')");
    assert_eq!(next, 1);
    assert!(
        one_i64(
            &mut dst,
            "SELECT global_position FROM es.events WHERE stream_id = 'acct-9'"
        ) > new_pos
    );
}
