//! The channel `es_events`: sending a notification on it, and the summary
//! notification that stands for payloads the relay could not keep.

use pgrx::pg_sys;
use std::ffi::CStr;

const CHANNEL: &CStr = c"es_events";

unsafe extern "C-unwind" {
    /// PostgreSQL's NOTIFY (commands/async.c); pgrx does not bind it.
    fn Async_Notify(channel: *const std::ffi::c_char, payload: *const std::ffi::c_char);
}

/// NOTIFY es_events with `payload` in the current transaction.
pub(crate) fn send(payload: &CStr) {
    // SAFETY: both strings are NUL-terminated and outlive the call; pg_guard_ffi_boundary turns
    // an error into a Rust panic.
    unsafe {
        pg_sys::ffi::pg_guard_ffi_boundary(|| Async_Notify(CHANNEL.as_ptr(), payload.as_ptr()))
    };
}

/// The relay's one notification for transactions whose payloads did not fit
/// in its FIFO: exact count and position range, no lists.
pub(crate) fn overflow_payload(events: i64, first: i64, last: i64) -> String {
    format!(
        "{{\"events\": {events}, \"first_position\": {first}, \"last_position\": {last}, \
         \"streams\": [], \"streams_truncated\": true, \"stream_types\": [], \
         \"event_types\": []}}"
    )
}
