//! Whose rights a piece of work runs with.
//!
//! The projection functions are SECURITY INVOKER: they read and write the
//! extension's own tables as the extension's owner, and call each handler as
//! the role that created its projection, so a handler never runs with more
//! rights than its creator had.

use crate::validate::fail;
use pgrx::pg_sys::{self, Oid};
use pgrx::prelude::*;

/// The role running the current statement.
pub fn current() -> Oid {
    unsafe { pg_sys::GetUserId() }
}

/// The owner of the extension (who owns `es.events`).
pub fn extension_owner() -> Oid {
    unsafe {
        let rel = crate::catalog::relation(c"events");
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

struct Restore(Oid, i32);

impl Drop for Restore {
    fn drop(&mut self) {
        unsafe { pg_sys::SetUserIdAndSecContext(self.0, self.1) };
    }
}

/// Runs `f` as role `uid`. An error inside `f` that aborts the (sub)transaction
/// also restores the previous role: PostgreSQL saves it at transaction start.
pub fn as_user<R>(uid: Oid, f: impl FnOnce() -> R) -> R {
    let mut old_uid = Oid::INVALID;
    let mut old_sec = 0;
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
pub fn require_member(member: Oid, owner: Oid, what: &str) {
    if !unsafe { pg_sys::has_privs_of_role(member, owner) } {
        fail(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("must be a member of the role that owns {what}"),
        );
    }
}

/// Fails with 42501 unless the current role may execute function `proc`.
pub fn require_execute(proc: Oid, what: &str) {
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

/// Runs `f` with `search_path` set to `path` (a projection's handlers see
/// the search_path of the session that created the projection, not the
/// pinned one of the extension's functions). Skipped when it is already set;
/// an error inside `f` that aborts the (sub)transaction restores the setting.
pub fn with_search_path<R>(path: &std::ffi::CStr, f: impl FnOnce() -> R) -> R {
    unsafe {
        let current = pg_sys::namespace_search_path;
        if !current.is_null() && std::ffi::CStr::from_ptr(current) == path {
            return f();
        }
        let nest = pg_sys::NewGUCNestLevel();
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
        let r = f();
        pg_sys::AtEOXact_GUC(true, nest);
        r
    }
}
