//! Change data capture through real logical-decoding consumers: a second
//! PostgreSQL cluster subscribed with `CREATE SUBSCRIPTION` to the
//! publication `es.create_publication()` made, and `pg_recvlogical` with
//! the wal2json plugin. While 4 writers append (single events and batches),
//! a transaction that took its position first commits last and another
//! rolls back; both consumers must then have received every committed event
//! exactly once, no rolled-back one, each stream in version order, and the
//! late committer after everything that committed before it although its
//! global_position is lower (the reason a CDC consumer checkpoints by LSN).
//!
//! The publisher is a stock server (`wal_level = logical`, nothing
//! preloaded) where only `CREATE EXTENSION` ran.

use pg_eventsource_integration::{
    as_postgres, describe, exec, one_i64, run_command, sqlstate, ThrowawayCluster,
};
use postgres::error::SqlState;
use postgres::Client;
use std::collections::{BTreeMap, HashSet};
use std::thread;
use std::time::{Duration, Instant};

const WRITERS: usize = 4;
const TXS_PER_WRITER: usize = 40;

/// One event as a consumer received it, in the order it was received.
#[derive(Debug, Clone)]
struct Received {
    global_position: i64,
    stream_id: String,
    version: i64,
    event_id: String,
}

/// The checks both consumers must pass, against the publisher's own rows.
fn check_delivery(who: &str, got: &[Received], stored: &[Received], late: &Received) {
    let ids: Vec<&str> = got.iter().map(|r| r.event_id.as_str()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "{who}: an event was delivered twice"
    );
    let expected: HashSet<&str> = stored.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(
        unique, expected,
        "{who}: delivered events differ from the committed ones"
    );
    assert!(
        got.iter().all(|r| !r.stream_id.starts_with("rolled-")),
        "{who}: a rolled-back event was delivered"
    );
    // each stream in version order, with no gap
    let mut per_stream: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for r in got {
        per_stream.entry(&r.stream_id).or_default().push(r.version);
    }
    for (s, versions) in &per_stream {
        let want: Vec<i64> = (1..=versions.len() as i64).collect();
        assert_eq!(versions, &want, "{who}: stream {s} out of version order");
    }
    // the transaction that committed last arrives last, whatever its position
    let last = got.last().expect("events were delivered");
    assert_eq!(
        last.event_id, late.event_id,
        "{who}: the late committer did not arrive last"
    );
    assert!(
        got.iter().any(|r| r.global_position > late.global_position),
        "{who}: the late committer's position should be below events delivered before it"
    );
}

/// The rows of an es.events table (the publisher's, or the subscriber's copy) in `order`.
fn events_in(c: &mut Client, order: &str) -> Vec<Received> {
    c.query(
        &format!("SELECT global_position, stream_id, version, event_id::text FROM es.events ORDER BY {order}"),
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| Received {
        global_position: r.get(0),
        stream_id: r.get(1),
        version: r.get(2),
        event_id: r.get(3),
    })
    .collect()
}

