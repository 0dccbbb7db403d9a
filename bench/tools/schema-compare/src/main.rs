//! Times pg_eventsource's JSON Schema validator against the jsonschema crate
//! on a realistic event, and checks that both accept and reject the same
//! documents. See README.md.

#[path = "../../../../src/evolution/json_schema.rs"]
mod json_schema;

mod instance;
#[cfg(test)]
mod tests;

use json_schema::Schema;
use serde_json::{json, Value};
use std::hint::black_box;
use std::time::Instant;

/// A "MoneyDeposited" event type's schema: ten properties of the usual kinds.
fn event_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "MoneyDeposited",
        "type": "object",
        "required": ["deposit_id", "account_id", "amount", "currency", "occurred_at",
                     "channel", "counterparty", "sequence"],
        "additionalProperties": false,
        "properties": {
            "deposit_id": {"type": "string", "format": "uuid"},
            "account_id": {"type": "string", "format": "uuid"},
            "amount": {"type": "number", "exclusiveMinimum": 0, "maximum": 1000000,
                       "multipleOf": 0.01},
            "currency": {"enum": ["EUR", "USD", "GBP", "CHF"]},
            "occurred_at": {"type": "string", "format": "date-time"},
            "reference": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}-[0-9]{6}$"},
            "channel": {"enum": ["sepa", "card", "cash", "wire"]},
            "counterparty": {
                "type": "object",
                "required": ["name", "iban"],
                "additionalProperties": false,
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 140},
                    "iban": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$"},
                    "email": {"type": "string", "format": "email"}
                }
            },
            "tags": {"type": "array", "maxItems": 10, "uniqueItems": true,
                     "items": {"type": "string", "minLength": 1, "maxLength": 32}},
            "sequence": {"type": "integer", "minimum": 0}
        }
    })
}

fn event() -> Value {
    json!({
        "deposit_id": "5f0c6a8e-2d3b-4c1a-9e7f-1b2c3d4e5f60",
        "account_id": "0b7e4f5a-9c2d-4e8f-a1b3-c5d7e9f1a3b5",
        "amount": 125.50,
        "currency": "EUR",
        "occurred_at": "2024-05-01T12:34:56.789Z",
        "reference": "INV-2024-000123",
        "channel": "sepa",
        "counterparty": {"name": "ACME GmbH", "iban": "DE89370400440532013000",
                         "email": "billing@acme.example"},
        "tags": ["salary", "monthly"],
        "sequence": 42
    })
}

fn with(mut v: Value, pointer: &str, new: Option<Value>) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    let p = v.pointer_mut(parent).expect("parent exists");
    match (p, new) {
        (Value::Object(o), Some(n)) => {
            o.insert(key.to_owned(), n);
        }
        (Value::Object(o), None) => {
            o.remove(key);
        }
        (Value::Array(a), Some(n)) => a[key.parse::<usize>().expect("an index")] = n,
        _ => panic!("cannot change {pointer}"),
    }
    v
}

/// Documents both validators should accept, then ones both should reject.
fn cases() -> (Vec<Value>, Vec<Value>) {
    let e = event;
    let valid = vec![
        e(),
        with(with(e(), "/reference", None), "/tags", None),
        with(e(), "/sequence", Some(json!(3.0))),
        with(e(), "/amount", Some(json!(0.3))),
        with(e(), "/amount", Some(json!(100.10))),
        with(e(), "/amount", Some(json!(1000000))),
        with(e(), "/tags", Some(json!([]))),
        with(
            e(),
            "/occurred_at",
            Some(json!("2024-02-29T23:59:59+02:00")),
        ),
        with(e(), "/counterparty/email", None),
    ];
    let invalid = vec![
        with(e(), "/amount", Some(json!("x"))),
        with(e(), "/account_id", None),
        with(e(), "/extra", Some(json!(1))),
        with(e(), "/currency", Some(json!("XYZ"))),
        with(e(), "/tags/1", Some(json!(""))),
        with(e(), "/tags/1", Some(json!("salary"))),
        with(e(), "/occurred_at", Some(json!("2024-13-01T00:00:00Z"))),
        with(e(), "/occurred_at", Some(json!("2024-05-01T12:34:56"))),
        with(e(), "/deposit_id", Some(json!("5f0c6a8e-2d3b-4c1a-9e7f"))),
        with(e(), "/amount", Some(json!(0))),
        with(e(), "/amount", Some(json!(1000000.01))),
        with(e(), "/amount", Some(json!(0.001))),
        with(e(), "/sequence", Some(json!(1.5))),
        with(e(), "/sequence", Some(json!(-1))),
        with(e(), "/counterparty/bic", Some(json!("X"))),
        with(e(), "/counterparty/email", Some(json!("not an email"))),
        with(e(), "/reference", Some(json!("ab"))),
        with(e(), "/counterparty/iban", Some(json!("x"))),
        with(
            e(),
            "/tags",
            Some(json!([
                "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"
            ])),
        ),
        with(e(), "/counterparty/name", None),
        with(e(), "/counterparty/name", Some(json!(""))),
        json!([]),
    ];
    (valid, invalid)
}

