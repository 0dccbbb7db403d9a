//! Aggregate definitions (`es.aggregates`), compiled and cached per backend.
//!
//! `es.define_aggregate` sends a relcache invalidation for `es.aggregates`
//! when it commits; every backend drops its cache then and recompiles on
//! next use, so a fold never runs an outdated definition.

use crate::reducer::Reducers;
use crate::validate::fail;
use crate::value::Val;
use crate::{kept_plan, spi};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

pub enum Kind {
    /// Native reducers and the initial state.
    Reducers(Reducers, Val),
    /// A SQL-callable fold function `(state jsonb, event es.events) RETURNS jsonb`.
    Function(Box<pg_sys::FmgrInfo>),
}

pub struct Def {
    pub stream_type: String,
    pub revision: i64,
    pub snapshot_every: i32,
    pub initial_state: String,
    pub kind: Kind,
}

thread_local! {
    static DEFS: RefCell<Option<HashMap<String, Rc<Def>>>> = const { RefCell::new(None) };
    static CALLBACK_REGISTERED: Cell<bool> = const { Cell::new(false) };
}

kept_plan!(
    LOAD_DEFS,
    c"SELECT stream_type, fold::oid, reducers, initial_state, snapshot_every, revision
        FROM es.aggregates",
    []
);

fn aggregates_oid() -> pg_sys::Oid {
    unsafe {
        let es = pg_sys::get_namespace_oid(c"es".as_ptr(), false);
        pg_sys::get_relname_relid(c"aggregates".as_ptr(), es)
    }
}

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

fn load_all() -> HashMap<String, Rc<Def>> {
    if !CALLBACK_REGISTERED.with(|c| c.replace(true)) {
        unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(relcache_changed), 0.into()) };
    }
    AGG_OID.with(|o| o.set(aggregates_oid()));
    spi::connected(|| {
        let n = LOAD_DEFS.run(&[], true);
        let mut map = HashMap::with_capacity(n as usize);
        for row in 0..n as usize {
            let stream_type = spi::value_string(row, 1).unwrap_or_default();
            let initial = spi::value(row, 4)
                .map(|d| unsafe { Val::from_datum(d) })
                .unwrap_or(Val::Null);
            let mut initial_state = String::new();
            initial.write_json(&mut initial_state);
            let kind = match (spi::value(row, 2), spi::value(row, 3)) {
                (Some(oid), _) => {
                    let mut finfo: Box<pg_sys::FmgrInfo> = Box::new(unsafe { std::mem::zeroed() });
                    unsafe {
                        pg_sys::fmgr_info_cxt(
                            pg_sys::Oid::from(oid.value() as u32),
                            finfo.as_mut(),
                            pg_sys::TopMemoryContext,
                        )
                    };
                    Kind::Function(finfo)
                }
                (None, Some(r)) => {
                    let def = unsafe { Val::from_datum(r) };
                    match Reducers::compile(&def) {
                        Ok(c) => Kind::Reducers(c, initial),
                        Err(e) => fail(
                            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                            format!("aggregate {stream_type}: {e}"),
                        ),
                    }
                }
                (None, None) => continue,
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
pub fn get(stream_type: &str) -> Option<Rc<Def>> {
    if let Some(found) = DEFS.with(|d| d.borrow().as_ref().map(|m| m.get(stream_type).cloned())) {
        return found;
    }
    let map = load_all();
    let found = map.get(stream_type).cloned();
    DEFS.with(|d| *d.borrow_mut() = Some(map));
    found
}

/// The definition, or the error a user sees for a type with none.
pub fn require(stream_type: &str) -> Rc<Def> {
    get(stream_type).unwrap_or_else(|| {
        fail(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!(
                "no aggregate is defined for stream type \"{stream_type}\"; define one with es.define_aggregate"
            ),
        )
    })
}

/// Tells every backend to reload definitions (sent when the defining
/// transaction commits).
#[pg_extern(volatile, schema = "es", name = "_definitions_changed")]
fn definitions_changed() {
    let oid = aggregates_oid();
    if oid != pg_sys::InvalidOid {
        unsafe { pg_sys::CacheInvalidateRelcacheByRelid(oid) };
    }
}

#[unsafe(no_mangle)]
#[doc(hidden)]
pub extern "C" fn pg_finfo_es_check_reducers() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

/// es._check_reducers(jsonb): compiles a reducers definition or says what is wrong.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_check_reducers(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let def = Val::from_datum(pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 0));
    if let Err(e) = Reducers::compile(&def) {
        crate::validate::fail_hint(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("invalid reducers: {e}"),
            r#"Reducers map event types to steps such as {"add": "balance", "from": "$.amount"}."#,
        );
    }
    pgrx::fcinfo::pg_return_void()
}
