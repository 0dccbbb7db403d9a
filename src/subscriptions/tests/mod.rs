//! In-backend tests of subscriptions (`cargo pgrx test`): es.subscribe,
//! es.poll, es.ack, es.unsubscribe, consumer groups, es.subscription_status,
//! row-level security. Each test runs in its own rolled-back transaction, in
//! parallel with the others: every test uses its own consumers (`sNN-...`),
//! streams and event positions.
//!
//! Events appended in the test's own transaction lie above the read horizon
//! (the transaction is still open), so es.poll rightly holds them back. To
//! have events that earlier, committed transactions left, `history` writes
//! rows straight into es.events at small positions (base + 1, base + 2, ...):
//! real positions are at least 3 << 20 and the horizon lies above them all.
//!
//! One file per topic; the helpers they share are here.

mod groups;
mod poll_and_ack;
mod status_and_privileges;
mod subscribe;

use crate::test_harness::*;
use pgrx::prelude::*;

/// Writes events at positions base+1, base+2, ... as committed history,
/// with their streams' rows (streams must be new).
/// Each item is (stream_id, event_type); the stream type is the part of
/// stream_id before its first '-'. Returns their positions.
fn history(base: i64, events: &[(&str, &str)]) -> Vec<i64> {
    let mut versions = std::collections::HashMap::new();
    let mut rows = Vec::new();
    let mut positions = Vec::new();
    for (i, (stream, event_type)) in events.iter().enumerate() {
        let version = versions.entry(*stream).or_insert(0_i64);
        *version += 1;
        let position = base + 1 + i as i64;
        let stream_type = stream.split('-').next().unwrap();
        rows.push(format!(
            "({position}, '{stream}', '{stream_type}', {version}, '{event_type}', '{{\"i\": {i}}}', es.uuid_generate_v7())"
        ));
        positions.push(position);
    }
    run(&format!(
        "INSERT INTO es.events (global_position, stream_id, stream_type, version, event_type, data, event_id)
         VALUES {}",
        rows.join(", ")
    ));
    // and the streams' rows, so that appends after them get the next version
    run(&format!(
        "INSERT INTO es.streams (stream_id, stream_type, version)
         SELECT stream_id, min(stream_type), max(version) FROM es.events
          WHERE global_position BETWEEN {} AND {} GROUP BY stream_id",
        base + 1,
        base + events.len() as i64
    ));
    positions
}

/// "stream/version" of each event a poll returns, in the order returned.
fn polled(call: &str) -> String {
    one_text(&format!(
        "SELECT coalesce(string_agg(p.stream_id || '/' || p.version, ' '), '') FROM {call} p"
    ))
}

fn position_of(consumer: &str) -> i64 {
    one_i64(&format!(
        "SELECT position FROM es.subscriptions WHERE consumer = '{consumer}'"
    ))
}

fn subscriptions_named(pattern: &str) -> i64 {
    one_i64(&format!(
        "SELECT count(*) FROM es.subscriptions WHERE consumer LIKE '{pattern}'"
    ))
}

/// The HINT of the error a PL/pgSQL statement raises ("" if none).
fn hint_of(stmt: &str) -> String {
    run(&format!(
        "DO $do$ DECLARE h text; BEGIN {stmt}; PERFORM set_config('es_test.hint', '', true);
         EXCEPTION WHEN OTHERS THEN
           GET STACKED DIAGNOSTICS h = PG_EXCEPTION_HINT;
           PERFORM set_config('es_test.hint', h, true); END $do$"
    ));
    one_text("SELECT current_setting('es_test.hint')")
}