/// Best of three runs of `iters` calls, in nanoseconds per call.
fn time<R>(iters: u32, mut f: impl FnMut() -> R) -> f64 {
    for _ in 0..iters / 10 {
        black_box(f());
    }
    (0..3)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                black_box(f());
            }
            t.elapsed().as_nanos() as f64 / f64::from(iters)
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let schema_doc = event_schema();
    let ours = Schema::compile(&instance::lit(&schema_doc)).expect("our compile");
    let theirs = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema_doc)
        .expect("jsonschema compile");

    let (valid, invalid) = cases();
    let mut disagree = 0;
    for (want, docs) in [(true, &valid), (false, &invalid)] {
        for d in docs {
            let a = ours.validate("data", &d);
            let b = theirs.is_valid(d);
            if a.is_ok() != b || a.is_ok() != want {
                disagree += 1;
                println!("DISAGREE (expected valid={want}): ours={a:?} jsonschema={b}\n  {d}");
            }
        }
    }
    println!(
        "agreement: {} valid + {} invalid documents, {} disagreements",
        valid.len(),
        invalid.len(),
        disagree
    );
    println!("\nour messages for the invalid documents:");
    for d in &invalid {
        println!("  {}", ours.validate("data", &d).expect_err("invalid"));
    }

    let good = event();
    let bad = with(event(), "/counterparty/iban", Some(json!("x")));
    let text = good.to_string();
    assert!(ours.validate("data", &&good).is_ok() && theirs.is_valid(&good));

    const N: u32 = 200_000;
    let rows: Vec<(&str, f64)> = vec![
        (
            "ours: validate, valid event",
            time(N, || ours.validate("data", &&good)),
        ),
        (
            "jsonschema: is_valid, valid event",
            time(N, || theirs.is_valid(&good)),
        ),
        (
            "jsonschema: validate, valid event",
            time(N, || theirs.validate(&good).is_ok()),
        ),
        (
            "ours: validate, invalid event (message built)",
            time(N, || ours.validate("data", &&bad)),
        ),
        (
            "jsonschema: is_valid, invalid event",
            time(N, || theirs.is_valid(&bad)),
        ),
        (
            "jsonschema: validate, invalid event (message built)",
            time(N, || theirs.validate(&bad).map_err(|e| e.to_string())),
        ),
        (
            "jsonschema: iter_errors, invalid event (all messages)",
            time(N, || {
                theirs
                    .iter_errors(&bad)
                    .map(|e| e.to_string().len())
                    .sum::<usize>()
            }),
        ),
        (
            "serde_json: parse the event text into a Value",
            time(N, || {
                serde_json::from_str::<Value>(&text).expect("valid JSON")
            }),
        ),
        (
            "serde_json parse + jsonschema is_valid",
            time(N, || {
                let v: Value = serde_json::from_str(&text).expect("valid JSON");
                theirs.is_valid(&v)
            }),
        ),
    ];
    println!(
        "\n{N} iterations each, best of 3; event text is {} bytes",
        text.len()
    );
    println!("{:<56} {:>10}", "what", "ns/call");
    for (what, ns) in rows {
        println!("{what:<56} {ns:>10.0}");
    }
}
