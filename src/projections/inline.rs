//! Inline projections: run in the appending transaction, by the `AFTER INSERT`
//! row trigger on `es.events` (`after_insert.rs`, `sql/07_projections.sql`).
//!
//! The trigger's `WHEN` clause asks `inline::due`, which answers from a
//! per-backend copy of the inline projections, so an append that no inline
//! projection wants queues no trigger event. The copy is dropped when the
//! registry changes (a relcache invalidation sent by every registry write)
//! or any function is replaced, and reloaded with the latest snapshot, so an
//! append that waited for `es.create_projection` to commit sees the new
//! projection even under REPEATABLE READ.

use super::handler::Handler;
use crate::kept_plan;
use crate::pg::error::fail_hint;
use crate::pg::roles::{as_user, sandboxed};
use crate::pg::spi;
use crate::projections::materialize;
use crate::store::event::Event;
use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::prelude::*;
use pgrx::FromDatum;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

enum Action {
    Handler(Handler),
    Materialize(Oid),
    /// The handler function or target table was dropped.
    Broken(String),
}

struct Entry {
    name: String,
    owner: Oid,
    search_path: std::ffi::CString,
    event_types: Option<Vec<String>>,
    stream_types: Option<Vec<String>>,
    action: Action,
}

impl Entry {
    fn takes_stream_type(&self, stream_type: &str) -> bool {
        self.stream_types
            .as_ref()
            .is_none_or(|t| t.iter().any(|x| x == stream_type))
    }

    fn wants(&self, stream_type: &str, event_type: &str) -> bool {
        self.event_types
            .as_ref()
            .is_none_or(|t| t.iter().any(|x| x == event_type))
            && self.takes_stream_type(stream_type)
    }
}

thread_local! {
    static CACHE: RefCell<Option<Rc<Vec<Entry>>>> = const { RefCell::new(None) };
    static REGISTRY_OID: Cell<Oid> = const { Cell::new(Oid::INVALID) };
    static CALLBACKS: Cell<bool> = const { Cell::new(false) };
}

/// # Safety
/// Called by PostgreSQL as a registered relcache invalidation callback.
#[pg_guard]
unsafe extern "C-unwind" fn relcache_changed(_arg: Datum, relid: Oid) {
    if relid == Oid::INVALID || relid == REGISTRY_OID.with(|o| o.get()) {
        CACHE.with(|c| c.borrow_mut().take());
    }
}

/// # Safety
/// Called by PostgreSQL as a registered syscache invalidation callback.
#[pg_guard]
unsafe extern "C-unwind" fn function_changed(_arg: Datum, _cacheid: i32, _hash: u32) {
    CACHE.with(|c| c.borrow_mut().take());
}

kept_plan!(
    LOAD,
    c"SELECT p.name, p.owner::oid, p.kind, pg_catalog.to_regprocedure(p.handler)::oid, p.target::oid,
             p.event_types, p.stream_types,
             p.handler IS NULL OR pg_catalog.to_regprocedure(p.handler) IS NOT NULL,
             p.target IS NULL OR EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid = p.target),
             p.search_path
        FROM es.projection_registry p WHERE p.mode = 'inline' ORDER BY p.name",
    []
);

fn load() -> Rc<Vec<Entry>> {
    if !CALLBACKS.with(|c| c.replace(true)) {
        // SAFETY: registers static callbacks once per backend (`CALLBACKS`).
        unsafe {
            pg_sys::CacheRegisterRelcacheCallback(Some(relcache_changed), Datum::from(0usize));
            pg_sys::CacheRegisterSyscacheCallback(
                pg_sys::SysCacheIdentifier::PROCOID as i32,
                Some(function_changed),
                Datum::from(0usize),
            );
        }
    }
    REGISTRY_OID.with(|o| o.set(crate::pg::tables::relation(c"projection_registry")));
    // SAFETY: the snapshot pushed here is popped after the one statement that uses it.
    let entries = spi::connected(|| unsafe {
        pg_sys::PushActiveSnapshot(pg_sys::GetLatestSnapshot());
        let n = as_user(crate::pg::tables::extension_owner(), || LOAD.run(&[], true)) as usize;
        pg_sys::PopActiveSnapshot();
        let mut v = Vec::with_capacity(n);
        for r in 0..n {
            let name = spi::value_string(r, 1).unwrap_or_default();
            let oid = |c| spi::value(r, c).map_or(Oid::INVALID, |d| Oid::from(d.value() as u32));
            let arr = |c| spi::value(r, c).and_then(|d| Vec::<String>::from_datum(d, false));
            let action = if spi::value_bool(r, 8) != Some(true) {
                Action::Broken(format!(
                    "the handler function of inline projection \"{name}\" was dropped"
                ))
            } else if spi::value_bool(r, 9) != Some(true) {
                Action::Broken(format!(
                    "the table of inline projection \"{name}\" was dropped"
                ))
            } else if spi::value_string(r, 3).as_deref() == Some("materializer") {
                Action::Materialize(oid(5))
            } else {
                Action::Handler(Handler::new(oid(4)))
            };
            v.push(Entry {
                owner: oid(2),
                search_path: crate::projections::registry::cstring(
                    spi::value_string(r, 10).unwrap_or_default(),
                ),
                event_types: arr(6),
                stream_types: arr(7),
                action,
                name,
            });
        }
        v
    });
    let rc = Rc::new(entries);
    CACHE.with(|c| *c.borrow_mut() = Some(rc.clone()));
    rc
}

fn entries() -> Rc<Vec<Entry>> {
    match CACHE.with(|c| c.borrow().clone()) {
        Some(e) => e,
        None => load(),
    }
}

/// Whether any inline projection wants events of this stream type and event type.
/// Whether any inline projection takes events of streams of this type
/// (whatever their event type).
pub(crate) fn any_for(stream_type: &str) -> bool {
    entries().iter().any(|e| e.takes_stream_type(stream_type))
}

pub(crate) fn due(stream_type: &str, event_type: &str) -> bool {
    entries().iter().any(|e| e.wants(stream_type, event_type))
}

/// Hands the event just inserted (`row`, read as `ev`) to every inline
/// projection that wants it, in name order, each handler as its
/// projection's owner. An error fails the append.
///
/// # Safety
/// `row` is the `es.events` row just appended and `ev` was read from it; in the appending
/// call.
pub(crate) unsafe fn run(row: Datum, ev: &Event) {
    for e in entries().iter() {
        if !e.wants(ev.stream_type, ev.event_type) {
            continue;
        }
        match &e.action {
            Action::Handler(h) => {
                let mut done = 0;
                sandboxed(e.owner, &e.search_path, || {
                    h.handle(&[row], false, &mut done)
                });
            }
            Action::Materialize(target) => materialize::step(*target, e.owner, row, ev),
            Action::Broken(msg) => fail_hint(
                PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                msg.clone(),
                &format!(
                    "Drop the projection with es.drop_projection('{}') or restore what it needs.",
                    e.name
                ),
            ),
        }
    }
}
