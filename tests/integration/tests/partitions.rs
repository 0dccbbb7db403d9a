//! Partitions behind a router (router/, `pg_eventsource_router` over
//! PL/Proxy): four partition databases, each an ordinary pg_eventsource
//! database holding four of sixteen logical partitions, and a router
//! database in front of them, all in the cluster under test. Streams land
//! wholly in their partition; errors keep their SQLSTATE; a writing call that
//! a ROLLBACK could not undo is refused before anything is written; racing
//! commands stay correct; a partition that is down fails only its own
//! streams; definitions reach every partition. The split procedure
//! (docs/partitions.md) runs on a throwaway cluster of its own and a
//! promoted hot standby of it (ports `ES_SPLIT_PGPORT`, default 28827, and
//! one above).

use pg_eventsource_integration::{
    code_of, connect, create_empty_database, describe, drop_database, dump_and_restore, exec, host,
    one_i64, port, wait_until, Standby, TestDb, ThrowawayCluster,
};
use postgres::Client;
use std::collections::{BTreeMap, BTreeSet};
use std::thread;
use std::time::Duration;

const LOGICAL: i32 = 16;
const DATABASES: usize = 4;

/// A router over four partition databases of the cluster under test.
struct Partitioned {
    router: String,
    parts: Vec<TestDb>,
}

fn connstr(db: &str) -> String {
    format!("host={} port={} dbname={db}", host(), port())
}

impl Partitioned {
    fn create(name: &str) -> Partitioned {
        let parts: Vec<TestDb> = (0..DATABASES)
            .map(|i| TestDb::create(&format!("{name}_p{i}")))
            .collect();
        let router = format!("es_it_{name}_router");
        create_empty_database(&router);
        let mut r = connect(&router);
        exec(
            &mut r,
            "SET client_min_messages = warning; CREATE EXTENSION pg_eventsource_router CASCADE",
        );
        // logical partition p lives in database p % 4
        let connstrs: Vec<String> = (0..LOGICAL as usize)
            .map(|p| connstr(&parts[p % DATABASES].name))
            .collect();
        r.execute("SELECT es.configure_partitions($1)", &[&connstrs])
            .unwrap_or_else(|e| panic!("es.configure_partitions: {}", describe(&e)));
        Partitioned { router, parts }
    }

    fn router(&self) -> Client {
        let mut c = connect(&self.router);
        // PL/Proxy says NOTICE when it replaces a connection after an error
        exec(&mut c, "SET client_min_messages = warning");
        c
    }

    /// The database that holds logical partition `p`.
    fn part_of(&self, p: i32) -> &TestDb {
        &self.parts[p as usize % DATABASES]
    }
}

impl Drop for Partitioned {
    fn drop(&mut self) {
        if !thread::panicking() {
            drop_database(&self.router);
        }
    }
}

fn append(
    r: &mut Client,
    stream: &str,
    ty: &str,
    data: &str,
    expected: Option<i64>,
) -> Result<i64, postgres::Error> {
    r.query_one(
        "SELECT es.append_event($1, $2, $3::text::jsonb, $4)",
        &[&stream, &ty, &data, &expected],
    )
    .map(|row| row.get(0))
}

/// Every event of logical partition `p` through the router, paging by position.
fn read_partition(r: &mut Client, p: i32) -> Vec<(i64, String, i64)> {
    let mut out = Vec::new();
    let mut after = 0i64;
    loop {
        let rows = r
            .query(
                "SELECT global_position, stream_id, version FROM es.read_all($1, $2, 500)",
                &[&p, &after],
            )
            .unwrap_or_else(|e| panic!("es.read_all({p}, {after}): {}", describe(&e)));
        if rows.is_empty() {
            return out;
        }
        for row in rows {
            after = row.get(0);
            out.push((after, row.get(1), row.get(2)));
        }
    }
}

