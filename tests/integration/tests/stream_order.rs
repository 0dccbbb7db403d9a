//! A stream's events keep their version order in the global order even when
//! the later version's transaction took its id first: B writes elsewhere
//! (taking its transaction id), then waits for the stream behind A, which
//! appended and commits first. B's event must still come after A's in
//! `es.read_all`, because readers such as projections and consumer groups
//! rely on each stream arriving in version order.

use pg_eventsource_integration::{backend_pid, is_waiting_for_lock, wait_until, TestDb};
use std::thread;
use std::time::Duration;

fn positions(c: &mut postgres::Client, stream: &str) -> Vec<(i64, i64)> {
    c.query(
        "SELECT version, global_position FROM es.events WHERE stream_id = $1 ORDER BY version",
        &[&stream],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

fn check(single: bool) {
    let db = TestDb::create(if single {
        "stream_order_one"
    } else {
        "stream_order_batch"
    });
    let mut a = db.connect();
    let mut b = db.connect();
    let mut observer = db.connect();
    let append = move |c: &mut postgres::Client, stream: &str| {
        if single {
            c.execute("SELECT es.append_event($1, 'E', '{}')", &[&stream])
                .unwrap();
        } else {
            c.execute(
                "SELECT es.append_events($1, '[{\"type\": \"E\", \"data\": 1}, {\"type\": \"E\", \"data\": 2}]')",
                &[&stream],
            )
            .unwrap();
        }
    };
    append(&mut observer, "shared-1");

    // B takes its transaction id first.
    b.batch_execute("BEGIN").unwrap();
    append(&mut b, "elsewhere-1");
    // A, younger, appends to the shared stream and holds its row.
    a.batch_execute("BEGIN").unwrap();
    append(&mut a, "shared-1");
    let b_pid = backend_pid(&mut b);
    let waiter = thread::spawn(move || {
        append(&mut b, "shared-1");
        b.batch_execute("COMMIT").unwrap();
    });
    assert!(
        wait_until(Duration::from_secs(30), || is_waiting_for_lock(
            &mut observer,
            b_pid
        )),
        "B never waited for the stream's row"
    );
    a.batch_execute("COMMIT").unwrap();
    waiter.join().unwrap();

    let got = positions(&mut observer, "shared-1");
    let per = if single { 1 } else { 2 };
    assert_eq!(got.len(), 3 * per, "versions: {got:?}");
    for w in got.windows(2) {
        assert!(
            w[0].1 < w[1].1,
            "version {} has position {} but version {} has the lower position {}: {got:?}",
            w[0].0,
            w[0].1,
            w[1].0,
            w[1].1
        );
    }
    // and es.read_all hands the stream out in version order, once the
    // horizon has passed it (other tests may hold transactions open)
    let expected: Vec<i64> = (1..=(3 * per) as i64).collect();
    let mut read: Vec<i64> = Vec::new();
    let all_visible = wait_until(Duration::from_secs(60), || {
        read = observer
            .query(
                "SELECT version FROM es.read_all(0, 1000) WHERE stream_id = 'shared-1'",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        read.len() == expected.len()
    });
    assert!(all_visible, "es.read_all handed out only {read:?}");
    assert_eq!(read, expected);
}

#[test]
fn a_later_version_gets_a_later_position_single_appends() {
    check(true);
}

#[test]
fn a_later_version_gets_a_later_position_batches() {
    check(false);
}
