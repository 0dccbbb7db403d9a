//! Event schemas and upcasters (`es.event_schemas`, `es.upcasters`),
//! compiled once per backend and dropped when either table changes (the
//! define functions send a relcache invalidation at commit) or a function
//! changes (an upcaster function was replaced or dropped).

use crate::evolution::json_schema::Schema;
use crate::evolution::steps::{self, Step};
use crate::kept_plan;
use crate::pg::call::UserFunction;
use crate::pg::json_value::Val;
use crate::pg::{roles, spi, tables};
use pgrx::pg_sys::{self, Oid};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    Enforce,
    Warn,
    Off,
}

pub(crate) enum Transform {
    Steps(Vec<Step>),
    /// `(data jsonb, metadata jsonb) RETURNS jsonb`, run as its owner.
    Function(UserFunction),
    /// The function was dropped after the upcaster was defined: reading an
    /// event that needs it fails, saying so.
    Missing(String),
}

pub(crate) struct Upcaster {
    pub(crate) transform: Transform,
    /// The type and version the event reads as after this step.
    pub(crate) to_type: Option<String>,
    pub(crate) to_version: i32,
}

#[derive(Default)]
pub(crate) struct TypeEntry {
    /// The compiled schema, or why the stored one no longer compiles.
    pub(crate) schema: Option<(Result<Schema, String>, Mode)>,
    /// Upcasters by `from_version - 1` (they are defined without gaps).
    pub(crate) upcasters: Vec<Upcaster>,
}

impl TypeEntry {
    /// The version new appends of this type are stored at: the current one,
    /// or, for a type renamed by its last upcaster, that upcaster's own
    /// version, so events written under the old name keep being read as
    /// the new type.
    pub(crate) fn append_version(&self) -> i32 {
        match self.upcasters.last() {
            Some(u) if u.to_type.is_some() => self.upcasters.len() as i32,
            _ => self.upcasters.len() as i32 + 1,
        }
    }
}

#[derive(Default)]
pub(crate) struct Registry {
    /// FxHash: looked up for every event read while upcasters exist (SipHash
    /// showed in the read profiles; the keys are the database's own type names).
    pub(crate) types: rustc_hash::FxHashMap<String, TypeEntry>,
    pub(crate) any_upcaster: bool,
    /// Whether an upcaster is a function (user code runs when events are read).
    pub(crate) any_function_upcaster: bool,
}

thread_local! {
    static REGISTRY: RefCell<Option<Rc<Registry>>> = const { RefCell::new(None) };
    static CALLBACKS: Cell<bool> = const { Cell::new(false) };
    static OIDS: Cell<[Oid; 2]> = const { Cell::new([Oid::INVALID; 2]) };
}

kept_plan!(
    LOAD_SCHEMAS,
    c"SELECT s.event_type, s.schema, s.mode FROM es.event_schemas s",
    []
);
kept_plan!(
    LOAD_UPCASTERS,
    c"SELECT u.event_type, u.from_version, u.steps, pg_catalog.to_regprocedure(u.fn)::pg_catalog.oid,
             u.fn, u.to_event_type, u.to_version
        FROM es.upcasters u ORDER BY u.event_type, u.from_version",
    []
);

/// # Safety
/// Called by PostgreSQL as a registered relcache invalidation callback.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn relcache_changed(_arg: pg_sys::Datum, relid: Oid) {
    if relid == Oid::INVALID || OIDS.with(|o| o.get().contains(&relid)) {
        REGISTRY.with(|r| r.borrow_mut().take());
    }
}

/// # Safety
/// Called by PostgreSQL as a registered syscache invalidation callback.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn function_changed(_arg: pg_sys::Datum, _cacheid: i32, _hash: u32) {
    REGISTRY.with(|r| r.borrow_mut().take());
}

fn register_callbacks() {
    if CALLBACKS.with(|c| c.replace(true)) {
        return;
    }
    // SAFETY: registers static callbacks once per backend (`CALLBACKS`);
    // PostgreSQL keeps the pointers for the backend's life.
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(Some(relcache_changed), 0.into());
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::PROCOID as i32,
            Some(function_changed),
            0.into(),
        );
    }
}

fn mode(s: &str) -> Mode {
    match s {
        "warn" => Mode::Warn,
        "off" => Mode::Off,
        _ => Mode::Enforce,
    }
}

