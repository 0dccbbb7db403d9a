//! Projections: `es.create_projection`, `es.run_projection`,
//! `es.rebuild_projection`, `es.drop_projection` (SQL signatures in
//! `sql/06_projections.sql`).
//!
//! An async projection's position moves in the same transaction as its
//! handler's writes, so a crash loses or repeats nothing. A catch-up locks
//! the projection's registry row (`FOR UPDATE SKIP LOCKED`): a second
//! catch-up of the same projection returns 0 instead of doing the work twice.
//! A batch runs in one subtransaction; when the handler fails on an event,
//! the batch is rolled back, the events before it are handled again, and the
//! projection is marked failed at the failing event.

use crate::call::UserFunction;
use crate::event::RowReader;
use crate::fold::copy_into;
use crate::roles::{self, as_user, sandboxed};
use crate::validate::{self, fail, fail_hint};
use crate::{kept_plan, materialize, spi};
use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::prelude::*;
use pgrx::{fcinfo, FromDatum, IntoDatum};
use std::ffi::CString;

/// A registry row.
pub struct Projection {
    pub name: String,
    pub kind: String,
    pub mode: String,
    pub handler: Oid,
    pub reset: Oid,
    pub target: Oid,
    pub event_types: Option<Vec<String>>,
    pub stream_types: Option<Vec<String>>,
    pub owner: Oid,
    pub position: i64,
    pub search_path: CString,
    /// The recorded signatures (the oids above are invalid when a function
    /// was dropped).
    pub handler_name: Option<String>,
    pub reset_name: Option<String>,
}

