//! On a server where the library is not preloaded (only `CREATE EXTENSION`
//! ran: no shared memory for the relay), notifications still come one per
//! committed appending transaction, and appenders do not queue on
//! PostgreSQL's notification lock: a committing appender that finds it taken
//! leaves its payload in `es.notify_outbox` and a relay started on demand (a
//! dynamic background worker) sends it. Runs a throwaway cluster of its own
//! with default settings (port `ES_STOCK_PGPORT`, default 28826).

use pg_eventsource_integration::{describe, exec, one_i64, wait_until, ThrowawayCluster};
use postgres::fallible_iterator::FallibleIterator;
use postgres::Client;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const RELAY: &str = "pg_eventsource notify outbox";

/// (first_position, last_position) -> events, for every notification.
type Seen = Arc<Mutex<Vec<(i64, i64, i64)>>>;

/// Collects every notification until one with the payload "stop" (blocking
/// reads: no timeout between messages).
fn listen(mut listener: Client, seen: Seen) -> thread::JoinHandle<()> {
    exec(&mut listener, "LISTEN es_events");
    thread::spawn(move || {
        let mut notes = listener.notifications();
        let mut it = notes.blocking_iter();
        loop {
            let n = match it.next() {
                Ok(Some(n)) => n,
                Ok(None) => panic!("the listener's connection ended"),
                Err(e) => panic!("the listener's connection failed: {}", describe(&e)),
            };
            if n.payload() == "stop" {
                return;
            }
            let p: serde_json::Value = serde_json::from_str(n.payload())
                .unwrap_or_else(|e| panic!("payload {:?}: {e}", n.payload()));
            let field = |k: &str| {
                p[k].as_i64()
                    .unwrap_or_else(|| panic!("payload {:?} has no {k}", n.payload()))
            };
            let note = (
                field("first_position"),
                field("last_position"),
                field("events"),
            );
            seen.lock().unwrap().push(note);
        }
    })
}

