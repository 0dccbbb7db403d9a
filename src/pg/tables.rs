//! The extension's own tables: looking them up, telling every backend that
//! one of them changed (so caches built from it are dropped), and who owns
//! them (the extension's owner, whose rights the store's work runs with).

use pgrx::pg_sys::{self, Oid};
use pgrx::prelude::*;
use std::cell::{Cell, RefCell};
use std::ffi::{CStr, CString};

// The oids of `es.<name>` looked up so far in this backend. A look-up is two
// syscache searches (the schema, then the name), about 650 instructions;
// es.load makes a dozen and an append a few, so they are kept. Any change to
// a pg_class or pg_namespace row (the syscache invalidations PostgreSQL sends
// for it, here and in every backend, also when a transaction that made one
// aborts) marks the list stale, and it is dropped at the next look-up: a
// dropped and re-created table, or an extension re-installed, is found again.
thread_local! {
    static NAMES: RefCell<Vec<(CString, Oid)>> = const { RefCell::new(Vec::new()) };
    /// Set by the invalidation callback (a Cell: the callback can run inside
    /// a look-up, while PostgreSQL reads its caches).
    static STALE: Cell<bool> = const { Cell::new(false) };
    static CALLBACK_REGISTERED: Cell<bool> = const { Cell::new(false) };
}

/// # Safety
/// Called by PostgreSQL as a registered syscache invalidation callback: it
/// only sets a flag (no allocation, no error).
#[pg_guard]
unsafe extern "C-unwind" fn catalog_changed(_arg: pg_sys::Datum, _cacheid: i32, _hash: u32) {
    STALE.with(|s| s.set(true));
}

/// The oid of table (or index) `es.<name>` (InvalidOid when it does not exist).
pub(crate) fn relation(name: &CStr) -> Oid {
    if STALE.with(|s| s.replace(false)) {
        NAMES.with(|n| n.borrow_mut().clear());
    } else if let Some(oid) = NAMES.with(|n| {
        n.borrow()
            .iter()
            .find(|(k, _)| k.as_c_str() == name)
            .map(|(_, o)| *o)
    }) {
        return oid;
    }
    if !CALLBACK_REGISTERED.with(|c| c.replace(true)) {
        // SAFETY: registers a static callback once per backend, before the first oid is
        // kept; PostgreSQL keeps the pointer for the backend's life.
        unsafe {
            for cache in [
                pg_sys::SysCacheIdentifier::RELNAMENSP,
                pg_sys::SysCacheIdentifier::NAMESPACENAME,
            ] {
                pg_sys::CacheRegisterSyscacheCallback(
                    cache as i32,
                    Some(catalog_changed),
                    pg_sys::Datum::from(0usize),
                );
            }
        }
    }
    // SAFETY: name look-ups with NUL-terminated names; they return InvalidOid rather than fail
    // (except for a missing schema es, as before the cache).
    let oid = unsafe {
        let es = pg_sys::get_namespace_oid(c"es".as_ptr(), false);
        pg_sys::get_relname_relid(name.as_ptr(), es)
    };
    // (an invalidation during the look-up itself leaves STALE set: the next
    // look-up drops this entry with the rest)
    NAMES.with(|n| n.borrow_mut().push((name.to_owned(), oid)));
    oid
}

/// Whether the extension is installed in this database and has table
/// `es.<name>` (a database not updated yet may lack a newer one). For the
/// background processes, which connect before anyone may have run CREATE
/// EXTENSION and ask every round: catalog look-ups, no query to parse and plan.
pub(crate) fn installed_with(name: &CStr) -> bool {
    // SAFETY: name look-ups with NUL-terminated names; missing_ok makes them return InvalidOid.
    let schema = unsafe {
        pg_sys::get_extension_oid(c"pg_eventsource".as_ptr(), true) != Oid::INVALID
            && pg_sys::get_namespace_oid(c"es".as_ptr(), true) != Oid::INVALID
    };
    schema && relation(name) != Oid::INVALID
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
