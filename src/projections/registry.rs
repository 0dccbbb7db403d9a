//! The projection registry (`es.projection_registry`): reading and locking
//! a projection's row, registering and dropping one, and telling every
//! backend that it changed. Its rows are written as the extension's owner;
//! callers check first that the caller may act for the projection's owner.

use crate::kept_plan;
use crate::pg::error::fail_hint;
use crate::pg::roles::{self, as_user};
use crate::pg::spi;
use crate::pg::tables;
use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::prelude::*;
use pgrx::{FromDatum, IntoDatum};
use std::ffi::CString;

/// A registry row.
pub(crate) struct Projection {
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) mode: String,
    pub(crate) handler: Oid,
    pub(crate) reset: Oid,
    pub(crate) target: Oid,
    pub(crate) event_types: Option<Vec<String>>,
    pub(crate) stream_types: Option<Vec<String>>,
    pub(crate) owner: Oid,
    pub(crate) position: i64,
    pub(crate) search_path: CString,
    /// The recorded signatures (the oids above are invalid when a function
    /// was dropped).
    pub(crate) handler_name: Option<String>,
    pub(crate) reset_name: Option<String>,
}

impl Projection {
    /// The handler or reset function, or an error naming it when it was dropped.
    pub(crate) fn function(&self, oid: Oid, name: &Option<String>, what: &str) -> Oid {
        if oid == Oid::INVALID {
            fail_hint(
                PgSqlErrorCode::ERRCODE_UNDEFINED_FUNCTION,
                format!(
                    "the {what} function {} of projection \"{}\" no longer exists",
                    name.as_deref().unwrap_or("?"),
                    self.name
                ),
                "Create the function again (same name and arguments), or drop the projection.",
            );
        }
        oid
    }
}

kept_plan!(
    LOCK_NOWAIT,
    c"SELECT name, kind, mode, pg_catalog.to_regprocedure(handler)::oid,
             pg_catalog.to_regprocedure(reset)::oid, target::oid,
             event_types, stream_types, owner::oid, position, search_path,
             handler, reset
        FROM es.projection_registry WHERE name = $1 FOR UPDATE SKIP LOCKED",
    [pg_sys::TEXTOID]
);

kept_plan!(
    LOCK_WAIT,
    c"SELECT name, kind, mode, pg_catalog.to_regprocedure(handler)::oid,
             pg_catalog.to_regprocedure(reset)::oid, target::oid,
             event_types, stream_types, owner::oid, position, search_path,
             handler, reset
        FROM es.projection_registry WHERE name = $1 FOR UPDATE",
    [pg_sys::TEXTOID]
);

kept_plan!(
    EXISTS,
    c"SELECT 1 FROM es.projection_registry WHERE name = $1",
    [pg_sys::TEXTOID]
);

kept_plan!(
    INSERT,
    c"INSERT INTO es.projection_registry
             (name, kind, mode, handler, reset, target, event_types, stream_types, owner, search_path)
      VALUES ($1, $2, $3, $4::oid::regprocedure::text, $5::oid::regprocedure::text, $6::oid::regclass,
              $7, $8, $9::oid::regrole, $10)",
    [
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::OIDOID,
        pg_sys::OIDOID,
        pg_sys::OIDOID,
        pg_sys::TEXTARRAYOID,
        pg_sys::TEXTARRAYOID,
        pg_sys::OIDOID,
        pg_sys::TEXTOID
    ]
);

kept_plan!(
    DELETE,
    c"DELETE FROM es.projection_registry WHERE name = $1 RETURNING owner::oid",
    [pg_sys::TEXTOID]
);

kept_plan!(
    OWNER_OF,
    c"SELECT owner::oid FROM es.projection_registry WHERE name = $1",
    [pg_sys::TEXTOID]
);

pub(crate) fn cstring(s: String) -> CString {
    CString::new(s).unwrap_or_default()
}

fn text_array(row: usize, col: i32) -> Option<Vec<String>> {
    // SAFETY: a non-null text[] datum of the current SPI result, copied into Rust strings.
    spi::value(row, col).and_then(|d| unsafe { Vec::<String>::from_datum(d, false) })
}

fn oid_at(row: usize, col: i32) -> Oid {
    spi::value(row, col).map_or(Oid::INVALID, |d| Oid::from(d.value() as u32))
}

