//! Raising errors with a chosen SQLSTATE (pgrx's `Err` is always 22000,
//! `error!` XX000), and reading one back.

use pgrx::pg_sys;
use pgrx::prelude::*;

pub(crate) fn fail(code: PgSqlErrorCode, msg: String) -> ! {
    ereport!(ERROR, code, msg);
}

pub(crate) fn fail_hint(code: PgSqlErrorCode, msg: String, hint: &str) -> ! {
    pgrx::pg_sys::panic::ErrorReport::new(code, msg, "pg_eventsource")
        .set_hint(hint)
        .report(PgLogLevel::ERROR);
    unreachable!()
}

pub(crate) fn sqlstate(code: PgSqlErrorCode) -> String {
    // SAFETY: unpack_sql_state returns a pointer to a static NUL-terminated buffer, copied out
    // at once.
    unsafe { std::ffi::CStr::from_ptr(pg_sys::unpack_sql_state(code as i32)) }
        .to_string_lossy()
        .into_owned()
}
