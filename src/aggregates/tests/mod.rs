//! In-backend tests of aggregates (`cargo pgrx test`): definitions, native
//! reducers, fold functions, snapshots, es.load / es.load_at / es.fold.
//! Each test runs in its own rolled-back transaction, in parallel with the
//! others and in one database: every test uses its own stream ids and its
//! own stream types (suffix `_aNN`), since definitions are per stream type.
//!
//! One file per topic; the helpers they share are here.

mod bad_input;
mod fold_aggregate;
mod fold_functions;
mod fold_unordered;
mod index_reads;
mod property;
mod reducers;
mod snapshots;
mod time_travel;
#[cfg(test)]
mod unit;

use crate::test_harness::*;

fn snapshots_of(stream: &str) -> String {
    one_text(&format!(
        "SELECT coalesce(string_agg(version::text, ',' ORDER BY revision, version), '')
           FROM es.snapshots WHERE stream_id = '{stream}'"
    ))
}

/// jsonb's canonical text of a JSON document (keys sorted, numbers kept
/// with their scale).
fn canon(json: &str) -> String {
    one_text(&format!("SELECT $j${json}$j$::jsonb::text"))
}

fn define_reducers(stream_type: &str, reducers: &str, initial: &str, every: i32) {
    run(&format!(
        "SELECT es.define_aggregate('{stream_type}', reducers => $r${reducers}$r$,
                initial_state => $i${initial}$i$, snapshot_every => {every})"
    ));
}

fn append(stream: &str, event_type: &str, data: &str) -> i64 {
    one_i64(&format!(
        "SELECT es.append_event('{stream}', '{event_type}', $d${data}$d$)"
    ))
}

/// "version state" of es.load(stream, at).
fn load(stream: &str, at: Option<i64>) -> String {
    let at = at.map_or("NULL".to_owned(), |v| v.to_string());
    one_text(&format!(
        "SELECT version || ' ' || state::text FROM es.load('{stream}', {at})"
    ))
}

fn load_state(stream: &str) -> String {
    one_text(&format!("SELECT state::text FROM es.load('{stream}')"))
}

/// es.fold over the stream's events up to `upto` (no snapshots involved).
fn fold_upto(stream: &str, upto: i64) -> Option<String> {
    opt_text(&format!(
        "SELECT es.fold(e ORDER BY e.version)::text FROM es.events e
          WHERE e.stream_id = '{stream}' AND e.version <= {upto}"
    ))
}

fn assert_load(stream: &str, at: Option<i64>, version: i64, json: &str) {
    assert_eq!(
        load(stream, at),
        format!("{version} {}", canon(json)),
        "es.load('{stream}', {at:?})"
    );
}

/// An event position of this transaction that appends never hand out
/// (they count from 1): for events written directly, as a restore does.
fn raw_position(n: i64) -> String {
    format!(
        "(((pg_current_xact_id()::text::bigint + (SELECT xid_offset FROM es.position_base
             WHERE system_identifier = es._system_identifier())) << 20) | {})",
        900_000 + n
    )
}

/// Events to append: (event type, data).
type Events<'a> = &'a [(&'a str, &'a str)];

const BANK: &str = r#"{
    "AccountOpened": [{"set": "owner", "from": "$.owner"},
                      {"set": "balance", "value": 0},
                      {"set": "isActive", "value": true}],
    "MoneyDeposited": [{"add": "balance", "from": "$.amount"}],
    "MoneyWithdrawn": [{"sub": "balance", "from": "$.amount"}],
    "AccountClosed": [{"set": "isActive", "value": false}],
    "*": [{"inc": "transactionCount"}]
}"#;