fn read_row() -> Projection {
    Projection {
        name: spi::value_string(0, 1).unwrap_or_default(),
        kind: spi::value_string(0, 2).unwrap_or_default(),
        mode: spi::value_string(0, 3).unwrap_or_default(),
        handler: oid_at(0, 4),
        reset: oid_at(0, 5),
        target: oid_at(0, 6),
        event_types: text_array(0, 7),
        stream_types: text_array(0, 8),
        owner: oid_at(0, 9),
        position: spi::value_i64(0, 10).unwrap_or(0),
        search_path: cstring(spi::value_string(0, 11).unwrap_or_default()),
        handler_name: spi::value_string(0, 12),
        reset_name: spi::value_string(0, 13),
    }
}

fn unknown(name: &str) -> ! {
    fail_hint(
        PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
        format!("projection \"{name}\" does not exist"),
        "The view es.projections lists the projections.",
    )
}

/// Locks the projection's registry row. `wait = false` returns None when
/// another transaction holds it. Runs as the extension owner; checks that
/// the caller may act for the projection's owner.
pub(crate) fn lock(name: &str, wait: bool, caller: Oid) -> Option<Projection> {
    let arg = [name.into_datum()];
    let plan = if wait { &LOCK_WAIT } else { &LOCK_NOWAIT };
    let p = if plan.run(&arg, false) == 1 {
        Some(read_row())
    } else if EXISTS.run(&arg, false) == 1 {
        None
    } else {
        unknown(name)
    };
    if let Some(p) = &p {
        roles::require_member(caller, p.owner, &format!("projection \"{name}\""));
    }
    p
}

/// Inline projections are handed each event by the appending transaction;
/// replaying history into them must not race those appends. A SHARE ROW
/// EXCLUSIVE lock on es.events waits for transactions that appended and
/// holds new appends until this transaction ends, so a READ COMMITTED
/// statement run after it sees every event there will be until then. (It
/// conflicts with itself, so two such transactions that also append queue
/// up rather than deadlock.)
pub(crate) fn lock_out_appends(what: &str) {
    // SAFETY: takes a table lock on the extension's own table, released at transaction end;
    // reads a backend-global setting.
    unsafe {
        if pg_sys::XactIsoLevel >= pg_sys::XACT_REPEATABLE_READ as i32 {
            fail_hint(
                PgSqlErrorCode::ERRCODE_INVALID_TRANSACTION_STATE,
                format!("{what} needs a READ COMMITTED transaction"),
                "Under REPEATABLE READ its snapshot could miss events that commit while it waits for appends to finish.",
            );
        }
        pg_sys::LockRelationOid(
            crate::pg::tables::relation(c"events"),
            pg_sys::ShareRowExclusiveLock as i32,
        );
    }
}

/// Makes every backend reload its inline projections at its next statement.
pub(crate) fn registry_changed() {
    crate::pg::tables::changed(c"projection_registry");
}

/// Inserts a registry row as the extension owner; 42710 for a taken name.
pub(crate) fn register(p: &Projection) {
    let arg = [p.name.as_str().into_datum()];
    if EXISTS.run(&arg, false) == 1 {
        fail_hint(
            PgSqlErrorCode::ERRCODE_DUPLICATE_OBJECT,
            format!("projection \"{}\" already exists", p.name),
            "Drop it first with es.drop_projection, or pick another name.",
        );
    }
    let oid = |o: Oid| (o != Oid::INVALID).then(|| Datum::from(o));
    INSERT.run(
        &[
            arg[0],
            p.kind.as_str().into_datum(),
            p.mode.as_str().into_datum(),
            oid(p.handler),
            oid(p.reset),
            oid(p.target),
            p.event_types.clone().into_datum(),
            p.stream_types.clone().into_datum(),
            Some(Datum::from(p.owner)),
            p.search_path.to_str().unwrap_or("").into_datum(),
        ],
        false,
    );
    registry_changed();
}

/// Every async projection that is running, for the background worker.
pub(crate) fn running_async() -> Vec<String> {
    kept_plan!(
        RUNNING,
        c"SELECT name FROM es.projection_registry
           WHERE mode = 'async' AND status = 'running' ORDER BY name",
        []
    );
    let n = RUNNING.run(&[], true) as usize;
    (0..n).filter_map(|r| spi::value_string(r, 1)).collect()
}

/// Removes projection `name` (its read model stays); 42501 unless `caller`
/// may act for its owner.
pub(crate) fn drop(name: &str, caller: Oid) {
    spi::connected(|| {
        as_user(tables::extension_owner(), || {
            let arg = [name.into_datum()];
            if OWNER_OF.run(&arg, false) != 1 {
                unknown(name);
            }
            roles::require_member(caller, oid_at(0, 1), &format!("projection \"{name}\""));
            DELETE.run(&arg, false);
            registry_changed();
        })
    });
}