#[test]
fn appends_land_each_stream_wholly_in_its_partition() {
    let ps = Partitioned::create("part_land");
    // 10,000 appends over 1,000 streams, from four connections
    let router = ps.router.clone();
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let router = router.clone();
            thread::spawn(move || {
                let mut r = connect(&router);
                for round in 0..10 {
                    for s in (w..1000).step_by(4) {
                        let v = append(
                            &mut r,
                            &format!("acc-{s}"),
                            "Deposited",
                            &format!("{{\"round\": {round}}}"),
                            Some(round),
                        )
                        .unwrap_or_else(|e| {
                            panic!("append acc-{s} round {round}: {}", describe(&e))
                        });
                        assert_eq!(v, round + 1);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let mut r = ps.router();
    let mut total = 0;
    let mut homes: BTreeMap<String, usize> = BTreeMap::new();
    for (i, db) in ps.parts.iter().enumerate() {
        let mut c = db.connect();
        // every stream here belongs to a logical partition this database holds, whole
        let rows = c
            .query(
                "SELECT stream_id, es.partition_of(stream_id, 16), count(*), min(version), max(version)
                   FROM es.events WHERE stream_id LIKE 'acc-%' GROUP BY stream_id",
                &[],
            )
            .unwrap();
        assert!(!rows.is_empty(), "database {i} holds streams");
        for row in rows {
            let stream: String = row.get(0);
            let p: i32 = row.get(1);
            assert_eq!(
                p as usize % DATABASES,
                i,
                "{stream} (partition {p}) is in database {i}"
            );
            assert_eq!(
                (
                    row.get::<_, i64>(2),
                    row.get::<_, i64>(3),
                    row.get::<_, i64>(4)
                ),
                (10, 1, 10),
                "{stream}"
            );
            assert!(
                homes.insert(stream.clone(), i).is_none(),
                "{stream} is in two databases"
            );
            total += 10;
        }
    }
    assert_eq!(total, 10_000);
    assert_eq!(homes.len(), 1000);
    // the router's rule is the partitions' rule, and es.read_all(partition)
    // hands out every event once, each stream in version order
    let mut seen = 0;
    for p in 0..LOGICAL {
        let events = read_partition(&mut r, p);
        let mut last: BTreeMap<String, i64> = BTreeMap::new();
        for (_, stream, version) in events.iter().filter(|e| e.1.starts_with("acc-")) {
            let routed: i32 = r
                .query_one("SELECT es.partition_of($1)", &[stream])
                .unwrap()
                .get(0);
            assert_eq!(routed, p, "{stream} read from partition {p}");
            let prev = last.insert(stream.clone(), *version).unwrap_or(0);
            assert_eq!(*version, prev + 1, "{stream} in order in partition {p}");
            seen += 1;
        }
    }
    assert_eq!(seen, 10_000);
    assert_eq!(
        r.query_one("SELECT es.stream_version('acc-7')", &[])
            .unwrap()
            .get::<_, i64>(0),
        10
    );
}

#[test]
fn errors_keep_their_sqlstate_and_no_write_a_rollback_could_not_undo() {
    let ps = Partitioned::create("part_honest");
    let mut r = ps.router();
    assert_eq!(append(&mut r, "h-1", "Opened", "{}", Some(0)).unwrap(), 1);
    // a wrong expected version is 40001, as in one database
    let e = append(&mut r, "h-1", "Opened", "{}", Some(0)).unwrap_err();
    assert_eq!(code_of(&e), "40001", "{}", describe(&e));
    // the stream's own errors too: an empty stream id is 22023 there
    let e = append(&mut r, "h-2", "", "{}", None).unwrap_err();
    assert_eq!(code_of(&e), "22023", "{}", describe(&e));

    // inside BEGIN ... COMMIT: refused before anything is written
    let mut tx = r.transaction().unwrap();
    let e = tx
        .query_one("SELECT es.append_event('h-1', 'Deposited', '{}')", &[])
        .unwrap_err();
    assert_eq!(code_of(&e), "25001", "{}", describe(&e));
    assert!(
        describe(&e).contains("transaction block"),
        "{}",
        describe(&e)
    );
    drop(tx);
    let mut tx = r.transaction().unwrap();
    let e = tx
        .query_one(
            "SELECT es.append_events('h-1', '[{\"type\": \"Deposited\", \"data\": {}}]')",
            &[],
        )
        .unwrap_err();
    assert_eq!(code_of(&e), "25001", "{}", describe(&e));
    drop(tx);
    // reads in a transaction block are fine
    let mut tx = r.transaction().unwrap();
    assert_eq!(
        tx.query_one("SELECT es.stream_version('h-1')", &[])
            .unwrap()
            .get::<_, i64>(0),
        1
    );
    tx.commit().unwrap();
    assert_eq!(one_i64(&mut r, "SELECT es.stream_version('h-1')"), 1);

    // a second writing call in one statement: refused, and says the first committed
    let e = r
        .query(
            "SELECT es.append_event(s, 'Opened', '{}') FROM (VALUES ('h-3'), ('h-4')) v(s)",
            &[],
        )
        .unwrap_err();
    assert_eq!(code_of(&e), "25001", "{}", describe(&e));
    assert!(
        describe(&e).contains("already committed"),
        "{}",
        describe(&e)
    );
    assert_eq!(
        one_i64(
            &mut r,
            "SELECT es.stream_version('h-3') + es.stream_version('h-4')"
        ),
        1,
        "the first call committed, the second wrote nothing"
    );

    // several events of one stream atomically: es.append_events
    let v: i64 = r
        .query_one(
            "SELECT es.append_events('h-5', '[{\"type\": \"A\", \"data\": {}}, {\"type\": \"B\", \"data\": {}}]', 0)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(v, 2);

    // in an EXCEPTION block (a subtransaction) whether the transaction around
    // it can still be rolled back is not known: refused, nothing written
    exec(
        &mut r,
        "CREATE FUNCTION append_with_retry(s text, stale bigint) RETURNS bigint
         LANGUAGE plpgsql AS $$
         BEGIN
             BEGIN
                 RETURN es.append_event(s, 'Retried', '{}', stale);
             EXCEPTION WHEN serialization_failure THEN
                 RETURN es.append_event(s, 'Retried', '{}', es.stream_version(s));
             END;
         END $$",
    );
    let e = r
        .query_one("SELECT append_with_retry('h-1', 1)", &[])
        .unwrap_err();
    assert_eq!(code_of(&e), "25001", "{}", describe(&e));
    assert!(describe(&e).contains("subtransaction"), "{}", describe(&e));
    // a command that loads, decides and appends in one statement
    exec(
        &mut r,
        "CREATE FUNCTION append_next(s text) RETURNS bigint
         LANGUAGE plpgsql AS $$
         BEGIN
             RETURN es.append_event(s, 'Next', '{}', es.stream_version(s));
         END $$",
    );
    assert_eq!(one_i64(&mut r, "SELECT append_next('h-1')"), 2);

    // the rows are where the router says
    let p = one_i64(&mut r, "SELECT es.partition_of('h-1')::bigint") as i32;
    let mut c = ps.part_of(p).connect();
    assert_eq!(
        one_i64(
            &mut c,
            "SELECT count(*) FROM es.events WHERE stream_id = 'h-1'"
        ),
        2
    );

    // configuration: a power of two, fixed at the first call
    let e = r
        .execute(
            "SELECT es.configure_partitions(ARRAY['dbname=x', 'dbname=y', 'dbname=z'])",
            &[],
        )
        .unwrap_err();
    assert_eq!(code_of(&e), "22023", "{}", describe(&e));
    let e = r
        .execute(
            "SELECT es.configure_partitions(ARRAY['dbname=x', 'dbname=y'])",
            &[],
        )
        .unwrap_err();
    assert_eq!(code_of(&e), "55000", "{}", describe(&e));
    assert_eq!(
        one_i64(&mut r, "SELECT count(*) FROM es.partitions()"),
        LOGICAL as i64
    );
    let e = r.query("SELECT * FROM es.read_all(16)", &[]).unwrap_err();
    assert_eq!(code_of(&e), "22023", "{}", describe(&e));
}

#[test]
fn a_router_before_its_partitions_are_configured_says_so() {
    let router = "es_it_part_unconf_router";
    create_empty_database(router);
    let mut r = connect(router);
    exec(
        &mut r,
        "SET client_min_messages = warning; CREATE EXTENSION pg_eventsource_router CASCADE",
    );
    for sql in [
        "SELECT es.append_event('u-1', 'A', '{}')",
        "SELECT * FROM es.read_stream('u-1')",
        "SELECT es.stream_version('u-1')",
        "SELECT * FROM es.read_all(0)",
        "SELECT es.partition_of('u-1')",
        "SELECT es.define_event_schema('A', '{}')",
    ] {
        let e = r.query(sql, &[]).unwrap_err();
        assert_eq!(code_of(&e), "55000", "{sql}: {}", describe(&e));
        assert!(
            describe(&e).contains("no partitions are configured"),
            "{sql}: {}",
            describe(&e)
        );
    }
    drop(r);
    drop_database(router);
}

/// A router's database dumped and restored (pg_dump, psql) routes as before:
/// the configuration (a foreign server and its user mapping, outside the
/// extension) comes back with it.
#[test]
fn a_dumped_and_restored_router_routes_the_same() {
    let ps = Partitioned::create("part_dump");
    let mut r = ps.router();
    for i in 0..20 {
        append(&mut r, &format!("dump-{i}"), "Opened", "{}", Some(0)).unwrap();
    }
    let restored = "es_it_part_dump_router2";
    create_empty_database(restored);
    dump_and_restore(&ps.router, restored, Duration::from_secs(120));
    let mut r2 = connect(restored);
    exec(&mut r2, "SET client_min_messages = warning");
    let layout = |c: &mut Client| -> Vec<(i32, String)> {
        c.query("SELECT partition, connstr FROM es.partitions()", &[])
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect()
    };
    assert_eq!(layout(&mut r2), layout(&mut r));
    for i in 0..20 {
        let s = format!("dump-{i}");
        assert_eq!(
            append(&mut r2, &s, "Deposited", "{}", Some(1))
                .unwrap_or_else(|e| panic!("{s}: {}", describe(&e))),
            2
        );
        assert_eq!(
            r.query_one("SELECT es.stream_version($1)", &[&s])
                .unwrap()
                .get::<_, i64>(0),
            2,
            "{s}: both routers reach the same partition"
        );
    }
    // the guard came back with the extension
    let e = r2
        .batch_execute(
            "SET ROLE pg_monitor; CREATE USER MAPPING FOR pg_monitor SERVER es_partitions",
        )
        .unwrap_err();
    assert_eq!(code_of(&e), "42501", "{}", describe(&e));
    assert!(describe(&e).contains("only superusers"), "{}", describe(&e));
    drop(r2);
    drop_database(restored);
}

#[test]
fn racing_withdrawals_through_the_router_never_overdraw() {
    let ps = Partitioned::create("part_race");
    let mut r = ps.router();
    exec(
        &mut r,
        r#"SELECT es.define_aggregate('acct', reducers => '{
                "Deposited": [{"add": "balance", "from": "$.amount"}],
                "Withdrawn": [{"sub": "balance", "from": "$.amount"}]}',
               initial_state => '{"balance": 0}', snapshot_every => 5)"#,
    );
    exec(
        &mut r,
        r#"CREATE FUNCTION withdraw(s text, amount numeric) RETURNS boolean
           LANGUAGE plpgsql AS $$
           DECLARE st record;
           BEGIN
               SELECT * INTO st FROM es.load(s);
               IF (st.state->>'balance')::numeric < amount THEN
                   RETURN false;
               END IF;
               PERFORM es.append_event(s, 'Withdrawn', jsonb_build_object('amount', amount), st.version);
               RETURN true;
           END $$;"#,
    );
    append(
        &mut r,
        "acct-race",
        "Deposited",
        "{\"amount\": 100}",
        Some(0),
    )
    .unwrap();
    let router = ps.router.clone();
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let router = router.clone();
            thread::spawn(move || {
                let mut c = connect(&router);
                exec(&mut c, "SET client_min_messages = warning");
                let (mut ok, mut conflicts) = (0, 0);
                // until the balance no longer allows it (each conflict means
                // another withdrawal committed, so this ends)
                for _ in 0..2000 {
                    match c.query_one("SELECT withdraw('acct-race', 3)", &[]) {
                        Ok(row) if row.get::<_, bool>(0) => ok += 1,
                        Ok(_) => return (ok, conflicts),
                        Err(e) if code_of(&e) == "40001" => conflicts += 1,
                        Err(e) => panic!("withdraw: {}", describe(&e)),
                    }
                }
                panic!("withdrawals did not end")
            })
        })
        .collect();
    let (mut ok, mut conflicts) = (0, 0);
    for w in workers {
        let (o, c) = w.join().unwrap();
        ok += o;
        conflicts += c;
    }
    // 100 / 3: 33 withdrawals fit, whatever the interleaving
    assert_eq!(ok, 33, "{conflicts} conflicts");
    let balance: String = r
        .query_one("SELECT state->>'balance' FROM es.load('acct-race')", &[])
        .unwrap()
        .get(0);
    assert_eq!(balance, "1");
    let p = one_i64(&mut r, "SELECT es.partition_of('acct-race')::bigint") as i32;
    let mut c = ps.part_of(p).connect();
    assert_eq!(
        one_i64(&mut c, "SELECT count(*) FROM es.events WHERE stream_id = 'acct-race' AND event_type = 'Withdrawn'"),
        33
    );
}

#[test]
fn a_partition_that_is_down_fails_only_its_own_streams() {
    let ps = Partitioned::create("part_down");
    let mut r = ps.router();
    // one stream per database
    let mut by_db: BTreeMap<usize, String> = BTreeMap::new();
    for i in 0..200 {
        let s = format!("d-{i}");
        let p: i32 = r
            .query_one("SELECT es.partition_of($1)", &[&s])
            .unwrap()
            .get(0);
        by_db.entry(p as usize % DATABASES).or_insert(s);
    }
    assert_eq!(by_db.len(), DATABASES);
    for s in by_db.values() {
        append(&mut r, s, "Opened", "{}", Some(0)).unwrap();
    }
    let down = &ps.parts[2];
    let mut admin = connect("postgres");
    exec(
        &mut admin,
        &format!("ALTER DATABASE {} ALLOW_CONNECTIONS false", down.name),
    );
    exec(
        &mut admin,
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
            down.name
        ),
    );
    assert!(wait_until(Duration::from_secs(10), || one_i64(
        &mut admin,
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}'",
            down.name
        )
    ) == 0));
    let mut r = ps.router();
    for (db, s) in &by_db {
        let res = append(&mut r, s, "Deposited", "{}", Some(1));
        if *db == 2 {
            let e = res.unwrap_err();
            let text = describe(&e);
            assert!(
                text.contains(&down.name),
                "the error names the partition's database: {text}"
            );
            let e = r
                .query_one("SELECT es.stream_version($1)", &[s])
                .unwrap_err();
            assert!(describe(&e).contains(&down.name), "{}", describe(&e));
        } else {
            assert_eq!(res.unwrap_or_else(|e| panic!("{s}: {}", describe(&e))), 2);
        }
    }
    exec(
        &mut admin,
        &format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", down.name),
    );
    let s = &by_db[&2];
    assert_eq!(
        append(&mut r, s, "Deposited", "{}", Some(1)).unwrap(),
        2,
        "back once it is up"
    );
}

