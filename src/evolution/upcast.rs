//! Upcasting: an event stored at an older schema version is read as its
//! type's current version, chained through every upcaster (renaming the
//! type where one says so). Stored rows never change.
//!
//! Every reader goes through here: `es.upcast` for the SQL read paths, and
//! [`row`] for the folds, snapshots, projection handlers and the
//! materializer. With no upcaster defined, both hand back the row they were
//! given without looking at it.

use crate::evolution::registry::{self, Registry, Transform};
use crate::evolution::steps;
use crate::pg::error::{fail, fail_hint};
use crate::pg::json_value::Val;
use crate::pg::roles;
use pgrx::pg_sys::{self, Datum};
use pgrx::prelude::*;
use std::cell::Cell;

/// A chain longer than this is a cycle in a hand-edited registry
/// (es.define_upcaster refuses cycles).
const MAX_STEPS: usize = 10_000;

/// Room for `es.events`' attributes, dropped columns included.
const MAX_ATTS: usize = 32;

/// Runs the chain from (`event_type`, `version`); `None` when no upcaster
/// applies. Returns the type the event reads as when a rename changed it,
/// its version and its data as jsonb (in the current memory context).
pub(crate) fn chain<'r>(
    reg: &'r Registry,
    event_type: &str,
    version: i32,
    data: Datum,
    metadata: Datum,
) -> Option<(Option<&'r str>, i32, Datum)> {
    let mut entry = reg.types.get(event_type)?;
    if version < 1 || version as usize > entry.upcasters.len() {
        return None;
    }
    let mut renamed: Option<&'r str> = None;
    let mut v = version;
    let mut d = data;
    // consecutive step upcasters edit one tree, built back into jsonb once
    let mut edit: Option<steps::Edit> = None;
    for _ in 0..MAX_STEPS {
        let Some(u) = entry.upcasters.get((v - 1) as usize).filter(|_| v >= 1) else {
            return Some((renamed, v, end(edit, d)));
        };
        let t = renamed.unwrap_or(event_type);
        match &u.transform {
            Transform::Steps(s) => {
                // SAFETY: `d` is a non-null jsonb datum: the row's data, or what an upcaster
                // function returned (NULL is refused below); it outlives the edit.
                let e = edit.get_or_insert_with(|| unsafe { steps::Edit::new(d) });
                // SAFETY: the steps belong to the registry, borrowed for 'r; the edit is
                // finished (`end`, or before the next function) within this call.
                unsafe { e.apply(s) };
            }
            Transform::Function(f) => {
                if let Some(e) = edit.take() {
                    d = e.finish();
                }
                let arg = d;
                // SAFETY: the upcaster runs sandboxed as its owner; an error inside is
                // PostgreSQL's own and aborts the (sub)transaction, which undoes the sandbox.
                let out = roles::sandboxed(f.owner, roles::PINNED_PATH, || unsafe {
                    f.call_propagating(&[arg, metadata])
                });
                d = match out {
                    Some(r) => r,
                    None => fail(
                        PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                        format!(
                            "the upcaster function of event type \"{t}\" from version {v} returned NULL; an event's data must not be NULL"
                        ),
                    ),
                };
            }
            Transform::Missing(msg) => {
                fail(PgSqlErrorCode::ERRCODE_UNDEFINED_FUNCTION, msg.clone())
            }
        }
        match &u.to_type {
            Some(to) => {
                renamed = Some(to.as_str());
                v = u.to_version;
                match reg.types.get(to.as_str()) {
                    Some(e) => entry = e,
                    // the new type has no upcasters of its own
                    None => return Some((renamed, v, end(edit, d))),
                }
            }
            None => v += 1,
        }
    }
    fail_hint(
        PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        format!("the upcasters of event type \"{event_type}\" form a chain of more than {MAX_STEPS} steps"),
        "Upcasters renaming types into each other make a cycle; define them again with es.define_upcaster.",
    )
}

/// The data at the end of a chain: the edit of the last steps built into
/// jsonb, or what the last function returned.
fn end(edit: Option<steps::Edit>, d: Datum) -> Datum {
    match edit {
        Some(e) => e.finish(),
        None => d,
    }
}

/// Where the columns an upcast reads and writes sit in `es.events`' row
/// type, found by name (the table may have gained columns since).
#[derive(Clone, Copy)]
struct Columns {
    natts: i32,
    event_type: usize,
    data: usize,
    metadata: usize,
    /// Missing in a database whose extension is not updated yet.
    schema_version: Option<usize>,
}