#[test]
fn subscriber_and_wal2json_receive_each_committed_event_once_in_commit_order() {
    let publisher = ThrowawayCluster::create(
        "cdc-publisher",
        "ES_CDC_PGPORT",
        28824,
        "-c wal_level=logical",
        &[],
    );
    let subscriber =
        ThrowawayCluster::create("cdc-subscriber", "ES_CDC_SUB_PGPORT", 28825, "", &[]);
    exec(&mut publisher.connect("postgres"), "CREATE DATABASE cdc");
    let mut admin = publisher.connect("cdc");
    exec(
        &mut admin,
        "CREATE EXTENSION pg_eventsource; SELECT es.create_publication();
         -- again: the same publication, nothing to do
         SELECT es.create_publication('es_events');
         CREATE ROLE cdc_writer LOGIN; SELECT es.grant_writer('cdc_writer');
         CREATE PUBLICATION everything FOR ALL TABLES;",
    );
    // another publication of the same name is refused, and so are other roles
    let e = admin
        .batch_execute("SELECT es.create_publication('everything')")
        .unwrap_err();
    assert_eq!(
        sqlstate(&e),
        Some(&SqlState::DUPLICATE_OBJECT),
        "{}",
        describe(&e)
    );
    let mut writer_cfg = publisher.config("cdc");
    writer_cfg.user("cdc_writer");
    let mut w = writer_cfg.connect(postgres::NoTls).unwrap();
    let e = w
        .batch_execute("SELECT es.create_publication('mine')")
        .unwrap_err();
    assert_eq!(
        sqlstate(&e),
        Some(&SqlState::INSUFFICIENT_PRIVILEGE),
        "{}",
        describe(&e)
    );
    exec(&mut admin, "DROP PUBLICATION everything");
    // bad names change nothing; a name is an identifier, never SQL
    let e = admin
        .batch_execute("SELECT es.create_publication(NULL)")
        .unwrap_err();
    assert_eq!(
        sqlstate(&e),
        Some(&SqlState::NULL_VALUE_NOT_ALLOWED),
        "{}",
        describe(&e)
    );
    let e = admin
        .batch_execute("SELECT es.create_publication('')")
        .unwrap_err();
    assert_eq!(
        sqlstate(&e),
        Some(&SqlState::INVALID_PARAMETER_VALUE),
        "{}",
        describe(&e)
    );
    exec(
        &mut admin,
        r#"SELECT es.create_publication('odd"; DROP TABLE es.events; --')"#,
    );
    assert_eq!(
        one_i64(
            &mut admin,
            r#"SELECT count(*) FROM pg_publication_tables
                WHERE pubname = 'odd"; DROP TABLE es.events; --' AND schemaname = 'es' AND tablename = 'events'"#
        ),
        1
    );
    exec(
        &mut admin,
        r#"DROP PUBLICATION "odd""; DROP TABLE es.events; --""#,
    );
    // what es_events publishes: inserts of es.events, nothing else
    assert_eq!(
        one_i64(
            &mut admin,
            "SELECT count(*) FROM pg_publication p JOIN pg_publication_tables t USING (pubname)
              WHERE p.pubname = 'es_events' AND t.schemaname = 'es' AND t.tablename = 'events'
                AND p.pubinsert AND NOT (p.pubupdate OR p.pubdelete OR p.pubtruncate OR p.puballtables)"
        ),
        1
    );

    // the subscriber: a table of es.events' columns (plus the order rows arrived in)
    let columns: String = admin
        .query_one(
            "SELECT string_agg(format('%I %s', attname, format_type(atttypid, atttypmod)), ', ' ORDER BY attnum)
               FROM pg_attribute WHERE attrelid = 'es.events'::regclass AND attnum > 0 AND NOT attisdropped",
            &[],
        )
        .unwrap()
        .get(0);
    exec(&mut subscriber.connect("postgres"), "CREATE DATABASE sub");
    let mut sub = subscriber.connect("sub");
    exec(
        &mut sub,
        &format!("CREATE SCHEMA es; CREATE TABLE es.events ({columns}, received bigserial)"),
    );
    // alone: a statement that creates a slot cannot run in a transaction block
    exec(
        &mut sub,
        &format!(
            "CREATE SUBSCRIPTION events CONNECTION 'host=127.0.0.1 port={} dbname=cdc user=postgres'
               PUBLICATION es_events",
            publisher.port
        ),
    );
    let ready = Instant::now() + Duration::from_secs(60);
    while one_i64(
        &mut sub,
        "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'",
    ) > 0
    {
        assert!(
            Instant::now() < ready,
            "the subscription never became ready"
        );
        thread::sleep(Duration::from_millis(100));
    }
    // Servers that list the output plugins replication users may load
    // (`output_plugin_libraries`: pgoutput and test_decoding by default) need
    // wal2json added, as an operator would.
    let has_list = one_i64(
        &mut admin,
        "SELECT count(*) FROM pg_settings WHERE name = 'output_plugin_libraries'",
    ) == 1;
    if has_list {
        // a list setting: each element quoted on its own
        let list: String = admin
            .query_one(
                "SELECT string_agg(quote_literal(trim(l)), ', ')
                   FROM unnest(string_to_array(current_setting('output_plugin_libraries') || ',wal2json', ',')) l",
                &[],
            )
            .unwrap()
            .get(0);
        exec(
            &mut admin,
            &format!("ALTER SYSTEM SET output_plugin_libraries = {list}"),
        );
        exec(&mut admin, "SELECT pg_reload_conf()");
        let reloaded = Instant::now() + Duration::from_secs(30);
        while !publisher
            .connect("cdc")
            .query_one("SELECT current_setting('output_plugin_libraries')", &[])
            .unwrap()
            .get::<_, String>(0)
            .contains("wal2json")
        {
            assert!(
                Instant::now() < reloaded,
                "the configuration was not reloaded"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }
    // wal2json reads from a slot of its own, made before any event
    let pub_port = publisher.port.to_string();
    let recvlogical = |extra: &[&str]| {
        let mut c = as_postgres("pg_recvlogical", &[]);
        c.args([
            "-h",
            "127.0.0.1",
            "-p",
            &pub_port,
            "-U",
            "postgres",
            "-d",
            "cdc",
            "--slot",
            "w2j",
        ])
        .args(extra);
        c
    };
    run_command(&mut recvlogical(&["--create-slot", "-P", "wal2json"]));

    // the late committer takes its position first
    let mut late_client = publisher.connect("cdc");
    exec(&mut late_client, "BEGIN");
    exec(
        &mut late_client,
        "SELECT es.append_event('late-1', 'Opened', '{}')",
    );
    let late_position = one_i64(
        &mut late_client,
        "SELECT global_position FROM es.events WHERE stream_id = 'late-1'",
    );
    // a transaction that rolls back
    let mut rolled = publisher.connect("cdc");
    exec(
        &mut rolled,
        "BEGIN; SELECT es.append_events('rolled-1', '[{\"type\": \"A\", \"data\": {}}, {\"type\": \"B\", \"data\": {}}]');",
    );
    let writers: Vec<_> = (0..WRITERS)
        .map(|t| {
            let mut c = publisher.connect("cdc");
            thread::spawn(move || {
                for i in 0..TXS_PER_WRITER {
                    let stream = format!("w{t}-{}", i % 3);
                    if i % 4 == 0 {
                        c.execute(
                            "SELECT es.append_events($1, '[{\"type\": \"A\", \"data\": {\"n\": 1}}, {\"type\": \"B\", \"data\": {\"n\": 2}}, {\"type\": \"C\", \"data\": {\"n\": 3}}]')",
                            &[&stream],
                        )
                        .unwrap();
                    } else {
                        c.execute(
                            "SELECT es.append_event($1, 'Ticked', jsonb_build_object('i', $2::int))",
                            &[&stream, &(i as i32)],
                        )
                        .unwrap();
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    exec(&mut rolled, "ROLLBACK");
    exec(&mut late_client, "COMMIT");
    let end_lsn: String = admin
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .unwrap()
        .get(0);

    let stored = events_in(&mut admin, "global_position");
    let late = stored
        .iter()
        .find(|r| r.stream_id == "late-1")
        .expect("the late event is stored")
        .clone();
    assert_eq!(late.global_position, late_position);
    assert_eq!(
        stored.len(),
        1 + WRITERS * (TXS_PER_WRITER / 4 * 3 + TXS_PER_WRITER * 3 / 4)
    );

    // the subscriber
    let deadline = Instant::now() + Duration::from_secs(120);
    while one_i64(&mut sub, "SELECT count(*) FROM es.events") < stored.len() as i64 {
        assert!(Instant::now() < deadline, "the subscriber did not catch up");
        thread::sleep(Duration::from_millis(100));
    }
    thread::sleep(Duration::from_millis(300)); // nothing more may arrive
    let got = events_in(&mut sub, "received");
    check_delivery("subscriber", &got, &stored, &late);

    // wal2json, through pg_recvlogical up to the WAL position after the last commit
    let out = publisher.dir.join("wal2json.out");
    run_command(&mut recvlogical(&[
        "--start",
        "--no-loop",
        "--endpos",
        &end_lsn,
        "-o",
        "format-version=2",
        "-o",
        "add-tables=es.events",
        "-f",
        out.to_str().unwrap(),
    ]));
    let text = std::fs::read_to_string(&out).unwrap();
    let mut got = Vec::new();
    let mut transactions = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        match v["action"].as_str() {
            Some("B") => transactions += 1,
            Some("I") => {
                assert_eq!(v["table"], "events", "{line}");
                let col = |name: &str| {
                    v["columns"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|c| c["name"] == name)
                        .unwrap_or_else(|| panic!("no column {name} in {line}"))["value"]
                        .clone()
                };
                got.push(Received {
                    global_position: col("global_position").as_i64().unwrap(),
                    stream_id: col("stream_id").as_str().unwrap().to_owned(),
                    version: col("version").as_i64().unwrap(),
                    event_id: col("event_id").as_str().unwrap().to_owned(),
                });
            }
            _ => {}
        }
    }
    check_delivery("wal2json", &got, &stored, &late);
    // one transaction per commit: the writers' and the late one (and the
    // extension's own bookkeeping ones, which publish nothing of es.events)
    assert!(
        transactions > WRITERS * TXS_PER_WRITER,
        "{transactions} transactions"
    );
    exec(&mut sub, "DROP SUBSCRIPTION events");
}