#[test]
fn definitions_reach_every_partition() {
    let ps = Partitioned::create("part_defs");
    let mut r = ps.router();
    // one statement each: a string of several is one transaction, and each
    // definition commits on the partitions at once
    for def in [
        r#"SELECT es.define_aggregate('item', reducers => '{"Added": [{"inc": "count"}]}')"#,
        r#"SELECT es.define_event_schema('Added', '{"type": "object", "required": ["sku"]}')"#,
        r#"SELECT es.define_upcaster('Added', 1, '[{"set": "qty", "value": 1}]')"#,
    ] {
        exec(&mut r, def);
    }
    for db in &ps.parts {
        let mut c = db.connect();
        assert_eq!(
            one_i64(
                &mut c,
                "SELECT count(*) FROM es.aggregates WHERE stream_type = 'item'"
            ),
            1,
            "{}",
            db.name
        );
        assert_eq!(
            one_i64(
                &mut c,
                "SELECT count(*) FROM es.event_schemas WHERE event_type = 'Added'"
            ),
            1,
            "{}",
            db.name
        );
        assert_eq!(
            one_i64(
                &mut c,
                "SELECT count(*) FROM es.upcasters WHERE event_type = 'Added'"
            ),
            1,
            "{}",
            db.name
        );
    }
    // they hold for every stream, wherever it lives
    for i in 0..32 {
        let s = format!("item-{i}");
        let e = append(&mut r, &s, "Added", "{}", None).unwrap_err();
        assert_eq!(code_of(&e), "23514", "{s}: {}", describe(&e));
        append(&mut r, &s, "Added", "{\"sku\": \"x\"}", None).unwrap();
        let row = r
            .query_one("SELECT (state->>'count')::int FROM es.load($1)", &[&s])
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), 1, "{s}");
    }
    // the same call again is harmless (what to do after a partial failure)
    exec(
        &mut r,
        r#"SELECT es.define_event_schema('Added', '{"type": "object", "required": ["sku"]}')"#,
    );
    // a definition is a writing call too
    let mut tx = r.transaction().unwrap();
    let e = tx
        .execute("SELECT es.define_aggregate('other', reducers => '{}')", &[])
        .unwrap_err();
    assert_eq!(code_of(&e), "25001", "{}", describe(&e));
}

