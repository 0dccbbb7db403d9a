//! Schema evolution with real connections: streams that mix three schema
//! versions of one event type (v1 `{"amt"}`, v2 `{"amount", "currency"}`
//! by declarative steps, v3 `{"money": {...}}` by a function) are read by
//! an async projection and a subscriber while four writers append the
//! newest shape, some of it refused by the type's schema. Both readers see
//! every committed event exactly once, each in the v3 shape, with the
//! amount that was written; nothing refused is stored.

use pg_eventsource_integration::{describe, sqlstate, TestDb};
use postgres::error::SqlState;
use postgres::Client;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const STREAMS: usize = 12;
const WRITERS: usize = 4;
const PER_WRITER: usize = 150;

fn ok<T>(what: &str, r: Result<T, postgres::Error>) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {}", describe(&e)))
}

/// The amount an event was written with, in whichever shape it was stored.
fn stored_amount(data: &serde_json::Value) -> String {
    let v = data
        .get("amt")
        .or_else(|| data.get("amount"))
        .or_else(|| data.pointer("/money/amount"))
        .unwrap_or_else(|| panic!("no amount in {data}"));
    v.to_string()
}

fn setup(c: &mut Client) {
    ok(
        "v1 events",
        c.batch_execute(&format!(
            "SELECT es.append_event('credit-' || (i % {STREAMS}), 'Credited', jsonb_build_object('amt', i))
               FROM generate_series(1, 60) i"
        )),
    );
    ok(
        "v1 -> v2",
        c.batch_execute(
            r#"SELECT es.define_upcaster('Credited', 1, '[{"rename": "amt", "to": "amount"},
                                                         {"set": "currency", "value": "EUR"}]')"#,
        ),
    );
    ok(
        "v2 events",
        c.batch_execute(&format!(
            "SELECT es.append_event('credit-' || (i % {STREAMS}), 'Credited',
                                    jsonb_build_object('amount', i, 'currency', 'USD'))
               FROM generate_series(61, 120) i"
        )),
    );
    ok(
        "v2 -> v3 and the v3 schema",
        c.batch_execute(
            r#"CREATE FUNCTION public.credited_v3(data jsonb, metadata jsonb) RETURNS jsonb
               LANGUAGE sql IMMUTABLE
               RETURN jsonb_build_object('money', jsonb_build_object('amount', data->'amount',
                                                                      'currency', data->'currency'));
               SELECT es.define_upcaster('Credited', 2, fn => 'public.credited_v3(jsonb, jsonb)');
               SELECT es.define_event_schema('Credited', '{
                 "type": "object", "required": ["money"], "additionalProperties": false,
                 "properties": {"money": {"type": "object", "required": ["amount", "currency"],
                   "additionalProperties": false,
                   "properties": {"amount": {"type": "integer", "minimum": 1},
                                  "currency": {"enum": ["EUR", "USD"]}}}}}');"#,
        ),
    );
    // the read model: one row per event, in the shape the handler gets
    ok(
        "projection",
        c.batch_execute(
            "CREATE TABLE public.credits (global_position bigint PRIMARY KEY, stream_id text NOT NULL,
                                          version bigint NOT NULL, schema_version integer NOT NULL,
                                          amount text NOT NULL, currency text NOT NULL);
             CREATE FUNCTION public.on_credit(e es.events) RETURNS void LANGUAGE sql AS $$
                 INSERT INTO public.credits VALUES (e.global_position, e.stream_id, e.version, e.schema_version,
                                                    e.data->'money'->>'amount', e.data->'money'->>'currency') $$;
             SELECT es.create_projection('credits', 'public.on_credit(es.events)', 'async', ARRAY['Credited']);
             SELECT es.subscribe('credit-feed', ARRAY['Credited']);",
        ),
    );
}

