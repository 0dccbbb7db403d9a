//! The SQL entry points of projections: `es.create_projection`,
//! `es.run_projection`, `es.rebuild_projection`, `es.drop_projection`
//! (signatures in `sql/07_projections.sql`): argument checks, then the
//! registry and the catch-up.

use super::catch_up;
use super::registry::{self, cstring, lock_out_appends, register, Projection};
use crate::kept_plan;
use crate::pg::error::{fail, fail_hint};
use crate::pg::roles::{self, as_user};
use crate::pg::spi;
use crate::pg::tables;
use crate::store::args;
use pgrx::fcinfo;
use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::prelude::*;

kept_plan!(
    CHECK_HANDLER,
    c"SELECT p.prokind = 'f' AND NOT p.proretset AND p.pronargs = $2
             AND ($2 = 0 OR p.proargtypes[0] IN ('es.events'::regtype, 'es.events[]'::regtype))
             AND p.prorettype = 'void'::regtype,
             p.pronamespace = pg_catalog.pg_my_temp_schema()
             OR pg_catalog.pg_is_other_temp_schema(p.pronamespace)
        FROM pg_catalog.pg_proc p WHERE p.oid = $1",
    [pg_sys::OIDOID, pg_sys::INT4OID]
);

kept_plan!(
    CAN_CREATE,
    c"SELECT pg_catalog.has_function_privilege(
         'es.create_projection(text, regprocedure, text, text[], text[], regprocedure)', 'EXECUTE')",
    []
);

pub(crate) fn names_arg(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> &'static str {
    // SAFETY: called with the fcinfo of a V1 function whose argument `n` is text.
    args::identifier("name", unsafe { fcinfo::pg_getarg::<&str>(fcinfo, n) })
}

/// Checks a handler (`arity` 1: `(es.events) RETURNS void` or
/// `(es.events[]) RETURNS void`) or reset
/// function (`arity` 0: `() RETURNS void`) and the caller's right to run it.
fn check_function(proc: Oid, arity: i32, what: &str) {
    let ok = CHECK_HANDLER.run(&[Some(Datum::from(proc)), Some(Datum::from(arity))], false) == 1
        && spi::value_bool(0, 1) == Some(true);
    if !ok {
        let expected = if arity == 1 {
            "(event es.events) RETURNS void, or (events es.events[]) RETURNS void for a batch"
        } else {
            "() RETURNS void"
        };
        fail_hint(
            PgSqlErrorCode::ERRCODE_INVALID_FUNCTION_DEFINITION,
            format!("{what} function has the wrong signature"),
            &format!("A {what} function is a function {expected}."),
        );
    }
    if spi::value_bool(0, 2) == Some(true) {
        // It would vanish with its session and break the projection (for
        // an inline one, every append it listens to).
        fail_hint(
            PgSqlErrorCode::ERRCODE_INVALID_FUNCTION_DEFINITION,
            format!("{what} function must not be a temporary function"),
            &format!("Create the {what} function in a permanent schema."),
        );
    }
    roles::require_execute(proc, &format!("{what} function"));
}

fn check_types(what: &str, v: &Option<Vec<Option<String>>>) -> Option<Vec<String>> {
    let v = v.as_ref()?;
    if v.is_empty() {
        fail_hint(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{what} must not be an empty array"),
            "Pass NULL to match every type.",
        );
    }
    Some(
        v.iter()
            .map(|t| match t {
                None => fail(
                    PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                    format!("{what} must not contain NULL"),
                ),
                Some(s) => args::check_identifier(what, s).to_owned(),
            })
            .collect(),
    )
}

crate::v1_function_info!(pg_finfo_es_create_projection);

/// es.create_projection(name, handler, mode, event_types, stream_types, reset)
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose arguments match
/// the function's SQL signature in `sql/`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_create_projection(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let name = names_arg(fcinfo, 0);
    let Some(handler) = fcinfo::pg_getarg::<Oid>(fcinfo, 1) else {
        fail(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "handler must not be NULL".into(),
        );
    };
    let mode = match fcinfo::pg_getarg::<&str>(fcinfo, 2) {
        Some(m @ ("inline" | "async")) => m,
        other => fail_hint(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "mode must be 'inline' or 'async', got {}",
                other.map_or("NULL".into(), |m| format!("'{m}'"))
            ),
            "'inline' runs the handler in the appending transaction; 'async' catches up later.",
        ),
    };
    let event_types = check_types(
        "event_types",
        &fcinfo::pg_getarg::<Vec<Option<String>>>(fcinfo, 3),
    );
    let stream_types = check_types(
        "stream_types",
        &fcinfo::pg_getarg::<Vec<Option<String>>>(fcinfo, 4),
    );
    let reset = fcinfo::pg_getarg::<Oid>(fcinfo, 5).unwrap_or(Oid::INVALID);
    let search_path = cstring(fcinfo::pg_getarg::<String>(fcinfo, 6).unwrap_or_default());
    let owner = roles::current();
    spi::connected(|| {
        // The gate is EXECUTE on es.create_projection (this function is
        // reached through it, so it stays open to PUBLIC).
        CAN_CREATE.run(&[], false);
        if spi::value_bool(0, 1) != Some(true) {
            fail(
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                "permission denied for function es.create_projection".into(),
            );
        }
        check_function(handler, 1, "handler");
        if reset != Oid::INVALID {
            check_function(reset, 0, "reset");
        }
        let p = Projection {
            name: name.to_owned(),
            kind: "handler".into(),
            mode: mode.into(),
            handler,
            reset,
            target: Oid::INVALID,
            event_types,
            stream_types,
            owner,
            position: 0,
            search_path,
            handler_name: None,
            reset_name: None,
        };
        if p.mode == "inline" {
            lock_out_appends("creating an inline projection");
        }
        as_user(tables::extension_owner(), || register(&p));
        if p.mode == "inline" {
            // Events appended before it existed: hand them over now.
            catch_up::replay(&p, i64::MAX);
        }
    });
    Datum::from(0usize)
}

