//! Settings (`SET es.max_event_size = '2MB'`, or in postgresql.conf).

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::CString;

/// Largest event payload accepted, in bytes.
pub static MAX_EVENT_SIZE: GucSetting<i32> = GucSetting::<i32>::new(1024 * 1024);

/// Whether committing appends send NOTIFY es_events.
pub static NOTIFY: GucSetting<bool> = GucSetting::<bool>::new(true);

/// Databases the background worker serves (comma-separated; needs a restart).
pub static WORKER_DATABASES: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// Events per es.run_projection call made by the worker.
pub static WORKER_BATCH_SIZE: GucSetting<i32> = GucSetting::<i32>::new(10000);
/// Longest wait between two catch-ups of the worker, in milliseconds.
pub static WORKER_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(1000);

pub fn init() {
    // A server-start setting can only be defined while the server starts,
    // i.e. when the library is preloaded; it means nothing otherwise.
    if unsafe { pgrx::pg_sys::process_shared_preload_libraries_in_progress } {
        GucRegistry::define_string_guc(
            c"es.worker_databases",
            c"Databases in which a background worker keeps async projections caught up (comma-separated).",
            c"Takes effect at server start, with pg_eventsource in shared_preload_libraries. Empty: no worker.",
            &WORKER_DATABASES,
            GucContext::Postmaster,
            GucFlags::default(),
        );
    }
    GucRegistry::define_bool_guc(
        c"es.notify",
        c"Whether a transaction that appended events sends NOTIFY es_events when it commits.",
        c"PostgreSQL commits notifying transactions one at a time (a database-wide lock from queueing the notification until the commit is done), so with many concurrent writers this limits append throughput to about one commit flush at a time. Turn it off when consumers poll instead of listening.",
        &NOTIFY,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"es.worker_batch_size",
        c"Events the background worker hands to a projection per transaction.",
        c"",
        &WORKER_BATCH_SIZE,
        1,
        1_000_000,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"es.worker_interval",
        c"Longest time the background worker waits between catch-ups when no append wakes it.",
        c"",
        &WORKER_INTERVAL,
        10,
        3_600_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"es.max_event_size",
        c"Largest event payload (data) that es.append_event and es.append_events accept.",
        c"Appends whose data is larger fail with SQLSTATE 54000 and write nothing.",
        &MAX_EVENT_SIZE,
        1,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_BYTE,
    );
}
