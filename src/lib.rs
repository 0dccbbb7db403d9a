//! pg_eventsource: an event store inside PostgreSQL.
//!
//! Tables, indexes, guards, grants, views and the read functions are plain
//! SQL under `sql/`, loaded in order below; Rust holds what earns it: the
//! append path, global positions that make `es.read_all` gap-free, folds and
//! reducers, the snapshot and projection trigger, notifications. The module
//! map and how an append flows: `docs/architecture.md`.

use pgrx::prelude::*;

// Layers, bottom up; each module folder's mod.rs says what it may import.
mod aggregates; // definitions, reducers, folds, snapshots
mod compat; // other stores' APIs over ours: Message DB's write_message
mod evolution; // event schemas checked on append, upcasting on read
mod lifecycle; // the audited exceptions to append-only: delete, truncate, redact, archive
mod notifications; // NOTIFY es_events: transaction callback, relay
mod operations;
mod pg; // PostgreSQL glue that knows nothing about events
mod projections; // registry, catch-up, inline, materializer, worker
mod router; // what the router extension (router/, over PL/Proxy) asks of this library
mod settings; // the extension's settings (es.*)
mod store; // append, positions, versions, ids, rows, the hash chain
mod subscriptions; // SQL only (sql/08_subscriptions.sql); its tests // SQL only (stats, verify, privileges); their tests

#[cfg(any(test, feature = "pg_test"))]
mod test_harness;
#[cfg(test)]
pub use test_harness::pg_test;

::pgrx::pg_module_magic!(name, version);

/// The schema everything lives in. `sql/01_tables.sql` creates it (so that it
/// belongs to the extension); this declaration lets `#[pg_extern(schema = "es")]`
/// name it.
#[pg_schema]
mod es {}

extension_sql_file!("../sql/01_tables.sql", name = "tables", bootstrap);
extension_sql_file!(
    "../sql/02_append.sql",
    name = "append",
    requires = ["tables"]
);
extension_sql_file!(
    "../sql/03_evolution.sql",
    name = "evolution",
    requires = ["tables"]
);
extension_sql_file!(
    "../sql/04_read.sql",
    name = "read",
    requires = [
        "tables",
        "evolution",
        store::position::system_identifier_sql,
        args::check_stream_id
    ]
);
extension_sql_file!(
    "../sql/05_horizon.sql",
    name = "horizon",
    requires = ["tables", "read", store::position::system_identifier_sql]
);
extension_sql_file!(
    "../sql/06_aggregates.sql",
    name = "aggregates",
    requires = [
        "tables",
        "horizon",
        aggregates::definitions::definitions_changed,
        args::check_time
    ]
);
extension_sql_file!(
    "../sql/07_projections.sql",
    name = "projections",
    requires = ["tables", "horizon", "aggregates"]
);
extension_sql_file!(
    "../sql/08_subscriptions.sql",
    name = "subscriptions",
    requires = ["tables", "horizon"]
);
extension_sql_file!(
    "../sql/09_stats.sql",
    name = "stats",
    requires = ["projections", "subscriptions"]
);
extension_sql_file!(
    "../sql/10_verify.sql",
    name = "verify",
    requires = ["projections", "subscriptions", "aggregates"]
);
extension_sql_file!(
    "../sql/11_privileges.sql",
    name = "privileges",
    requires = ["append", "projections", "subscriptions", "stats"]
);
extension_sql_file!(
    "../sql/12_lifecycle.sql",
    name = "lifecycle",
    requires = ["aggregates", "projections", "privileges", "evolution"]
);
// Loaded last: its triggers, revokes and the position offset row refer to
// objects of every other file.
extension_sql_file!("../sql/13_cdc.sql", name = "cdc", requires = ["tables"]);
extension_sql_file!("../sql/14_guards.sql", name = "guards", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // Error details sent to clients never carry a Rust backtrace, whatever
    // RUST_BACKTRACE the server was started with: pgrx captures one into
    // every error that passes through Rust, and `RUST_LIB_BACKTRACE=0`
    // turns that capture off (it takes precedence over RUST_BACKTRACE).
    // Set before any capture, in the backend's only thread (or in the
    // postmaster when preloaded, whose children inherit it).
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    settings::init();
    store::appended::init();
    store::append::on_append(store::append::AfterAppend {
        wants_row: projections::after_append::wants_row,
        run: projections::after_append::after_append,
    });
    store::horizon::init();
    notifications::notify::init();
    projections::worker::register();
    notifications::relay::init();
}
