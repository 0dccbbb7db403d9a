//! Registering background processes (from `_PG_init`, while the server
//! starts with the library preloaded), and what each reports to the
//! cumulative statistics as it runs.

use pgrx::bgworkers::BackgroundWorkerBuilder;
use pgrx::pg_sys;
use std::time::Duration;

/// Registers one background process of `kind` per database in `dbs`: its
/// database name as extra, its index in `dbs` as argument, restarted 5 s
/// after it exits with code 1 (the projection worker and the notification
/// relay both do so when told to stop).
pub(crate) fn register_each(kind: &str, function: &str, dbs: &[String]) {
    for (i, db) in dbs.iter().enumerate() {
        BackgroundWorkerBuilder::new(&format!("{kind} ({db})"))
            .set_type(kind)
            .set_library("pg_eventsource")
            .set_function(function)
            .set_argument(Some(pg_sys::Datum::from(i)))
            .set_extra(db)
            .enable_spi_access()
            .set_restart_time(Some(Duration::from_secs(5)))
            .load();
    }
}

/// Sends what the process's transactions wrote and removed to the
/// cumulative statistics (`pg_stat_user_tables`), at most once a second, as
/// a backend does when idle. A background process sends nothing otherwise
/// until it exits: autovacuum decides from these counts. Call it between
/// transactions.
pub(crate) fn report_stats() {
    // SAFETY: called from a background process's main loop, outside a transaction, as
    // PostgreSQL's own processes do; with `force` false it returns at once when the last
    // report is less than a second old.
    unsafe { pg_sys::pgstat_report_stat(false) };
}
