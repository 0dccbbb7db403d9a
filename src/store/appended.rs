//! What this transaction appended, by subtransaction: a rolled-back
//! subtransaction takes its records with it, a committed one hands them to
//! its parent. The commit's notification (`notifications::notify`) takes
//! them at PRE_COMMIT.

use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::RefCell;

pub(crate) struct Record {
    pub(crate) subxact: pg_sys::SubTransactionId,
    pub(crate) stream_id: String,
    pub(crate) stream_type: String,
    pub(crate) event_types: Vec<String>,
    pub(crate) first: i64,
    pub(crate) count: i64,
}

thread_local! {
    static RECORDS: RefCell<Vec<Record>> = const { RefCell::new(Vec::new()) };
}

/// Registers the subtransaction callback (from `_PG_init`).
pub(crate) fn init() {
    // SAFETY: registers a static function; PostgreSQL keeps the pointer.
    unsafe { pg_sys::RegisterSubXactCallback(Some(subxact_event), std::ptr::null_mut()) };
}

/// Notes an append of `count` events at positions `first..first + count`
/// (nothing when `es.notify` is off).
pub(crate) fn record(
    stream_id: &str,
    stream_type: &str,
    event_types: Vec<String>,
    first: i64,
    count: i64,
) {
    if !crate::settings::NOTIFY.get() {
        return;
    }
    // SAFETY: a plain read of the current subtransaction's id.
    let subxact = unsafe { pg_sys::GetCurrentSubTransactionId() };
    RECORDS.with(|r| {
        r.borrow_mut().push(Record {
            subxact,
            stream_id: stream_id.to_owned(),
            stream_type: stream_type.to_owned(),
            event_types,
            first,
            count,
        })
    });
}

/// The records so far, leaving none (at PRE_COMMIT, commit and abort).
pub(crate) fn take() -> Vec<Record> {
    RECORDS.with(|r| std::mem::take(&mut *r.borrow_mut()))
}

/// # Safety
/// Called by PostgreSQL as a registered subtransaction callback.
#[pg_guard]
unsafe extern "C-unwind" fn subxact_event(
    event: pg_sys::SubXactEvent::Type,
    my: pg_sys::SubTransactionId,
    parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    // Subtransaction ids grow; when one ends, every record at or above its
    // id belongs to it or to one of its already-ended children.
    match event {
        pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB => {
            RECORDS.with(|r| r.borrow_mut().retain(|x| x.subxact < my));
        }
        pg_sys::SubXactEvent::SUBXACT_EVENT_COMMIT_SUB => RECORDS.with(|r| {
            for x in r.borrow_mut().iter_mut().filter(|x| x.subxact >= my) {
                x.subxact = parent;
            }
        }),
        _ => {}
    }
}