impl Projection {
    /// The handler or reset function, or an error naming it when it was dropped.
    fn function(&self, oid: Oid, name: &Option<String>, what: &str) -> Oid {
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
kept_plan!(HORIZON, c"SELECT es.read_horizon()", []);
kept_plan!(
    BATCH,
    c"SELECT e, e.global_position FROM es.events e
       WHERE e.global_position > $1 AND e.global_position < $2
         AND ($3::text[] IS NULL OR e.event_type = ANY ($3))
         AND ($4::text[] IS NULL OR e.stream_type = ANY ($4))
       ORDER BY e.global_position LIMIT $5",
    [
        pg_sys::INT8OID,
        pg_sys::INT8OID,
        pg_sys::TEXTARRAYOID,
        pg_sys::TEXTARRAYOID,
        pg_sys::INT8OID
    ]
);
kept_plan!(
    ALL_EVENTS,
    c"SELECT e FROM es.events e
       WHERE e.global_position < $1
         AND ($2::text[] IS NULL OR e.event_type = ANY ($2))
         AND ($3::text[] IS NULL OR e.stream_type = ANY ($3))
       ORDER BY e.global_position",
    [pg_sys::INT8OID, pg_sys::TEXTARRAYOID, pg_sys::TEXTARRAYOID]
);
kept_plan!(
    LAST_POSITION,
    c"SELECT pg_catalog.max(e.global_position) FROM es.events e
       WHERE e.global_position < $1
         AND ($2::text[] IS NULL OR e.event_type = ANY ($2))
         AND ($3::text[] IS NULL OR e.stream_type = ANY ($3))",
    [pg_sys::INT8OID, pg_sys::TEXTARRAYOID, pg_sys::TEXTARRAYOID]
);
kept_plan!(
    ADVANCE,
    c"UPDATE es.projection_registry
         SET position = $2, events_handled = events_handled + $3,
             status = CASE WHEN $4::text IS NULL THEN 'running' ELSE 'failed' END,
             last_error = $4, failed_position = $5, updated_at = pg_catalog.now()
       WHERE name = $1",
    [
        pg_sys::TEXTOID,
        pg_sys::INT8OID,
        pg_sys::INT8OID,
        pg_sys::TEXTOID,
        pg_sys::INT8OID
    ]
);
kept_plan!(
    REBUILT,
    c"UPDATE es.projection_registry
         SET position = $2, events_handled = $3, status = 'running',
             last_error = NULL, failed_position = NULL, updated_at = pg_catalog.now()
       WHERE name = $1",
    [pg_sys::TEXTOID, pg_sys::INT8OID, pg_sys::INT8OID]
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
kept_plan!(
    CHECK_HANDLER,
    c"SELECT p.prokind = 'f' AND NOT p.proretset AND p.pronargs = $2
             AND ($2 = 0 OR p.proargtypes[0] = 'es.events'::regtype)
             AND p.prorettype = 'void'::regtype,
             p.pronamespace = pg_catalog.pg_my_temp_schema()
             OR pg_catalog.pg_is_other_temp_schema(p.pronamespace)
        FROM pg_catalog.pg_proc p WHERE p.oid = $1",
    [pg_sys::OIDOID, pg_sys::INT4OID]
);

pub fn cstring(s: String) -> CString {
    CString::new(s).unwrap_or_default()
}

kept_plan!(
    CAN_CREATE,
    c"SELECT pg_catalog.has_function_privilege(
         'es.create_projection(text, regprocedure, text, text[], text[], regprocedure)', 'EXECUTE')",
    []
);

fn text_array(row: usize, col: i32) -> Option<Vec<String>> {
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
fn lock(name: &str, wait: bool, caller: Oid) -> Option<Projection> {
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

pub fn names_arg(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> &'static str {
    validate::identifier("name", unsafe { fcinfo::pg_getarg::<&str>(fcinfo, n) })
}

/// Inline projections are handed each event by the appending transaction;
/// replaying history into them must not race those appends. A SHARE ROW
/// EXCLUSIVE lock on es.events waits for transactions that appended and
/// holds new appends until this transaction ends, so a READ COMMITTED
/// statement run after it sees every event there will be until then. (It
/// conflicts with itself, so two such transactions that also append queue
/// up rather than deadlock.)
pub fn lock_out_appends(what: &str) {
    unsafe {
        if pg_sys::XactIsoLevel >= pg_sys::XACT_REPEATABLE_READ as i32 {
            fail_hint(
                PgSqlErrorCode::ERRCODE_INVALID_TRANSACTION_STATE,
                format!("{what} needs a READ COMMITTED transaction"),
                "Under REPEATABLE READ its snapshot could miss events that commit while it waits for appends to finish.",
            );
        }
        pg_sys::LockRelationOid(
            crate::catalog::relation(c"events"),
            pg_sys::ShareRowExclusiveLock as i32,
        );
    }
}

/// Makes every backend reload its inline projections at its next statement.
pub fn registry_changed() {
    crate::catalog::changed(c"projection_registry");
}

/// Checks a handler (`arity` 1: `(es.events) RETURNS void`) or reset
/// function (`arity` 0: `() RETURNS void`) and the caller's right to run it.
fn check_function(proc: Oid, arity: i32, what: &str) {
    let ok = CHECK_HANDLER.run(&[Some(Datum::from(proc)), Some(Datum::from(arity))], false) == 1
        && spi::value_bool(0, 1) == Some(true);
    if !ok {
        let expected = if arity == 1 {
            "(event es.events) RETURNS void"
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
                Some(s) => validate::check_identifier(what, s).to_owned(),
            })
            .collect(),
    )
}

/// Inserts a registry row as the extension owner; 42710 for a taken name.
pub fn register(p: &Projection) {
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

crate::v1_function_info!(pg_finfo_es_create_projection);

/// es.create_projection(name, handler, mode, event_types, stream_types, reset)
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
        as_user(roles::extension_owner(), || register(&p));
        if p.mode == "inline" {
            // Events appended before it existed: hand them over now.
            replay(&p, i64::MAX);
        }
    });
    Datum::from(0usize)
}

/// Calls the handler for every matching event below `upto`, in global
/// order, with no subtransaction: an error aborts the caller's transaction.
/// Returns the number of events and the last position.
fn replay(p: &Projection, upto: i64) -> (i64, i64) {
    let handler = UserFunction::new(p.function(p.handler, &p.handler_name, "handler"));
    let mut count = 0i64;
    let args = [
        Some(Datum::from(upto)),
        p.event_types.clone().into_datum(),
        p.stream_types.clone().into_datum(),
    ];
    let ext = roles::extension_owner();
    let batch_cxt = batch_context();
    as_user(ext, || {
        ALL_EVENTS.cursor(&args, false, |rows| {
            let old = unsafe { pg_sys::MemoryContextSwitchTo(batch_cxt) };
            sandboxed(p.owner, &p.search_path, || {
                for row in rows {
                    handler.call(&[*row]);
                }
            });
            count += rows.len() as i64;
            unsafe {
                pg_sys::MemoryContextSwitchTo(old);
                pg_sys::MemoryContextReset(batch_cxt);
            }
        });
    });
    unsafe { pg_sys::MemoryContextDelete(batch_cxt) };
    let last = as_user(ext, || {
        LAST_POSITION.run(&args, false);
        spi::value_i64(0, 1).unwrap_or(0)
    });
    (count, last)
}

fn batch_context() -> pg_sys::MemoryContext {
    unsafe {
        pg_sys::AllocSetContextCreateInternal(
            pg_sys::CurrentMemoryContext,
            c"es projection batch".as_ptr(),
            pg_sys::ALLOCSET_DEFAULT_MINSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_INITSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
        )
    }
}

fn sqlstate(code: PgSqlErrorCode) -> String {
    unsafe { std::ffi::CStr::from_ptr(pg_sys::unpack_sql_state(code as i32)) }
        .to_string_lossy()
        .into_owned()
}

/// Runs `f` in a subtransaction: its writes are kept when it returns, rolled
/// back when it raises an error, which is returned as text.
fn in_subtransaction(f: impl FnOnce()) -> Result<(), String> {
    unsafe {
        let cxt = pg_sys::CurrentMemoryContext;
        let owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(cxt);
        let r = PgTryBuilder::new(std::panic::AssertUnwindSafe(|| {
            f();
            Ok(())
        }))
        .catch_others(|e| {
            Err(match e {
                pg_sys::panic::CaughtError::PostgresError(r)
                | pg_sys::panic::CaughtError::ErrorReport(r) => {
                    format!("{}: {}", sqlstate(r.sql_error_code()), r.message())
                }
                pg_sys::panic::CaughtError::RustPanic { ereport, .. } => {
                    format!("XX000: {}", ereport.message())
                }
            })
        })
        .execute();
        pg_sys::MemoryContextSwitchTo(cxt);
        if r.is_ok() {
            pg_sys::ReleaseCurrentSubTransaction();
        } else {
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
        }
        pg_sys::MemoryContextSwitchTo(cxt);
        pg_sys::CurrentResourceOwner = owner;
        r
    }
}

/// Handles `rows` in a subtransaction. On an error at event k, rolls back,
/// handles rows[..k] again (shrinking k if an earlier event fails this time),
/// and returns k with the error.
fn handle_batch(p: &Projection, rows: &[Datum]) -> (usize, Option<String>) {
    let mut upto = rows.len();
    let mut error = None;
    loop {
        let mut done = 0usize;
        let r = in_subtransaction(|| {
            // Looked up in here: a dropped handler fails the projection,
            // not the caller.
            let handler = UserFunction::new(p.function(p.handler, &p.handler_name, "handler"));
            sandboxed(p.owner, &p.search_path, || {
                for row in &rows[..upto] {
                    handler.call(&[*row]);
                    done += 1;
                }
            })
        });
        match r {
            Ok(()) => return (upto, error),
            Err(e) => {
                upto = done;
                error = Some(e);
            }
        }
    }
}

crate::v1_function_info!(pg_finfo_es_run_projection);

/// es.run_projection(name text, max_events integer) RETURNS bigint
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
    Datum::from(run(name, max as i64))
}