thread_local! {
    static COLUMNS: Cell<Option<Columns>> = const { Cell::new(None) };
}

/// # Safety
/// `tupdesc` is a valid descriptor of `es.events`' row type.
unsafe fn columns(tupdesc: pg_sys::TupleDesc) -> Columns {
    let natts = (*tupdesc).natts;
    if let Some(c) = COLUMNS.with(|c| c.get()).filter(|c| c.natts == natts) {
        return c;
    }
    let attrs = (*tupdesc).attrs.as_slice(natts as usize);
    let find = |name: &str| {
        attrs.iter().position(|a| {
            !a.attisdropped
                && std::ffi::CStr::from_ptr(a.attname.data.as_ptr()).to_bytes() == name.as_bytes()
        })
    };
    let c = Columns {
        natts,
        event_type: find("event_type").expect("es.events has event_type"),
        data: find("data").expect("es.events has data"),
        metadata: find("metadata").expect("es.events has metadata"),
        schema_version: find("schema_version"),
    };
    COLUMNS.with(|slot| slot.set(Some(c)));
    c
}

/// An `es.events` row as its type's current version: the same datum when
/// nothing applies, a new row otherwise (in the current memory context).
pub(crate) fn row(d: Datum) -> Datum {
    let reg = registry::get();
    if !reg.any_upcaster {
        return d;
    }
    // SAFETY: `d` is a composite datum of es.events (the callers' contract); its descriptor
    // comes from the type cache and is released before returning; the values point into the
    // detoasted tuple, which lives in the current context.
    unsafe {
        let th = pg_sys::pg_detoast_datum(d.cast_mut_ptr()) as pg_sys::HeapTupleHeader;
        let typid = (*th).t_choice.t_datum.datum_typeid;
        let typmod = (*th).t_choice.t_datum.datum_typmod;
        let tupdesc = pg_sys::lookup_rowtype_tupdesc(typid, typmod);
        let cols = columns(tupdesc);
        let natts = cols.natts as usize;
        let mut tuple: pg_sys::HeapTupleData = std::mem::zeroed();
        tuple.t_len = pgrx::varsize_any(th as *const pg_sys::varlena) as u32;
        tuple.t_data = th;
        // on the stack: this runs once per event read
        if natts > MAX_ATTS {
            pg_sys::DecrTupleDescRefCount(tupdesc);
            pgrx::error!("es.events has more than {MAX_ATTS} columns");
        }
        let mut values = [Datum::from(0usize); MAX_ATTS];
        let mut nulls = [false; MAX_ATTS];
        pg_sys::heap_deform_tuple(&mut tuple, tupdesc, values.as_mut_ptr(), nulls.as_mut_ptr());
        let unchanged = |tupdesc| {
            pg_sys::DecrTupleDescRefCount(tupdesc);
            d
        };
        if nulls[cols.event_type] || nulls[cols.data] {
            return unchanged(tupdesc);
        }
        let event_type = crate::pg::fmgr::text_datum_str(values[cols.event_type]);
        let version = match cols.schema_version {
            Some(i) if !nulls[i] => values[i].value() as i32,
            _ => 1,
        };
        let metadata = if nulls[cols.metadata] {
            crate::pg::jsonb::from_text("{}")
        } else {
            values[cols.metadata]
        };
        let Some((t, v, data)) = chain(&reg, event_type, version, values[cols.data], metadata)
        else {
            return unchanged(tupdesc);
        };
        if let Some(t) = t {
            values[cols.event_type] = pgrx::IntoDatum::into_datum(t).expect("text");
        }
        values[cols.data] = data;
        if let Some(i) = cols.schema_version {
            values[i] = Datum::from(v);
            nulls[i] = false;
        }
        let out = pg_sys::heap_form_tuple(tupdesc, values.as_mut_ptr(), nulls.as_mut_ptr());
        pg_sys::DecrTupleDescRefCount(tupdesc);
        pg_sys::HeapTupleHeaderGetDatum((*out).t_data)
    }
}

crate::v1_function_info!(pg_finfo_es_upcast);

/// es.upcast(e es.events) RETURNS es.events: the event as readers see it.
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose
/// arguments match the function's SQL signature in `sql/` (STRICT).
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_upcast(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    row(pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 0))
}

crate::v1_function_info!(pg_finfo_es_upcasting);