/// Appends the newest shape; every 10th attempt carries a refused payload.
fn write(w: usize, mut c: Client) -> usize {
    let mut refused = 0;
    for i in 0..PER_WRITER {
        let stream = format!("credit-{}", (w * 7 + i) % STREAMS);
        let amount = 1000 + w * PER_WRITER + i;
        let data = if i % 10 == 9 {
            format!(r#"{{"money": {{"amount": {amount}, "currency": "GBP"}}}}"#)
        } else {
            format!(r#"{{"money": {{"amount": {amount}, "currency": "EUR"}}}}"#)
        };
        match c.execute(
            "SELECT es.append_event($1, 'Credited', $2::text::jsonb)",
            &[&stream, &data],
        ) {
            Ok(_) => {}
            Err(e) if sqlstate(&e) == Some(&SqlState::CHECK_VIOLATION) && i % 10 == 9 => {
                refused += 1
            }
            Err(e) => panic!("writer {w}: {}", describe(&e)),
        }
    }
    refused
}

/// (global_position -> (stream, version, schema_version, amount, currency))
type Seen = BTreeMap<i64, (String, i64, i32, String, String)>;

fn subscribe(mut c: Client, stop: Arc<AtomicBool>) -> Seen {
    let mut seen = Seen::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let done = stop.load(SeqCst);
        let rows = ok(
            "poll",
            c.query(
                "SELECT global_position, stream_id, version, event_type, schema_version,
                        data->'money'->>'amount', data->'money'->>'currency'
                   FROM es.poll('credit-feed', 50)",
                &[],
            ),
        );
        for r in &rows {
            let p: i64 = r.get(0);
            assert_eq!(r.get::<_, String>(3), "Credited");
            let amount: Option<String> = r.get(5);
            let currency: Option<String> = r.get(6);
            let prev = seen.insert(
                p,
                (
                    r.get(1),
                    r.get(2),
                    r.get(4),
                    amount.unwrap_or_else(|| panic!("event {p} is not in the v3 shape")),
                    currency.unwrap_or_default(),
                ),
            );
            assert!(prev.is_none(), "event {p} delivered twice");
        }
        if let Some(last) = rows.last() {
            let p: i64 = last.get(0);
            ok("ack", c.execute("SELECT es.ack('credit-feed', $1)", &[&p]));
        } else if done {
            return seen;
        } else {
            thread::sleep(Duration::from_millis(20));
        }
        assert!(Instant::now() < deadline, "the subscriber ran out of time");
    }
}

fn project(mut c: Client, stop: Arc<AtomicBool>) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let done = stop.load(SeqCst);
        let n: i64 = ok(
            "run_projection",
            c.query_one("SELECT es.run_projection('credits', 100)::bigint", &[]),
        )
        .get(0);
        if n == 0 && done {
            return;
        }
        if n == 0 {
            thread::sleep(Duration::from_millis(20));
        }
        assert!(Instant::now() < deadline, "the projection ran out of time");
    }
}

#[test]
fn readers_see_one_shape_while_writers_append_the_newest() {
    let db = TestDb::create("evolution");
    let mut c = db.connect();
    setup(&mut c);

    let stop = Arc::new(AtomicBool::new(false));
    let sub = {
        let (c, stop) = (db.connect(), stop.clone());
        thread::spawn(move || subscribe(c, stop))
    };
    let proj = {
        let (c, stop) = (db.connect(), stop.clone());
        thread::spawn(move || project(c, stop))
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let c = db.connect();
            thread::spawn(move || write(w, c))
        })
        .collect();
    let refused: usize = writers.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(
        refused,
        WRITERS * PER_WRITER / 10,
        "every GBP deposit is refused"
    );
    stop.store(true, SeqCst);
    let seen = sub.join().unwrap();
    proj.join().unwrap();

    // What is stored: three versions, as written.
    let stored: BTreeMap<i64, (String, i64, i32, String)> = ok(
        "raw read",
        c.query(
            "SELECT global_position, stream_id, version, schema_version, data::text
               FROM es.read_all(0, 100000, raw => true)",
            &[],
        ),
    )
    .iter()
    .map(|r| {
        let data: serde_json::Value = serde_json::from_str(r.get::<_, &str>(4)).unwrap();
        (
            r.get(0),
            (r.get(1), r.get(2), r.get(3), stored_amount(&data)),
        )
    })
    .collect();
    let expected = 120 + WRITERS * PER_WRITER - refused;
    assert_eq!(stored.len(), expected);
    let versions: Vec<i32> = {
        let mut v: Vec<i32> = stored.values().map(|s| s.2).collect();
        v.sort();
        v.dedup();
        v
    };
    assert_eq!(
        versions,
        vec![1, 2, 3],
        "the stream mixes three stored versions"
    );

    // The subscriber: every committed event once, upcast, with its amount.
    assert_eq!(seen.len(), expected, "the subscriber saw every event once");
    for (p, (stream, version, sv, amount, currency)) in &seen {
        let s = &stored[p];
        assert_eq!((stream, version), (&s.0, &s.1), "event {p}");
        assert_eq!(*sv, 3, "event {p} reads as version 3");
        assert_eq!(
            amount,
            &s.3.trim_matches('"').to_string(),
            "event {p}'s amount"
        );
        let want_currency = match s.2 {
            1 => "EUR",
            2 => "USD",
            _ => "EUR",
        };
        assert_eq!(currency, want_currency, "event {p}'s currency");
    }
    // each stream's events in version order
    let mut last: BTreeMap<&str, i64> = BTreeMap::new();
    for (stream, version, ..) in seen.values() {
        let prev = last.insert(stream, *version).unwrap_or(0);
        assert!(*version > prev, "{stream}: version {version} after {prev}");
    }

    // The projection: the same rows.
    let projected: Seen = ok(
        "credits",
        c.query(
            "SELECT global_position, stream_id, version, schema_version, amount, currency FROM public.credits",
            &[],
        ),
    )
    .iter()
    .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3), r.get(4), r.get(5))))
    .collect();
    assert_eq!(
        projected, seen,
        "the projection handled exactly what the subscriber saw"
    );
}