/// Every committed appending transaction's (first, last, events), from the table.
fn committed(c: &mut Client) -> Vec<(i64, i64, i64)> {
    c.query(
        "SELECT min(global_position), max(global_position), count(*)
           FROM es.events GROUP BY xmin::text ORDER BY 1",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

/// 8 writers, `rounds` transactions each: one event, two events, or one
/// rolled back.
fn write(cluster: &ThrowawayCluster, tag: &str, rounds: usize) {
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let mut cfg = cluster.config("stock");
            cfg.user("stock_writer");
            let tag = tag.to_owned();
            thread::spawn(move || {
                let mut c = cfg.connect(postgres::NoTls).unwrap();
                for i in 0..rounds {
                    let s = format!("{tag}-{}", (w * 7 + i) % 20);
                    match i % 5 {
                        0 => exec(
                            &mut c,
                            &format!(
                                "BEGIN; SELECT es.append_event('{s}', 'A', '{{}}');
                                 SELECT es.append_event('{s}-b', 'B', '{{}}'); COMMIT"
                            ),
                        ),
                        1 => exec(
                            &mut c,
                            &format!("BEGIN; SELECT es.append_event('{s}', 'A', '{{}}'); ROLLBACK"),
                        ),
                        _ => exec(
                            &mut c,
                            &format!("SELECT es.append_event('{s}', 'A', '{{}}')"),
                        ),
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
}

fn relays(c: &mut Client) -> i64 {
    one_i64(
        c,
        &format!("SELECT count(*) FROM pg_stat_activity WHERE backend_type = '{RELAY}'"),
    )
}

/// Waits until the listener has seen one notification per committed
/// transaction, then checks they are exactly those.
fn check_all_notified(admin: &mut Client, seen: &Seen, what: &str) {
    let want = committed(admin);
    let ok = wait_until(Duration::from_secs(30), || {
        seen.lock().unwrap().len() >= want.len()
    });
    thread::sleep(Duration::from_millis(300)); // anything extra would show now
    let mut got = seen.lock().unwrap().clone();
    got.sort();
    if !ok {
        let outbox = one_i64(admin, "SELECT count(*) FROM es.notify_outbox");
        let relay = one_i64(admin, "SELECT count(*) FROM es.notify_outbox_relay");
        let missing: Vec<_> = want.iter().filter(|w| !got.contains(w)).collect();
        panic!(
            "{what}: {} notifications for {} transactions; {outbox} in the outbox, {relay} relay registered, {} running; missing {missing:?}",
            got.len(),
            want.len(),
            relays(admin)
        );
    }
    assert_eq!(
        got, want,
        "{what}: one notification per committed transaction, its positions"
    );
    let mut by_first = BTreeMap::new();
    for g in &got {
        *by_first.entry(g.0).or_insert(0) += 1;
    }
    assert!(
        by_first.values().all(|n| *n == 1),
        "{what}: no notification twice"
    );
}

#[test]
fn a_server_without_the_library_preloaded_notifies_through_the_outbox() {
    let cluster = ThrowawayCluster::create("notify-stock", "ES_STOCK_PGPORT", 28826, "", &[]);
    exec(&mut cluster.connect("postgres"), "CREATE DATABASE stock");
    let mut admin = cluster.connect("stock");
    exec(
        &mut admin,
        "CREATE EXTENSION pg_eventsource;
         CREATE ROLE stock_writer LOGIN; SELECT es.grant_writer('stock_writer');",
    );
    assert_eq!(
        one_i64(&mut admin, "SELECT count(*) FROM pg_catalog.pg_settings WHERE name = 'shared_preload_libraries' AND setting <> ''"),
        0,
        "a stock server"
    );
    let seen: Seen = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let listener = listen(cluster.connect("stock"), seen.clone());

    // 1. Concurrent writers: a relay is started, and every committed
    //    transaction is notified once, rolled-back ones never.
    let watching = {
        let mut c = cluster.connect("stock");
        let stop = stop.clone();
        thread::spawn(move || {
            let mut most = 0;
            while !stop.load(SeqCst) {
                most = most.max(relays(&mut c));
                thread::sleep(Duration::from_millis(20));
            }
            most
        })
    };
    write(&cluster, "one", 150);
    check_all_notified(&mut admin, &seen, "8 writers");
    assert_eq!(
        one_i64(&mut admin, "SELECT count(*) FROM es.notify_outbox"),
        0,
        "the outbox is emptied"
    );

    // 2. With nothing to send, the relay leaves (DROP DATABASE is not held up).
    assert!(
        wait_until(Duration::from_secs(15), || relays(&mut admin) == 0),
        "the relay leaves once idle"
    );

    // 2a. While a relay runs, the rows it removes from the outbox reach
    //     pg_stat_user_tables (autovacuum decides from them), not only when
    //     it exits. Eight writers keep one relay busy (appenders use the
    //     outbox when they contend; the relay leaves after 2 s idle); once it
    //     has run a while, its count must still move while that same process
    //     runs (the relays before it left at step 2 and reported then).
    let deleted = |c: &mut Client| {
        one_i64(
            c,
            "SELECT n_tup_del FROM pg_stat_user_tables WHERE relid = 'es.notify_outbox'::regclass",
        )
    };
    let busy = Arc::new(AtomicBool::new(true));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let mut c = cluster.connect("stock");
            let busy = busy.clone();
            thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(30);
                let mut i = 0;
                while busy.load(SeqCst) && Instant::now() < deadline {
                    exec(
                        &mut c,
                        &format!("SELECT es.append_event('busy-{w}-{}', 'A', '{{}}')", i % 3),
                    );
                    i += 1;
                }
            })
        })
        .collect();
    let started = wait_until(Duration::from_secs(10), || relays(&mut admin) > 0);
    // (a relay started in the same instant as another finds the database
    // served and leaves at once: the one that stays is the one to watch)
    thread::sleep(Duration::from_millis(500));
    let relay_pid = one_i64(
        &mut admin,
        &format!(
            "SELECT coalesce(min(pid), 0)::bigint FROM pg_stat_activity
              WHERE backend_type = '{RELAY}'"
        ),
    );
    let before = deleted(&mut admin);
    let counted_while_running = relay_pid != 0
        && wait_until(Duration::from_secs(10), || {
            one_i64(
                &mut admin,
                &format!(
                    "SELECT ((SELECT n_tup_del FROM pg_stat_user_tables
                               WHERE relid = 'es.notify_outbox'::regclass) > {before}
                             AND EXISTS (SELECT FROM pg_stat_activity
                                          WHERE pid = {relay_pid}))::int::bigint"
                ),
            ) == 1
        });
    busy.store(false, SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    assert!(started, "eight writers start a relay");
    assert!(
        counted_while_running,
        "pg_stat_user_tables counts no more rows removed from es.notify_outbox ({before}) while \
         the relay (pid {relay_pid}) runs: {} now",
        deleted(&mut admin)
    );
    assert!(
        wait_until(Duration::from_secs(15), || relays(&mut admin) == 0),
        "the relay leaves once idle"
    );

    // 2b. One more append: notified (by itself; it starts a relay).
    exec(&mut admin, "SELECT es.append_event('alone-1', 'A', '{}')");
    check_all_notified(&mut admin, &seen, "an append after the relay left");

    // 3. A relay terminated while writers run: nothing is lost or repeated
    //    (appenders notify by themselves or leave payloads for the next one).
    let killer = {
        let mut c = cluster.connect("stock");
        thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut killed = 0;
            while killed < 3 && Instant::now() < deadline {
                killed += one_i64(
                    &mut c,
                    &format!(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                          WHERE backend_type = '{RELAY}'"
                    ),
                );
                thread::sleep(Duration::from_millis(150));
            }
            killed
        })
    };
    write(&cluster, "two", 150);
    let killed = killer.join().unwrap();
    // the last payloads may wait for a relay that a later commit starts
    exec(&mut admin, "SELECT es.append_event('last-1', 'A', '{}')");
    check_all_notified(&mut admin, &seen, "relays terminated meanwhile");
    stop.store(true, SeqCst);
    exec(&mut admin, "NOTIFY es_events, 'stop'");
    listener.join().unwrap();
    let most = watching.join().unwrap();
    assert!(most >= 1, "a relay was started");
    assert!(killed >= 1, "a relay was terminated during the writes");

    // 4. Only the extension's owner reads or writes the outbox.
    let mut cfg = cluster.config("stock");
    cfg.user("stock_writer");
    let mut w = cfg.connect(postgres::NoTls).unwrap();
    for sql in [
        "SELECT * FROM es.notify_outbox",
        "INSERT INTO es.notify_outbox VALUES ('{}')",
        "DELETE FROM es.notify_outbox_relay",
    ] {
        let e = w.batch_execute(sql).unwrap_err();
        assert_eq!(pg_eventsource_integration::code_of(&e), "42501", "{sql}");
    }
}
