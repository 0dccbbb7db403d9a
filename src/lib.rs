//! pg_eventsource: an event store inside PostgreSQL.
//!
//! Tables, indexes, guards and the read functions are plain SQL under `sql/`;
//! Rust holds what earns it: the append path (`append`), global positions
//! that make `es.read_all` gap-free (`position`), and binary jsonb access.

use pgrx::prelude::*;

mod after_insert;
mod append;
mod call;
mod catalog;
mod chain;
mod decimal;
mod definitions;
mod event;
mod fold;
mod guc;
mod ids;
mod inline;
mod jsonb;
mod materialize;
mod notify;
mod position;
mod projection;
mod reducer;
mod relay;
mod roles;
mod snapshot;
mod spi;
mod validate;
mod value;
mod version;
mod worker;

#[cfg(any(test, feature = "pg_test"))]
mod test_support;
#[cfg(any(test, feature = "pg_test"))]
mod tests;
#[cfg(any(test, feature = "pg_test"))]
mod tests_aggregates;
#[cfg(any(test, feature = "pg_test"))]
mod tests_operations;
#[cfg(any(test, feature = "pg_test"))]
mod tests_privileges;
#[cfg(any(test, feature = "pg_test"))]
mod tests_projections;
#[cfg(any(test, feature = "pg_test"))]
mod tests_relay;
#[cfg(any(test, feature = "pg_test"))]
mod tests_subscriptions;
#[cfg(test)]
pub use tests::pg_test;

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
    "../sql/03_read.sql",
    name = "read",
    requires = [
        "tables",
        position::system_identifier_sql,
        validate::check_stream_id
    ]
);
extension_sql_file!(
    "../sql/05_aggregates.sql",
    name = "aggregates",
    requires = [
        "tables",
        "read",
        definitions::definitions_changed,
        validate::check_time
    ]
);
extension_sql_file!(
    "../sql/06_projections.sql",
    name = "projections",
    requires = ["tables", "read", "aggregates"]
);
extension_sql_file!(
    "../sql/07_subscriptions.sql",
    name = "subscriptions",
    requires = ["tables", "read"]
);
extension_sql_file!(
    "../sql/08_stats.sql",
    name = "stats",
    requires = ["projections", "subscriptions"]
);
extension_sql_file!(
    "../sql/09_verify.sql",
    name = "verify",
    requires = ["projections", "subscriptions", "aggregates"]
);
extension_sql_file!(
    "../sql/10_privileges.sql",
    name = "privileges",
    requires = ["append", "projections", "subscriptions", "stats"]
);
extension_sql_file!("../sql/04_guards.sql", name = "guards", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // Error details sent to clients never carry a Rust backtrace, whatever
    // RUST_BACKTRACE the server was started with: pgrx captures one into
    // every error that passes through Rust, and `RUST_LIB_BACKTRACE=0`
    // turns that capture off (it takes precedence over RUST_BACKTRACE).
    // Set before any capture, in the backend's only thread (or in the
    // postmaster when preloaded, whose children inherit it).
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    guc::init();
    notify::init();
    worker::register();
    relay::init();
}
