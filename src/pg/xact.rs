//! Subtransactions and memory contexts.

use pgrx::pg_sys::{self, Datum};
use pgrx::prelude::*;

/// A copy of varlena datum `d` (detoasted) in memory context `cxt`.
pub(crate) fn copy_into(cxt: pg_sys::MemoryContext, d: Datum) -> Datum {
    // SAFETY: switches to `cxt` for the copy and back; `d` is a non-null varlena datum (the
    // caller's contract).
    unsafe {
        let old = pg_sys::MemoryContextSwitchTo(cxt);
        let c = pg_sys::pg_detoast_datum_copy(d.cast_mut_ptr());
        pg_sys::MemoryContextSwitchTo(old);
        Datum::from(c)
    }
}

/// The current memory context.
pub(crate) fn current_context() -> pg_sys::MemoryContext {
    // SAFETY: a plain read of a backend-global pointer.
    unsafe { pg_sys::CurrentMemoryContext }
}

/// A new memory context (default sizes) under `parent`; its owner deletes
/// or resets it.
pub(crate) fn new_context(
    parent: pg_sys::MemoryContext,
    name: &'static std::ffi::CStr,
) -> pg_sys::MemoryContext {
    // SAFETY: `parent` is a live context (the caller's contract: the
    // current one, or TopMemoryContext); `name` is a static C string.
    unsafe {
        pg_sys::AllocSetContextCreateInternal(
            parent,
            name.as_ptr(),
            pg_sys::ALLOCSET_DEFAULT_MINSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_INITSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
        )
    }
}

/// Runs `f` in a subtransaction: its writes are kept when it returns, rolled
/// back when it raises an error, which is returned as text.
pub(crate) fn in_subtransaction(f: impl FnOnce()) -> Result<(), String> {
    // SAFETY: a subtransaction begun here is released or rolled back here, and the memory
    // context and resource owner restored, as PL/pgSQL does.
    unsafe {
        let cxt = pg_sys::CurrentMemoryContext;
        let owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(cxt);
        let r = PgTryBuilder::new(std::panic::AssertUnwindSafe(|| {
            f();
            Ok(())
        }))
        .catch_others(|e| {
            Err(match e {
                pg_sys::panic::CaughtError::PostgresError(r)
                | pg_sys::panic::CaughtError::ErrorReport(r) => {
                    format!(
                        "{}: {}",
                        crate::pg::error::sqlstate(r.sql_error_code()),
                        r.message()
                    )
                }
                pg_sys::panic::CaughtError::RustPanic { ereport, .. } => {
                    format!("XX000: {}", ereport.message())
                }
            })
        })
        .execute();
        pg_sys::MemoryContextSwitchTo(cxt);
        if r.is_ok() {
            pg_sys::ReleaseCurrentSubTransaction();
        } else {
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
        }
        pg_sys::MemoryContextSwitchTo(cxt);
        pg_sys::CurrentResourceOwner = owner;
        r
    }
}