/// One catch-up step of an async projection: at most `max` events. Returns
/// how many were handled; 0 when another transaction is catching it up.
pub fn run(name: &str, max: i64) -> i64 {
    let outer = unsafe { pg_sys::CurrentMemoryContext };
    spi::connected(|| {
        let caller = roles::current();
        let ext = roles::extension_owner();
        let Some(p) = as_user(ext, || lock(name, false, caller)) else {
            return 0;
        };
        if p.mode != "async" {
            fail_hint(
                PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("projection \"{name}\" is inline: appends keep it current"),
                "es.rebuild_projection replays every event into it.",
            );
        }
        // The batch, copied out of SPI's memory (subtransactions free it).
        let (rows, positions) = as_user(ext, || {
            HORIZON.run(&[], false);
            let horizon = spi::value_i64(0, 1).unwrap_or(0);
            let n = BATCH.run(
                &[
                    Some(Datum::from(p.position)),
                    Some(Datum::from(horizon)),
                    p.event_types.clone().into_datum(),
                    p.stream_types.clone().into_datum(),
                    Some(Datum::from(max)),
                ],
                false,
            ) as usize;
            let mut rows = Vec::with_capacity(n);
            let mut positions = Vec::with_capacity(n);
            for r in 0..n {
                let row = spi::value(r, 1).expect("event row");
                rows.push(copy_into(outer, row));
                positions.push(spi::value_i64(r, 2).unwrap_or(0));
            }
            (rows, positions)
        });
        if rows.is_empty() {
            return 0;
        }
        let (done, error) = handle_batch(&p, &rows);
        let position = if done > 0 {
            positions[done - 1]
        } else {
            p.position
        };
        let failed_at = error.as_ref().map(|_| positions[done]);
        as_user(ext, || {
            ADVANCE.run(
                &[
                    name.into_datum(),
                    Some(Datum::from(position)),
                    Some(Datum::from(done as i64)),
                    error.as_deref().into_datum(),
                    failed_at.map(Datum::from),
                ],
                false,
            )
        });
        if let Some(e) = &error {
            let ev = unsafe { RowReader::for_row(rows[done]).read(rows[done]) };
            pgrx::warning!(
                "projection \"{name}\" failed on event {} of stream \"{}\": {e}; es.run_projection resumes there once the handler is fixed",
                ev.version,
                ev.stream_id
            );
        }
        done as i64
    })
}

