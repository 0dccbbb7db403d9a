//! Settings (`SET es.max_event_size = '2MB'`, or in postgresql.conf).

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::CString;

/// Largest event payload accepted, in bytes.
pub(crate) static MAX_EVENT_SIZE: GucSetting<i32> = GucSetting::<i32>::new(1024 * 1024);

/// Whether committing appends send NOTIFY es_events.
pub(crate) static NOTIFY: GucSetting<bool> = GucSetting::<bool>::new(true);

/// Databases the background worker and the notification relay serve
/// (comma-separated; needs a restart).
pub(crate) static WORKER_DATABASES: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(None);
/// Whether appenders hand every notification to the relay, even when no
/// other notifying transaction is committing (then they notify themselves).
pub(crate) static NOTIFY_ALWAYS_RELAY: GucSetting<bool> = GucSetting::<bool>::new(false);
/// Size of each relay's queue of payloads, in kB (needs a restart).
pub(crate) static NOTIFY_RELAY_BUFFER: GucSetting<i32> = GucSetting::<i32>::new(256);

/// The names in `es.worker_databases`.
pub(crate) fn worker_databases() -> Vec<String> {
    WORKER_DATABASES
        .get()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
        .collect()
}
/// Events per es.run_projection call made by the worker.
pub(crate) static WORKER_BATCH_SIZE: GucSetting<i32> = GucSetting::<i32>::new(10000);
/// Longest wait between two catch-ups of the worker, in milliseconds.
pub(crate) static WORKER_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(1000);
/// Time between two es.apply_retention runs of the worker, in seconds (0: never).
pub(crate) static RETENTION_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(60);

pub(crate) fn init() {
    // A server-start setting can only be defined while the server starts,
    // i.e. when the library is preloaded; it means nothing otherwise.
    // SAFETY: a plain read of a backend-global flag.
    if unsafe { pgrx::pg_sys::process_shared_preload_libraries_in_progress } {
        GucRegistry::define_string_guc(
            c"es.worker_databases",
            c"Databases in which a background worker keeps async projections caught up and a relay sends the appenders' notifications (comma-separated).",
            c"Takes effect at server start, with pg_eventsource in shared_preload_libraries. Empty: no worker and no relay.",
            &WORKER_DATABASES,
            GucContext::Postmaster,
            GucFlags::default(),
        );
        GucRegistry::define_int_guc(
            c"es.notify_relay_buffer",
            c"Shared memory per relay for payloads waiting to be sent.",
            c"Takes effect at server start. Payloads that do not fit are folded into one summary notification.",
            &NOTIFY_RELAY_BUFFER,
            16,
            1024 * 1024,
            GucContext::Postmaster,
            GucFlags::UNIT_KB,
        );
    }
    GucRegistry::define_bool_guc(
        c"es.notify",
        c"Whether a transaction that appended events sends NOTIFY es_events when it commits.",
        c"In a database with a notification relay (pg_eventsource preloaded, the database in es.worker_databases), while another notifying transaction is committing, the relay sends it just after the commit, from its own process. Elsewhere the transaction sends it itself, and PostgreSQL then commits notifying transactions one at a time (a database-wide lock from queueing the notification until the commit is done), which limits concurrent append throughput to about one commit flush at a time. Off: no notification.",
        &NOTIFY,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"es.notify_always_relay",
        c"Whether every notification goes through the database's relay, where one is alive.",
        c"Off (the default): a transaction notifies itself when no other notifying transaction is committing (no wait, and cheaper than waking the relay), and hands its notification to the relay otherwise. On: always the relay (every notification then comes from the relay's process).",
        &NOTIFY_ALWAYS_RELAY,
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
        c"es.retention_interval",
        c"Time between two es.apply_retention runs of the background worker (0: the worker applies no retention).",
        c"",
        &RETENTION_INTERVAL,
        0,
        86_400,
        GucContext::Sighup,
        GucFlags::UNIT_S,
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