/// A consumer that follows every logical partition through the router with
/// one checkpoint per partition, and records what it was handed.
struct Consumer {
    checkpoints: BTreeMap<i32, i64>,
    seen: Vec<(String, i64)>,
}

impl Consumer {
    fn catch_up(&mut self, r: &mut Client, partitions: i32) {
        for p in 0..partitions {
            let after = self.checkpoints.entry(p).or_insert(0);
            loop {
                let rows = r
                    .query(
                        "SELECT global_position, stream_id, version FROM es.read_all($1, $2, 100)
",
                        &[&p, &*after],
                    )
                    .unwrap_or_else(|e| panic!("es.read_all({p}): {}", describe(&e)));
                if rows.is_empty() {
                    break;
                }
                for row in rows {
                    *after = row.get(0);
                    self.seen.push((row.get(1), row.get(2)));
                }
            }
        }
    }
}

/// The split procedure of docs/partitions.md, end to end: database `parts_a`
/// holds logical partitions 0 and 2 (of 4); a hot standby of its server is
/// promoted and takes partition 2; the consumer keeps its checkpoints and is
/// handed every event exactly once.
#[test]
fn a_split_by_a_promoted_standby_loses_and_repeats_nothing() {
    let a = ThrowawayCluster::create("split", "ES_SPLIT_PGPORT", 28827, "", &[]);
    let mut admin = a.connect("postgres");
    for db in ["parts_a", "parts_b", "router"] {
        exec(&mut admin, &format!("CREATE DATABASE {db}"));
    }
    for db in ["parts_a", "parts_b"] {
        exec(&mut a.connect(db), "CREATE EXTENSION pg_eventsource");
    }
    let at = |port: u16, db: &str| format!("host=127.0.0.1 port={port} dbname={db}");
    let mut r = a.connect("router");
    exec(
        &mut r,
        "SET client_min_messages = warning; CREATE EXTENSION pg_eventsource_router CASCADE",
    );
    let layout = |moved: bool, standby_port: u16| -> Vec<String> {
        vec![
            at(a.port, "parts_a"),
            at(a.port, "parts_b"),
            if moved {
                at(standby_port, "parts_a")
            } else {
                at(a.port, "parts_a")
            },
            at(a.port, "parts_b"),
        ]
    };
    r.execute("SELECT es.configure_partitions($1)", &[&layout(false, 0)])
        .unwrap();
    let write_round = |r: &mut Client, round: i64| {
        for s in 0..120 {
            let v = append(r, &format!("s-{s}"), "Tick", "{}", Some(round))
                .unwrap_or_else(|e| panic!("s-{s} round {round}: {}", describe(&e)));
            assert_eq!(v, round + 1);
        }
    };
    let mut consumer = Consumer {
        checkpoints: BTreeMap::new(),
        seen: Vec::new(),
    };
    write_round(&mut r, 0);
    consumer.catch_up(&mut r, 4);
    write_round(&mut r, 1);

    // 1. a hot standby of the server that holds parts_a
    let b = Standby::start("split-standby", "127.0.0.1", a.port, a.port + 1);
    write_round(&mut r, 2); // streamed to it
                            // 2. the router sends partition 2 to the standby: reads work, writes
                            //    fail (read-only) until it is promoted
    r.execute(
        "SELECT es.configure_partitions($1)",
        &[&layout(true, b.port)],
    )
    .unwrap();
    let moved: Vec<String> = (0..120)
        .map(|s| format!("s-{s}"))
        .filter(|s| one_i64(&mut r, &format!("SELECT es.partition_of('{s}')::bigint")) == 2)
        .collect();
    assert!(!moved.is_empty());
    let e = append(&mut r, &moved[0], "Tick", "{}", Some(3)).unwrap_err();
    assert_eq!(
        code_of(&e),
        "25006",
        "read-only until promoted: {}",
        describe(&e)
    );
    // 3. the standby has replayed everything the primary wrote, then is promoted
    let lsn: String = a
        .connect("parts_a")
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .unwrap()
        .get(0);
    let mut bp = b.connect("postgres");
    assert!(wait_until(Duration::from_secs(60), || bp
        .query_one(
            "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn",
            &[&lsn]
        )
        .unwrap()
        .get::<_, bool>(0)));
    b.promote();
    assert!(wait_until(Duration::from_secs(60), || !bp
        .query_one("SELECT pg_is_in_recovery()", &[])
        .unwrap()
        .get::<_, bool>(0)));
    // 4. each side hard-deletes the other side's streams
    let delete = |c: &mut Client, partitions: &str| {
        exec(
            c,
            &format!(
                "SELECT es.delete_stream(s.stream_id, hard => true, reason => 'split')
                   FROM es.streams s
                  WHERE es.partition_of(s.stream_id, 4) IN ({partitions})"
            ),
        )
    };
    delete(&mut a.connect("parts_a"), "2");
    delete(&mut b.connect("parts_a"), "0");
    // the consumer was behind by rounds 1 and 2; it catches up across the split
    consumer.catch_up(&mut r, 4);
    write_round(&mut r, 3);
    write_round(&mut r, 4);
    consumer.catch_up(&mut r, 4);

    // every event of rounds 0-4, once, each stream in order
    let mut per_stream: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (s, v) in &consumer.seen {
        per_stream.entry(s.clone()).or_default().push(*v);
    }
    assert_eq!(per_stream.len(), 120);
    for (s, versions) in &per_stream {
        assert_eq!(versions, &vec![1, 2, 3, 4, 5], "{s}");
    }
    // each side holds only its own partitions' live streams
    let live = |c: &mut Client| -> BTreeSet<i64> {
        c.query(
            "SELECT DISTINCT es.partition_of(stream_id, 4)::bigint FROM es.events
              WHERE stream_id LIKE 's-%' AND event_type = 'Tick'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
    };
    assert_eq!(live(&mut a.connect("parts_a")), BTreeSet::from([0]));
    assert_eq!(live(&mut b.connect("parts_a")), BTreeSet::from([2]));
    drop(b);
}