crate::v1_function_info!(pg_finfo_es_rebuild_projection);

/// es.rebuild_projection(name text) RETURNS bigint
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_rebuild_projection(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let name = names_arg(fcinfo, 0);
    let n = spi::connected(|| {
        let caller = roles::current();
        let ext = roles::extension_owner();
        let p = as_user(ext, || lock(name, true, caller)).expect("waited for the lock");
        if p.mode == "inline" {
            lock_out_appends("rebuilding an inline projection");
        }
        let (count, position) = if p.kind == "materializer" {
            (materialize::rebuild(&p), 0)
        } else {
            if p.reset_name.is_some() {
                let reset = UserFunction::new(p.function(p.reset, &p.reset_name, "reset"));
                sandboxed(p.owner, &p.search_path, || reset.call(&[]));
            }
            let upto = if p.mode == "inline" {
                i64::MAX
            } else {
                as_user(ext, || {
                    HORIZON.run(&[], false);
                    spi::value_i64(0, 1).unwrap_or(0)
                })
            };
            replay(&p, upto)
        };
        as_user(ext, || {
            REBUILT.run(
                &[
                    name.into_datum(),
                    Some(Datum::from(position)),
                    Some(Datum::from(count)),
                ],
                false,
            )
        });
        count
    });
    Datum::from(n)
}

crate::v1_function_info!(pg_finfo_es_drop_projection);

/// es.drop_projection(name text) RETURNS void
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_drop_projection(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let name = names_arg(fcinfo, 0);
    let caller = roles::current();
    spi::connected(|| {
        as_user(roles::extension_owner(), || {
            let arg = [name.into_datum()];
            if OWNER_OF.run(&arg, false) != 1 {
                unknown(name);
            }
            roles::require_member(caller, oid_at(0, 1), &format!("projection \"{name}\""));
            DELETE.run(&arg, false);
            registry_changed();
        })
    });
    Datum::from(0usize)
}

/// Every async projection that is running, for the background worker.
pub fn running_async() -> Vec<String> {
    kept_plan!(
        RUNNING,
        c"SELECT name FROM es.projection_registry
           WHERE mode = 'async' AND status = 'running' ORDER BY name",
        []
    );
    let n = RUNNING.run(&[], true) as usize;
    (0..n).filter_map(|r| spi::value_string(r, 1)).collect()
}
