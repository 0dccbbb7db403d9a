//! Looking up the extension's own tables, and telling every backend that
//! one of them changed (so caches built from it are dropped).

use pgrx::pg_sys::{self, Oid};
use std::ffi::CStr;

/// The oid of table `es.<name>` (InvalidOid when it does not exist).
pub fn relation(name: &CStr) -> Oid {
    unsafe {
        let es = pg_sys::get_namespace_oid(c"es".as_ptr(), false);
        pg_sys::get_relname_relid(name.as_ptr(), es)
    }
}

/// Sends a relcache invalidation for `es.<name>`, delivered to every backend
/// when this transaction commits (and to this one at its next command).
pub fn changed(name: &CStr) {
    let oid = relation(name);
    if oid != Oid::INVALID {
        unsafe { pg_sys::CacheInvalidateRelcacheByRelid(oid) };
    }
}
