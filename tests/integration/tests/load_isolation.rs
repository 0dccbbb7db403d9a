//! es.load and the snapshot trigger read a stream's row, snapshots and events
//! straight from the indexes, with the transaction's snapshot: under
//! REPEATABLE READ a load keeps seeing what the transaction saw first while
//! other sessions commit, and sees the transaction's own appends; under READ
//! COMMITTED each statement sees what committed before it. Snapshots taken
//! inside either kind of transaction hold the fold of the events before them.

use pg_eventsource_integration::{append, describe, exec, TestDb};
use postgres::Client;

/// "version balance" of es.load(stream).
fn load(c: &mut Client, stream: &str) -> String {
    let row = c
        .query_one(
            "SELECT version::text || ' ' || coalesce(state->>'balance', '-') FROM es.load($1)",
            &[&stream],
        )
        .unwrap_or_else(|e| panic!("es.load({stream}): {}", describe(&e)));
    row.get(0)
}

fn deposit(c: &mut Client, stream: &str, amount: i64) -> i64 {
    append(
        c,
        stream,
        "Deposited",
        &format!(r#"{{"amount": {amount}}}"#),
        None,
    )
    .unwrap_or_else(|e| panic!("deposit to {stream}: {}", describe(&e)))
}

/// Snapshots whose state is not the fold of the events up to their version.
fn wrong_snapshots(c: &mut Client) -> i64 {
    c.query_one(
        "SELECT count(*) FROM es.snapshots s
          WHERE s.state IS DISTINCT FROM (SELECT es.fold(e ORDER BY e.version) FROM es.events e
                                           WHERE e.stream_id = s.stream_id AND e.version <= s.version)",
        &[],
    )
    .unwrap()
    .get(0)
}

/// Streams of type `acct` fold `Deposited` amounts into a balance, with a
/// snapshot every 2 events.
fn define_accounts(c: &mut Client) {
    exec(
        c,
        r#"SELECT es.define_aggregate('acct',
               reducers => '{"Deposited": [{"add": "balance", "from": "$.amount"}]}',
               initial_state => '{"balance": 0}', snapshot_every => 2)"#,
    );
}

#[test]
fn loads_and_snapshots_read_what_the_transaction_sees() {
    let db = TestDb::create_warm("load_isolation");
    let mut a = db.connect();
    let mut b = db.connect();
    define_accounts(&mut a);
    deposit(&mut a, "acct-1", 1);
    assert_eq!(load(&mut a, "acct-1"), "1 1");

    // REPEATABLE READ: the first load fixes what the transaction sees
    exec(&mut a, "BEGIN ISOLATION LEVEL REPEATABLE READ");
    assert_eq!(load(&mut a, "acct-1"), "1 1");
    for amount in [10, 100, 1000] {
        deposit(&mut b, "acct-1", amount);
    }
    assert_eq!(
        load(&mut b, "acct-1"),
        "4 1111",
        "the other session sees its commits"
    );
    assert_eq!(
        load(&mut a, "acct-1"),
        "1 1",
        "snapshots at 2 and 4 and events 2-4 committed after the transaction's snapshot"
    );
    // the transaction's own appends: snapshots taken in it, and its loads, see them
    deposit(&mut a, "acct-2", 5);
    deposit(&mut a, "acct-2", 7);
    deposit(&mut a, "acct-2", 11);
    assert_eq!(load(&mut a, "acct-2"), "3 23");
    assert_eq!(load(&mut b, "acct-2"), "0 0", "not committed yet");
    // an append to the stream the other session moved is refused
    let e = append(&mut a, "acct-1", "Deposited", r#"{"amount": 1}"#, None)
        .expect_err("a write to a stream changed since the transaction's snapshot");
    assert_eq!(
        e.code().map(|c| c.code().to_owned()).unwrap_or_default(),
        "40001",
        "{}",
        describe(&e)
    );
    exec(&mut a, "ROLLBACK");

    exec(&mut a, "BEGIN ISOLATION LEVEL REPEATABLE READ");
    deposit(&mut a, "acct-2", 5);
    deposit(&mut a, "acct-2", 7);
    assert_eq!(load(&mut a, "acct-2"), "2 12");
    exec(&mut a, "COMMIT");

    // READ COMMITTED: each statement sees the commits before it
    exec(&mut a, "BEGIN");
    assert_eq!(load(&mut a, "acct-1"), "4 1111");
    deposit(&mut b, "acct-1", 10000);
    assert_eq!(load(&mut a, "acct-1"), "5 11111");
    deposit(&mut a, "acct-1", 100000); // version 6: a snapshot, folded in this transaction
    assert_eq!(load(&mut a, "acct-1"), "6 111111");
    exec(&mut a, "COMMIT");

    assert_eq!(load(&mut b, "acct-1"), "6 111111");
    assert_eq!(load(&mut b, "acct-2"), "2 12");
    assert_eq!(
        a.query_one(
            "SELECT string_agg(stream_id || '@' || version, ',' ORDER BY stream_id, version) FROM es.snapshots",
            &[]
        )
        .unwrap()
        .get::<_, String>(0),
        "acct-1@2,acct-1@4,acct-1@6,acct-2@2"
    );
    assert_eq!(wrong_snapshots(&mut a), 0);
}

/// The reads from the indexes check that an index is the one they were
/// written for (a btree over the named columns, in key order); an index
/// rebuilt by hand with its columns in another order makes them read by query.
#[test]
fn loads_stay_right_when_an_index_was_rebuilt_by_hand() {
    let db = TestDb::create_warm("load_index_changed");
    let mut a = db.connect();
    define_accounts(&mut a);
    for amount in [1, 2, 4, 8, 16] {
        deposit(&mut a, "acct-1", amount);
    }
    assert_eq!(load(&mut a, "acct-1"), "5 31");
    exec(
        &mut a,
        "ALTER TABLE es.snapshots DROP CONSTRAINT snapshots_pkey;
         ALTER TABLE es.snapshots ADD CONSTRAINT snapshots_pkey PRIMARY KEY (stream_id, version, revision);
         ALTER TABLE es.events DROP CONSTRAINT events_stream_version_key;
         ALTER TABLE es.events ADD CONSTRAINT events_stream_version_key UNIQUE (version, stream_id);",
    );
    assert_eq!(load(&mut a, "acct-1"), "5 31");
    let at = |c: &mut Client, v: i64| -> String {
        c.query_one(
            "SELECT version::text || ' ' || (state->>'balance') FROM es.load('acct-1', $1)",
            &[&v],
        )
        .unwrap_or_else(|e| panic!("es.load at {v}: {}", describe(&e)))
        .get(0)
    };
    assert_eq!(at(&mut a, 3), "3 7");
    assert_eq!(at(&mut a, 4), "4 15");
    deposit(&mut a, "acct-1", 32); // a snapshot at 6, folded with the rebuilt indexes
    assert_eq!(load(&mut a, "acct-1"), "6 63");
    assert_eq!(wrong_snapshots(&mut a), 0);
}
