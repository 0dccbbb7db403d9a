//! Aggregate definitions (`es.aggregates`), compiled and cached per backend.
//!
//! `es.define_aggregate` sends a relcache invalidation for `es.aggregates`
//! when it commits; every backend drops its cache then and recompiles on
//! next use, so a fold never runs an outdated definition.

use crate::aggregates::reducer::Reducers;
use crate::kept_plan;
use crate::pg::call::UserFunction;
use crate::pg::error::fail;
use crate::pg::json_value::Val;
use crate::pg::spi;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

pub(crate) enum Kind {
    /// Native reducers and the initial state.
    Reducers(Reducers, Val),
    /// A SQL-callable fold function `(state jsonb, event es.events) RETURNS jsonb`,
    /// run as its owner (see `fold.rs`).
    Function(UserFunction),
    /// The fold function was dropped after the type was defined: an error
    /// for this type only, when it is used.
    Missing(String),
}

pub(crate) struct Def {
    pub(crate) stream_type: String,
    pub(crate) revision: i64,
    pub(crate) snapshot_every: i32,
    pub(crate) initial_state: String,
    pub(crate) kind: Kind,
}

thread_local! {
    static DEFS: RefCell<Option<HashMap<String, Rc<Def>>>> = const { RefCell::new(None) };
    static CALLBACK_REGISTERED: Cell<bool> = const { Cell::new(false) };
}

kept_plan!(
    LOAD_DEFS,
    c"SELECT a.stream_type, p.oid, a.reducers, a.initial_state, a.snapshot_every, a.revision,
             a.fold
        FROM es.aggregates a LEFT JOIN pg_catalog.pg_proc p ON p.oid = pg_catalog.to_regprocedure(a.fold::text)",
    []
);

fn aggregates_oid() -> pg_sys::Oid {
    crate::pg::tables::relation(c"aggregates")
}

/// # Safety
/// Called by PostgreSQL as a registered relcache invalidation callback.
#[pg_guard]
unsafe extern "C-unwind" fn relcache_changed(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    if relid == pg_sys::InvalidOid || relid == aggregates_oid_cached() {
        DEFS.with(|d| d.borrow_mut().take());
    }
}

thread_local! {
    static AGG_OID: Cell<pg_sys::Oid> = const { Cell::new(pg_sys::InvalidOid) };
}

fn aggregates_oid_cached() -> pg_sys::Oid {
    AGG_OID.with(|o| o.get())
}

/// # Safety
/// Called by PostgreSQL as a registered syscache invalidation callback.
#[pg_guard]
unsafe extern "C-unwind" fn function_changed(_arg: pg_sys::Datum, _cacheid: i32, _hash: u32) {
    // A fold function was replaced or dropped: its cached call info is stale.
    DEFS.with(|d| d.borrow_mut().take());
}

fn load_all() -> HashMap<String, Rc<Def>> {
    if !CALLBACK_REGISTERED.with(|c| c.replace(true)) {
        // SAFETY: registers static callbacks; PostgreSQL keeps the pointers for the backend's
        // life, and `CALLBACK_REGISTERED` makes it once.
        unsafe {
            pg_sys::CacheRegisterRelcacheCallback(Some(relcache_changed), 0.into());
            pg_sys::CacheRegisterSyscacheCallback(
                pg_sys::SysCacheIdentifier::PROCOID as i32,
                Some(function_changed),
                0.into(),
            );
        }
    }
    AGG_OID.with(|o| o.set(aggregates_oid()));
    spi::connected(|| {
        let n = LOAD_DEFS.run(&[], true);
        let mut map = HashMap::with_capacity(n as usize);
        for row in 0..n as usize {
            let stream_type = spi::value_string(row, 1).unwrap_or_default();
            let initial = spi::value(row, 4)
                // SAFETY: `d` is a non-null jsonb datum of the current SPI result, alive while
                // it is read.
                .map(|d| unsafe { Val::from_datum(d) })
                .unwrap_or(Val::Null);
            let mut initial_state = String::new();
            initial.write_json(&mut initial_state);
            let kind = match (spi::value(row, 2), spi::value(row, 3)) {
                (Some(oid), _) => {
                    Kind::Function(UserFunction::new(pg_sys::Oid::from(oid.value() as u32)))
                }
                (None, Some(r)) => {
                    // SAFETY: `r` is a non-null jsonb datum of the current SPI result, alive
                    // while it is read.
                    let def = unsafe { Val::from_datum(r) };
                    match Reducers::compile(&def) {
                        Ok(c) => Kind::Reducers(c, initial),
                        Err(e) => fail(
                            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                            format!("aggregate {stream_type}: {e}"),
                        ),
                    }
                }
                (None, None) => Kind::Missing(format!(
                    "the fold function {} of aggregate type \"{stream_type}\" no longer exists; \
                     define the type again with es.define_aggregate",
                    spi::value_string(row, 7).unwrap_or_default()
                )),
            };
            map.insert(
                stream_type.clone(),
                Rc::new(Def {
                    stream_type,
                    revision: spi::value_i64(row, 6).unwrap_or(0),
                    snapshot_every: spi::value_i64(row, 5).unwrap_or(0) as i32,
                    initial_state,
                    kind,
                }),
            );
        }
        map
    })
}

/// The definition of a stream type, if there is one.
pub(crate) fn get(stream_type: &str) -> Option<Rc<Def>> {
    if let Some(found) = DEFS.with(|d| d.borrow().as_ref().map(|m| m.get(stream_type).cloned())) {
        return found;
    }
    let map = load_all();
    let found = map.get(stream_type).cloned();
    DEFS.with(|d| *d.borrow_mut() = Some(map));
    found
}

/// The definition, or the error a user sees for a type with none (or with
/// a dropped fold function).
pub(crate) fn require(stream_type: &str) -> Rc<Def> {
    let def = get(stream_type).unwrap_or_else(|| {
        fail(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!(
                "no aggregate is defined for stream type \"{stream_type}\"; define one with es.define_aggregate"
            ),
        )
    });
    if let Kind::Missing(msg) = &def.kind {
        fail(PgSqlErrorCode::ERRCODE_UNDEFINED_FUNCTION, msg.clone());
    }
    def
}

/// Tells every backend to reload definitions (sent when the defining
/// transaction commits).
#[pg_extern(volatile, schema = "es", name = "_definitions_changed")]
fn definitions_changed() {
    crate::pg::tables::changed(c"aggregates");
}

crate::v1_function_info!(pg_finfo_es_check_reducers);

/// es._check_reducers(jsonb): compiles a reducers definition or says what is wrong.
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose
/// arguments match the function's SQL signature in `sql/`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_check_reducers(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let def = Val::from_datum(pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 0));
    if let Err(e) = Reducers::compile(&def) {
        crate::pg::error::fail_hint(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("invalid reducers: {e}"),
            r#"Reducers map event types to steps such as {"add": "balance", "from": "$.amount"}."#,
        );
    }
    pgrx::fcinfo::pg_return_void()
}
