//! The append-only guard, and the one way past it.
//!
//! Statement triggers on `es.events`, `es.archived_events` and `es.audit`
//! (`sql/14_guards.sql`, ENABLE ALWAYS: they fire for every role, superusers
//! included, and under `session_replication_role = replica`) call
//! `es._forbid_change`, which refuses UPDATE, DELETE and TRUNCATE unless this
//! backend's sanction flag is set. Only [`sanctioned`] sets it, around one
//! statement that the extension's own change primitives run
//! (`src/lifecycle/change.rs`), and clears it when the statement returns or
//! fails, and at transaction end. No SQL function sets it, and no setting
//! does: any session can SET a setting. `es.audit` is never sanctioned.
//!
//! The same goes for event types beginning with `$` (the store's own
//! markers, `$StreamDeleted`, `$EventsRedacted`): appends of them are
//! refused unless [`markers`] allows them, which only the marker primitive does.

use pgrx::pg_sys::{self, Datum};
use pgrx::prelude::*;
use std::cell::Cell;

thread_local! {
    static SANCTIONED: Cell<bool> = const { Cell::new(false) };
    static MARKERS: Cell<bool> = const { Cell::new(false) };
    static CALLBACK: Cell<bool> = const { Cell::new(false) };
}

/// Clears a flag when dropped: when the statement returns, and when its
/// error unwinds through here.
struct Clear(&'static std::thread::LocalKey<Cell<bool>>);

impl Drop for Clear {
    fn drop(&mut self) {
        self.0.with(|f| f.set(false));
    }
}

fn ensure_callback() {
    if CALLBACK.with(|c| c.replace(true)) {
        return;
    }
    // SAFETY: registers a static callback once per backend; it only clears flags.
    unsafe { pg_sys::RegisterXactCallback(Some(xact_end), std::ptr::null_mut()) };
}

/// # Safety
/// Called by PostgreSQL as a registered transaction callback.
#[pg_guard]
unsafe extern "C-unwind" fn xact_end(_event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    // Whatever the event (commit, abort, prepare): no flag outlives a transaction.
    SANCTIONED.with(|f| f.set(false));
    MARKERS.with(|f| f.set(false));
}

/// Runs `f` (one statement of the extension's own) with the guard open.
pub(crate) fn sanctioned<R>(f: impl FnOnce() -> R) -> R {
    ensure_callback();
    SANCTIONED.with(|s| s.set(true));
    let _clear = Clear(&SANCTIONED);
    f()
}

/// Runs `f` (one append of one marker event) with a `$` type allowed once.
pub(crate) fn markers<R>(f: impl FnOnce() -> R) -> R {
    ensure_callback();
    MARKERS.with(|s| s.set(true));
    let _clear = Clear(&MARKERS);
    f()
}

/// Fails with 22023 for an event type of the store's own (`$...`), but
/// for the one append [`markers`] allows: the first check of a `$` type
/// takes the allowance, so code that the append itself runs (inline
/// projections, folds) cannot append markers of its own.
pub(crate) fn check_event_type(what: &str, event_type: &str) {
    if event_type.starts_with('$') && !MARKERS.with(|m| m.replace(false)) {
        crate::pg::error::fail_hint(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{what} \"{event_type}\" begins with \"$\": such types are the store's own"),
            "Name event types without a leading \"$\".",
        );
    }
}

crate::v1_function_info!(pg_finfo_es_forbid_change);

/// Trigger function es._forbid_change(): BEFORE UPDATE OR DELETE / BEFORE
/// TRUNCATE ... FOR EACH STATEMENT. A trigger argument 'never' refuses even
/// a sanctioned statement (es.audit).
///
/// # Safety
/// Called by PostgreSQL's function manager as a trigger.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_forbid_change(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let td = (*fcinfo).context as *mut pg_sys::TriggerData;
    if td.is_null() || (*td).type_ != pg_sys::NodeTag::T_TriggerData {
        pgrx::error!("es._forbid_change() must be called as a trigger");
    }
    let trigger = (*td).tg_trigger;
    let never = (*trigger).tgnargs > 0
        && std::ffi::CStr::from_ptr(*(*trigger).tgargs).to_bytes() == b"never";
    if SANCTIONED.with(|s| s.get()) && !never {
        return Datum::from(0usize);
    }
    let ev = (*td).tg_event & pg_sys::TRIGGER_EVENT_OPMASK;
    let op = match ev {
        pg_sys::TRIGGER_EVENT_UPDATE => "UPDATE",
        pg_sys::TRIGGER_EVENT_DELETE => "DELETE",
        pg_sys::TRIGGER_EVENT_TRUNCATE => "TRUNCATE",
        _ => "INSERT",
    };
    let rel = std::ffi::CStr::from_ptr((*(*(*td).tg_relation).rd_rel).relname.data.as_ptr())
        .to_string_lossy()
        .into_owned();
    let hint = if never {
        "The audit is the record of every deliberate change; it stays as written."
    } else {
        "Events are facts: append a compensating event instead, or use es.delete_stream, es.truncate_stream, es.redact or es.archive_stream (audited)."
    };
    crate::pg::error::fail_hint(
        PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        format!("es.{rel} is append-only: {op} is not allowed"),
        hint,
    )
}

/// The marker es.delete_stream appends: folds start afresh after it.
pub(crate) const STREAM_DELETED: &str = "$StreamDeleted";
/// The marker es.redact appends.
pub(crate) const EVENTS_REDACTED: &str = "$EventsRedacted";