/// Reads both tables. A database whose extension is not updated yet (the
/// new library serving an older schema) has neither: an empty registry.
fn load() -> Registry {
    register_callbacks();
    let schemas = tables::relation(c"event_schemas");
    let upcasters = tables::relation(c"upcasters");
    OIDS.with(|o| o.set([schemas, upcasters]));
    let mut reg = Registry::default();
    if schemas == Oid::INVALID || upcasters == Oid::INVALID {
        return reg;
    }
    // As the extension's owner: every reader folds and reads through the
    // registry, whatever it was granted on the registry's tables.
    roles::as_user(tables::extension_owner(), || {
        spi::connected(|| {
            let n = LOAD_SCHEMAS.run(&[], true);
            for row in 0..n as usize {
                let t = spi::value_string(row, 1).unwrap_or_default();
                let compiled = match spi::value(row, 2) {
                    // SAFETY: a non-null jsonb datum of the current SPI result.
                    Some(d) => Schema::compile(&crate::evolution::validate::lit(&unsafe {
                        Val::from_datum(d)
                    })),
                    None => Err("the schema is NULL".into()),
                };
                let m = mode(&spi::value_string(row, 3).unwrap_or_default());
                reg.types.entry(t).or_default().schema = Some((compiled, m));
            }
            let n = LOAD_UPCASTERS.run(&[], true);
            for row in 0..n as usize {
                let t = spi::value_string(row, 1).unwrap_or_default();
                let transform = match (spi::value(row, 3), spi::value(row, 4)) {
                    // SAFETY: a non-null jsonb datum of the current SPI result.
                    (Some(s), _) => match steps::compile(&unsafe { Val::from_datum(s) }) {
                        Ok(s) => Transform::Steps(s),
                        Err(e) => Transform::Missing(format!("upcaster of \"{t}\": {e}")),
                    },
                    (None, Some(oid)) => {
                        Transform::Function(UserFunction::new(Oid::from(oid.value() as u32)))
                    }
                    (None, None) => Transform::Missing(format!(
                        "the upcaster function {} of event type \"{t}\" no longer exists; define the upcaster again with es.define_upcaster",
                        spi::value_string(row, 5).unwrap_or_default()
                    )),
                };
                let from = spi::value_i64(row, 2).unwrap_or(0) as i32;
                let entry = reg.types.entry(t).or_default();
                // defined without gaps (es.define_upcaster's rule); a gap
                // would be a hand-edited table: the chain stops there
                if entry.upcasters.len() as i32 == from - 1 {
                    entry.upcasters.push(Upcaster {
                        transform,
                        to_type: spi::value_string(row, 6),
                        to_version: spi::value_i64(row, 7).unwrap_or(from as i64 + 1) as i32,
                    });
                }
            }
        })
    });
    reg.any_upcaster = reg.types.values().any(|t| !t.upcasters.is_empty());
    reg.any_function_upcaster = reg.types.values().any(|t| {
        t.upcasters
            .iter()
            .any(|u| matches!(u.transform, Transform::Function(_)))
    });
    reg
}

/// The registry as of this backend's last invalidation.
pub(crate) fn get() -> Rc<Registry> {
    if let Some(r) = REGISTRY.with(|r| r.borrow().clone()) {
        return r;
    }
    let r = Rc::new(load());
    REGISTRY.with(|slot| *slot.borrow_mut() = Some(r.clone()));
    r
}

/// Tells every backend to reload (sent when the defining transaction commits).
pub(crate) fn changed() {
    tables::changed(c"event_schemas");
    tables::changed(c"upcasters");
}

impl Registry {
    /// The type events of `event_type` finally read as (following renames).
    pub(crate) fn final_type<'a>(&'a self, event_type: &'a str) -> &'a str {
        let mut t = event_type;
        for _ in 0..10_000 {
            match self
                .types
                .get(t)
                .and_then(|e| e.upcasters.last())
                .and_then(|u| u.to_type.as_deref())
            {
                Some(next) => t = next,
                None => return t,
            }
        }
        t
    }

    /// The stored event types whose events read as one of `wanted`: a
    /// filter on the types readers see becomes one on the stored rows.
    pub(crate) fn stored_types(&self, wanted: &[String]) -> Vec<String> {
        let mut out: Vec<String> = wanted
            .iter()
            .filter(|t| self.final_type(t) == t.as_str())
            .cloned()
            .collect();
        for t in self.types.keys() {
            if !out.contains(t)
                && self.final_type(t) != t
                && wanted.iter().any(|w| w == self.final_type(t))
            {
                out.push(t.clone());
            }
        }
        out
    }
}
