//! The extension's own tables: looking them up, telling every backend that
//! one of them changed (so caches built from it are dropped), and who owns
//! them (the extension's owner, whose rights the store's work runs with).

use pgrx::pg_sys::{self, Oid};
use std::ffi::CStr;

/// The oid of table `es.<name>` (InvalidOid when it does not exist).
pub(crate) fn relation(name: &CStr) -> Oid {
    // SAFETY: name look-ups with NUL-terminated names; they return InvalidOid rather than fail.
    unsafe {
        let es = pg_sys::get_namespace_oid(c"es".as_ptr(), false);
        pg_sys::get_relname_relid(name.as_ptr(), es)
    }
}

/// Sends a relcache invalidation for `es.<name>`, delivered to every backend
/// when this transaction commits (and to this one at its next command).
pub(crate) fn changed(name: &CStr) {
    let oid = relation(name);
    if oid != Oid::INVALID {
        // SAFETY: queues an invalidation of an existing relation, delivered at commit.
        unsafe { pg_sys::CacheInvalidateRelcacheByRelid(oid) };
    }
}

/// The owner of the extension (who owns `es.events`).
pub(crate) fn extension_owner() -> Oid {
    // SAFETY: a syscache look-up whose tuple is released before returning; GETSTRUCT of a
    // pg_class tuple is a Form_pg_class.
    unsafe {
        let rel = relation(c"events");
        let tuple = pg_sys::SearchSysCache1(
            pg_sys::SysCacheIdentifier::RELOID as i32,
            pg_sys::Datum::from(rel),
        );
        if tuple.is_null() {
            pgrx::error!("es.events is missing");
        }
        let form = pg_sys::GETSTRUCT(tuple) as pg_sys::Form_pg_class;
        let owner = (*form).relowner;
        pg_sys::ReleaseSysCache(tuple);
        owner
    }
}
