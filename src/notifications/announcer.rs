//! A horizon announcement where no relay serves the database.
//!
//! An appender that readers waited for and that rolls back must announce
//! `{"horizon": p}` (`store::horizon`), but an aborted transaction cannot
//! NOTIFY. Where a relay serves the database it sends it; elsewhere the
//! ending backend starts this short-lived background process, which
//! connects to the same database, sends the payload in a transaction of its
//! own and exits. Rare (a reader waited, then the appender rolled back), so
//! a process per announcement is affordable; when none can be started
//! (`max_worker_processes` used up, or two announcements already under way)
//! the next notification or poll picks the events up.

use super::channel;
use crate::store::horizon;
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::ffi::{CStr, CString};

const KIND: &str = "pg_eventsource horizon announcement";

/// Starts the process for `payload` (at most 127 bytes) in this database,
/// unless two are running already (`horizon::claim_announcer`). Runs in a
/// transaction callback after the abort: registering a dynamic background
/// worker takes a lock and a slot, and raises no error.
pub(crate) fn start(payload: &CStr) -> bool {
    let Ok(text) = payload.to_str() else {
        return false;
    };
    if !horizon::claim_announcer() {
        return false;
    }
    // SAFETY: a plain read of a backend-global value.
    let db = unsafe { pg_sys::MyDatabaseId };
    let started = BackgroundWorkerBuilder::new(KIND)
        .set_type(KIND)
        .set_library("pg_eventsource")
        .set_function("es_horizon_announcer_main")
        .set_argument(Some(pg_sys::Datum::from(db.to_u32())))
        .set_extra(text)
        .enable_spi_access()
        .set_restart_time(None)
        .load_dynamic()
        .is_ok();
    if !started {
        horizon::release_announcer();
    }
    started
}

/// # Safety
/// Called by PostgreSQL when the announcement process exits.
#[pg_guard]
unsafe extern "C-unwind" fn announcer_exit(_code: std::ffi::c_int, _arg: pg_sys::Datum) {
    horizon::release_announcer();
}

/// The process: the database's oid as argument, the payload as extra.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn es_horizon_announcer_main(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGTERM);
    // SAFETY: registers a static callback with no argument; it runs once, at exit.
    unsafe { pg_sys::before_shmem_exit(Some(announcer_exit), pg_sys::Datum::from(0usize)) };
    let db = pg_sys::Oid::from(arg.value() as u32);
    let payload = CString::new(BackgroundWorker::get_extra()).expect("extra has no NUL");
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(db), None);
    BackgroundWorker::transaction(|| channel::send(&payload));
}