/// es._upcasting(): whether any upcaster is defined (the read functions
/// take the plain path when none is).
///
/// # Safety
/// Called by PostgreSQL's function manager.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_upcasting(_fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    Datum::from(registry::get().any_upcaster)
}

crate::v1_function_info!(pg_finfo_es_check_upcast_steps);

/// es._check_upcast_steps(jsonb): compiles steps or says what is wrong (22023).
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose
/// arguments match the function's SQL signature in `sql/` (STRICT).
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_check_upcast_steps(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let v = Val::from_datum(pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 0));
    if let Err(e) = steps::compile(&v) {
        fail_hint(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("invalid upcaster steps: {e}"),
            r#"steps is an array such as [{"rename": "amount", "to": "money.amount"}, {"set": "currency", "value": "EUR"}]."#,
        );
    }
    pgrx::fcinfo::pg_return_void()
}

crate::v1_function_info!(pg_finfo_es_evolution_changed);

/// es._evolution_changed(): every backend reloads schemas and upcasters
/// when the calling transaction commits.
///
/// # Safety
/// Called by PostgreSQL's function manager.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_evolution_changed(_fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    registry::changed();
    pgrx::fcinfo::pg_return_void()
}

crate::v1_function_info!(pg_finfo_es_stored_types);

/// es._stored_types(text[]): the stored event types whose events read as
/// one of the given types (NULL for NULL: no filter).
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose
/// arguments match the function's SQL signature in `sql/` (STRICT).
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_stored_types(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let wanted: Vec<String> = <Vec<Option<String>> as pgrx::FromDatum>::from_datum(
        pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 0),
        false,
    )
    .unwrap_or_default()
    .into_iter()
    .flatten()
    .collect();
    let out = registry::get().stored_types(&wanted);
    pgrx::IntoDatum::into_datum(out).unwrap_or(Datum::from(0usize))
}

/// Where the chain from (`event_type`, `version`) ends: the type and
/// version the event reads as (no data is touched).
fn destination<'r>(reg: &'r Registry, event_type: &'r str, version: i32) -> (&'r str, i32) {
    let mut t = event_type;
    let mut v = version;
    for _ in 0..MAX_STEPS {
        let Some(u) = reg
            .types
            .get(t)
            .and_then(|e| e.upcasters.get((v - 1).max(0) as usize))
            .filter(|_| v >= 1)
        else {
            return (t, v);
        };
        match &u.to_type {
            Some(to) => {
                t = to.as_str();
                v = u.to_version;
            }
            None => v += 1,
        }
    }
    (t, v)
}

// The read functions upcast column by column: no whole-row value is built
// and taken apart again for every event (sql/04_read.sql, sql/05_horizon.sql,
// sql/08_subscriptions.sql).

crate::v1_function_info!(pg_finfo_es_upcast_type);

/// es._upcast_type(event_type text, schema_version integer) RETURNS text
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose
/// arguments match the function's SQL signature in `sql/` (STRICT).
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_upcast_type(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let stored = pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 0);
    let reg = registry::get();
    if !reg.any_upcaster {
        return stored;
    }
    let t = crate::pg::fmgr::text_datum_str(stored);
    let version = pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 1).value() as i32;
    match destination(&reg, t, version) {
        (to, _) if to != t => pgrx::IntoDatum::into_datum(to).expect("text"),
        _ => stored,
    }
}

crate::v1_function_info!(pg_finfo_es_upcast_version);

/// es._upcast_version(event_type text, schema_version integer) RETURNS integer
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose
/// arguments match the function's SQL signature in `sql/` (STRICT).
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_upcast_version(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let version = pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 1).value() as i32;
    let reg = registry::get();
    if !reg.any_upcaster {
        return Datum::from(version);
    }
    let t = crate::pg::fmgr::text_datum_str(pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 0));
    Datum::from(destination(&reg, t, version).1)
}

crate::v1_function_info!(pg_finfo_es_upcast_data);

/// es._upcast_data(event_type text, schema_version integer, data jsonb, metadata jsonb) RETURNS jsonb
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose
/// arguments match the function's SQL signature in `sql/` (STRICT).
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_upcast_data(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let data = pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 2);
    let reg = registry::get();
    if !reg.any_upcaster {
        return data;
    }
    let t = crate::pg::fmgr::text_datum_str(pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 0));
    let version = pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 1).value() as i32;
    let metadata = pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 3);
    match chain(&reg, t, version, data, metadata) {
        Some((_, _, d)) => d,
        None => data,
    }
}
