//! Whose rights a piece of work runs with: switching roles, the sandbox
//! for code that users wrote, pinned `search_path`s, privilege checks.
//!
//! The projection functions are SECURITY INVOKER: they read and write the
//! extension's own tables as the extension's owner (`store::catalog`), and
//! call each handler as the role that created its projection, so a handler
//! never runs with more rights than its creator had.

use crate::pg::error::fail;
use pgrx::pg_sys::{self, Oid};
use pgrx::prelude::*;

/// The role running the current statement.
pub(crate) fn current() -> Oid {
    // SAFETY: a plain read of the backend's current user id.
    unsafe { pg_sys::GetUserId() }
}

struct Restore(Oid, i32);

impl Drop for Restore {
    fn drop(&mut self) {
        // SAFETY: restores exactly the values read by GetUserIdAndSecContext in `as_user`.
        unsafe { pg_sys::SetUserIdAndSecContext(self.0, self.1) };
    }
}

/// Runs `f` as role `uid`. An error inside `f` that aborts the (sub)transaction
/// also restores the previous role: PostgreSQL saves it at transaction start.
pub(crate) fn as_user<R>(uid: Oid, f: impl FnOnce() -> R) -> R {
    let mut old_uid = Oid::INVALID;
    let mut old_sec = 0;
    // SAFETY: reads the current role and context, sets the new role; `Restore` puts the old
    // ones back.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut old_uid, &mut old_sec);
        if old_uid == uid {
            return f();
        }
        pg_sys::SetUserIdAndSecContext(uid, old_sec | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32);
    }
    let _restore = Restore(old_uid, old_sec);
    f()
}

/// Fails with 42501 unless role `member` has the privileges of `owner`.
pub(crate) fn require_member(member: Oid, owner: Oid, what: &str) {
    // SAFETY: a catalog check with two role oids; no pointers.
    if !unsafe { pg_sys::has_privs_of_role(member, owner) } {
        fail(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("must be a member of the role that owns {what}"),
        );
    }
}

/// Fails with 42501 unless the current role may execute function `proc`.
pub(crate) fn require_execute(proc: Oid, what: &str) {
    // SAFETY: an ACL check of a function oid by the current user; no pointers.
    let ok = unsafe {
        pg_sys::pg_proc_aclcheck(proc, current(), pg_sys::ACL_EXECUTE as pg_sys::AclMode)
    } == pg_sys::AclResult::ACLCHECK_OK;
    if !ok {
        fail(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("permission denied for {what}"),
        );
    }
}

/// The search_path the extension's own statements run with, and user code
/// that has no recorded path of its own (fold functions, materialized tables).
pub(crate) const PINNED_PATH: &std::ffi::CStr = c"pg_catalog, pg_temp";

/// Runs `f` with `search_path` set to `path`, for the extension's own
/// statements. Skipped when it is already set. Settings changed inside `f`
/// are kept (like a function's SET clause): only the extension's code runs
/// here; user code goes through [`sandboxed`], which rolls its changes back.
/// An error inside `f` that aborts the (sub)transaction restores the setting.
pub(crate) fn with_search_path<R>(path: &std::ffi::CStr, f: impl FnOnce() -> R) -> R {
    if search_path_is(path) {
        return f();
    }
    // SAFETY: a new GUC nest level is closed by the AtEOXact_GUC below, or,
    // when `f` raises an error, by the (sub)transaction abort.
    let nest = unsafe { pg_sys::NewGUCNestLevel() };
    set_search_path(path);
    let r = f();
    // SAFETY: closes the level opened above; `true` keeps what `f` set
    // outside of SAVE actions, as fmgr does for a SET clause.
    unsafe { pg_sys::AtEOXact_GUC(true, nest) };
    r
}

/// Whether `search_path` is `path` already (setting it costs a catalog
/// look-up of every schema in it at the next name resolution).
fn search_path_is(path: &std::ffi::CStr) -> bool {
    // SAFETY: namespace_search_path is the GUC's current string (or null),
    // owned by guc.c; it is only read here, in the backend's one thread.
    let current = unsafe { pg_sys::namespace_search_path };
    // SAFETY: `current` is the GUC's non-null NUL-terminated string, owned by guc.c.
    !current.is_null() && unsafe { std::ffi::CStr::from_ptr(current) } == path
}

fn set_search_path(path: &std::ffi::CStr) {
    // SAFETY: both strings are NUL-terminated and outlive the call; the
    // setting is saved at the current nest level (GUC_ACTION_SAVE).
    unsafe {
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            path.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
    }
}

/// Runs user code `f` (a handler, reset or fold function, statements on a
/// table a user owns) the way PostgreSQL runs untrusted code during
/// maintenance (REFRESH MATERIALIZED VIEW, VACUUM's index expressions):
/// as role `owner`, as a security-restricted operation (no temp objects, no
/// SET ROLE, no deferred triggers, no cursors WITH HOLD), with `search_path`
/// set to `path`, inside a GUC nest level that is rolled back afterwards,
/// so no setting it changes (even with `is_local` false) reaches the
/// extension's statements or the caller's session.
pub(crate) fn sandboxed<R>(owner: Oid, path: &std::ffi::CStr, f: impl FnOnce() -> R) -> R {
    let mut uid = Oid::INVALID;
    let mut sec = 0;
    // SAFETY: plain reads and writes of the backend's user id and security
    // context; `Restore` puts the saved values back on every exit.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut uid, &mut sec);
        pg_sys::SetUserIdAndSecContext(
            owner,
            sec | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
    }
    let _restore = Restore(uid, sec);
    // SAFETY: closed below when `f` returns; when it raises an error, the
    // (sub)transaction abort rolls back every level above its own.
    let nest = unsafe { pg_sys::NewGUCNestLevel() };
    if !search_path_is(path) {
        set_search_path(path);
    }
    let r = f();
    // SAFETY: rolls back the level opened above (`false`): nothing `f` set
    // survives it. The role is restored after, by `_restore`.
    unsafe { pg_sys::AtEOXact_GUC(false, nest) };
    r
}