crate::v1_function_info!(pg_finfo_es_run_projection);

/// es.run_projection(name text, max_events integer) RETURNS bigint
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose arguments match
/// the function's SQL signature in `sql/`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_run_projection(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let name = names_arg(fcinfo, 0);
    let max = match fcinfo::pg_getarg::<i32>(fcinfo, 1) {
        Some(n) if n > 0 => n,
        other => fail(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "max_events must be a positive number, got {}",
                other.map_or("NULL".into(), |n| n.to_string())
            ),
        ),
    };
    Datum::from(catch_up::run(name, max as i64))
}

crate::v1_function_info!(pg_finfo_es_rebuild_projection);

/// es.rebuild_projection(name text) RETURNS bigint
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose arguments match
/// the function's SQL signature in `sql/`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_rebuild_projection(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let name = names_arg(fcinfo, 0);
    Datum::from(catch_up::rebuild(name))
}

kept_plan!(
    INLINE_FOR_TYPE,
    c"SELECT p.name, p.kind = 'materializer', p.reset IS NOT NULL, p.target::oid, p.owner::oid
        FROM es.projection_registry p
       WHERE p.mode = 'inline' AND (p.stream_types IS NULL OR $1 = ANY (p.stream_types))
       ORDER BY p.name",
    [pg_sys::TEXTOID]
);

crate::v1_function_info!(pg_finfo_es_refresh_read_models);

/// es._refresh_read_models_of(stream_id text, stream_type text) RETURNS
/// text[]: after es.redact or es.delete_stream, no inline read model may keep
/// what they erased. Materialized tables get the stream's row folded again;
/// inline handler projections fed from the stream type are rebuilt when they
/// have a reset function. Returns the names of those that have none.
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose arguments match
/// the function's SQL signature in `sql/`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_refresh_read_models(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let (Some(stream_id), Some(stream_type)) = (
        crate::pg::fmgr::arg_datum(fcinfo, 0),
        crate::pg::fmgr::arg_str(fcinfo, 1),
    ) else {
        return fcinfo::pg_return_null(fcinfo);
    };
    let mut skipped = Vec::new();
    spi::connected(|| {
        let n = INLINE_FOR_TYPE.run(&[stream_type.into_datum()], false) as usize;
        let found: Vec<(String, bool, bool, Oid, Oid)> = (0..n)
            .map(|r| {
                (
                    spi::value_string(r, 1).unwrap_or_default(),
                    spi::value_bool(r, 2).unwrap_or(false),
                    spi::value_bool(r, 3).unwrap_or(false),
                    spi::value(r, 4).map_or(Oid::INVALID, |d| Oid::from(d.value() as u32)),
                    spi::value(r, 5).map_or(Oid::INVALID, |d| Oid::from(d.value() as u32)),
                )
            })
            .collect();
        for (name, materializer, has_reset, target, owner) in found {
            if materializer {
                crate::projections::materialize::refresh(target, owner, stream_type, stream_id);
            } else if has_reset {
                // The store's own maintenance, run by an admin function as the
                // extension's owner, which need not be a member of each
                // projection's owner: handlers still run as their owners.
                catch_up::rebuild_as(&name, Oid::from(pg_sys::BOOTSTRAP_SUPERUSERID));
            } else {
                skipped.push(name);
            }
        }
    });
    skipped.into_datum().unwrap_or(Datum::from(0usize))
}

crate::v1_function_info!(pg_finfo_es_drop_projection);

/// es.drop_projection(name text) RETURNS void
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose arguments match
/// the function's SQL signature in `sql/`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_drop_projection(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let name = names_arg(fcinfo, 0);
    registry::drop(name, roles::current());
    Datum::from(0usize)
}
