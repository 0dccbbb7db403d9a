//! The built-in materializer: `es.materialize_aggregate(stream_type, table)`
//! keeps a table with one row per stream (stream_id, version, state) current,
//! inline. Each event is one fold step from the row's previous state; the
//! stream is folded from its snapshot only when the row is missing or behind
//! (a table adopted with gaps, or rows deleted by hand).
//!
//! The table is read and written as the role that materialized it; events
//! and snapshots are read as the extension owner.

use crate::aggregates::definitions::{self, Def, Kind};
use crate::aggregates::fold::{fold_stream, Folder};
use crate::kept_plan;
use crate::pg::error::{fail, fail_hint};
use crate::pg::roles::{self, as_user, sandboxed, PINNED_PATH};
use crate::pg::spi;
use crate::pg::table_write::{statement, Command, TableWriter, Updated};
use crate::pg::xact::{self, copy_into};
use crate::projections::registry::Projection;
use crate::store::event::Event;
use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::prelude::*;
use pgrx::{fcinfo, IntoDatum};
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CString;
use std::rc::Rc;

/// Statements on one target table, prepared once per backend. The plan
/// cache re-plans them when the table changes.
#[derive(Clone, Copy)]
struct Plans {
    select: pg_sys::SPIPlanPtr,
    update: pg_sys::SPIPlanPtr,
    upsert: pg_sys::SPIPlanPtr,
    delete: pg_sys::SPIPlanPtr,
}

thread_local! {
    static PLANS: RefCell<HashMap<Oid, Plans>> = RefCell::new(HashMap::new());
}

fn qualified_name(rel: Oid) -> String {
    // SAFETY: a relation oid of the registry; get_rel_name checks it, the names are quoted and
    // copied out.
    unsafe {
        let name = pg_sys::get_rel_name(rel);
        if name.is_null() {
            fail(
                PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
                format!("table with oid {} does not exist", u32::from(rel)),
            );
        }
        let nsp = pg_sys::get_namespace_name(pg_sys::get_rel_namespace(rel));
        std::ffi::CStr::from_ptr(pg_sys::quote_qualified_identifier(nsp, name))
            .to_string_lossy()
            .into_owned()
    }
}

fn prepare(sql: String, types: &[Oid]) -> pg_sys::SPIPlanPtr {
    let sql = CString::new(sql).expect("no NUL in SQL");
    // SAFETY: `sql` is NUL-terminated; inside an SPI connection; the plan is kept out of SPI's
    // memory.
    unsafe {
        let plan = pg_sys::SPI_prepare(sql.as_ptr(), types.len() as i32, types.as_ptr() as *mut _);
        if plan.is_null() {
            pgrx::error!("SPI_prepare failed for: {}", sql.to_string_lossy());
        }
        pg_sys::SPI_keepplan(plan);
        plan
    }
}

/// The statements for `target`; the table's name is quoted, never spliced raw.
fn plans(target: Oid) -> Plans {
    if let Some(p) = PLANS.with(|m| m.borrow().get(&target).copied()) {
        return p;
    }
    let t = qualified_name(target);
    let p = Plans {
        select: prepare(
            format!("SELECT version, state FROM {t} WHERE stream_id = $1"),
            &[pg_sys::TEXTOID],
        ),
        // The row is there for every event but a stream's first: a plain
        // UPDATE spares the upsert's arbiter-index probe and tuple lock.
        update: prepare(
            format!("UPDATE {t} SET version = $2, state = $3 WHERE stream_id = $1"),
            &[pg_sys::TEXTOID, pg_sys::INT8OID, pg_sys::JSONBOID],
        ),
        upsert: prepare(
            format!(
                "INSERT INTO {t} AS t (stream_id, version, state) VALUES ($1, $2, $3)
                 ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version, state = EXCLUDED.state"
            ),
            &[pg_sys::TEXTOID, pg_sys::INT8OID, pg_sys::JSONBOID],
        ),
        delete: prepare(format!("DELETE FROM {t}"), &[]),
    };
    PLANS.with(|m| m.borrow_mut().insert(target, p));
    p
}

fn exec(plan: pg_sys::SPIPlanPtr, args: &[Option<Datum>], read_only: bool) -> u64 {
    spi::execute(plan, args, read_only)
        .unwrap_or_else(|rc| pgrx::error!("SPI_execute_plan failed ({rc}) on a materialized table"))
}

/// Applies one event (an `es.events` row, already read as `ev`) to its
/// stream's row in `target`.
pub(crate) fn step(target: Oid, owner: Oid, row: Datum, ev: &Event) {
    // SAFETY: a plain read of the current memory context.
    let outer = unsafe { pg_sys::CurrentMemoryContext };
    let def = definitions::require(ev.stream_type);
    let sid = ev.stream_id.into_datum();
    if sid.is_some_and(|sid| step_direct(target, owner, row, ev, &def, sid)) {
        return;
    }
    spi::connected(|| {
        let p = plans(target);
        let previous = sandboxed(owner, PINNED_PATH, || {
            if exec(p.select, &[sid], false) == 1 {
                let v = spi::value_i64(0, 1).unwrap_or(0);
                let s = spi::value(0, 2).map(|d| copy_into(outer, d));
                Some((v, s))
            } else {
                None
            }
        });
        let folder = match previous {
            // Already folded in (the fill at creation, or a replay).
            Some((v, _)) if v >= ev.version => return,
            Some((v, Some(state))) if v == ev.version - 1 => {
                let mut f = Folder::new(def, Some((v, state)));
                f.apply_row(row);
                f
            }
            None if ev.version == 1 => {
                let mut f = Folder::new(def, None);
                f.apply_row(row);
                f
            }
            // Missing or behind: fold the stream from its newest snapshot.
            _ => fold_stream(outer, sid.expect("stream id"), def, ev.version, false),
        };
        let state = folder.result();
        let args = [sid, Some(Datum::from(folder.version)), Some(state)];
        sandboxed(owner, PINNED_PATH, || {
            // UPDATE when the row was read (0 rows if it was deleted since).
            if previous.is_none() || exec(p.update, &args, false) == 0 {
                exec(p.upsert, &args, false);
            }
        });
        folder.free();
    });
}

/// The common step (the row is there, one version behind) without
/// statements: the row found through the table's unique index on
/// `stream_id`, folded one event, updated in place as the `UPDATE` would
/// (`pg::table_write`: the table's constraints and indexes, the statement's
/// concurrency rules), as the table's owner. About a third of the two
/// statements' cost. Only where nothing run in between is user code (native
/// reducers, no upcaster function) and the writer can stand for the
/// statement (no trigger, no row level security, ...). False: the caller's
/// statements do the step (nothing was written).
fn step_direct(target: Oid, owner: Oid, row: Datum, ev: &Event, def: &Rc<Def>, sid: Datum) -> bool {
    if !matches!(def.kind, Kind::Reducers(..))
        || crate::evolution::registry::get().any_function_upcaster
    {
        return false;
    }
    sandboxed(owner, PINNED_PATH, || {
        statement(|| {
            let Some(mut writer) = TableWriter::open_oid(target, Command::Update, &[]) else {
                return false;
            };
            let mut already = false;
            let updated = writer.update_unique_on("stream_id", sid, |read| {
                let v = read("version")?.value() as i64;
                if v >= ev.version {
                    // folded in already (the fill at creation, a replay)
                    already = true;
                    return None;
                }
                let state = read("state").filter(|_| v == ev.version - 1)?;
                let mut folder = Folder::new(def.clone(), Some((v, state)));
                folder.apply_row(row);
                let values = vec![
                    ("version", Some(Datum::from(folder.version))),
                    ("state", Some(folder.result())),
                ];
                folder.free();
                Some(values)
            });
            writer.close();
            already || matches!(updated, Some(Updated::Row))
        })
    })
}

kept_plan!(
    STREAMS_OF_TYPE,
    c"SELECT stream_id FROM es.streams WHERE stream_type = $1 ORDER BY stream_id",
    [pg_sys::TEXTOID]
);

/// Writes every stream's current state into the table. Returns the number
/// of streams. Must run inside an SPI connection.
fn fill(target: Oid, owner: Oid, stream_type: &str) -> i64 {
    let def = definitions::require(stream_type);
    let p = plans(target);
    let ext = crate::pg::tables::extension_owner();
    let mut count = 0i64;
    let cxt = xact::new_context(xact::current_context(), c"es materialize fill");
    as_user(ext, || {
        STREAMS_OF_TYPE.cursor(&[stream_type.into_datum()], false, |ids| {
            for id in ids {
                // SAFETY: `cxt` was created above and lives until the end of this function.
                let old = unsafe { pg_sys::MemoryContextSwitchTo(cxt) };
                refold_row(&p, owner, def.clone(), *id, cxt);
                // SAFETY: switches back to the saved context, then frees the stream's garbage.
                unsafe {
                    pg_sys::MemoryContextSwitchTo(old);
                    pg_sys::MemoryContextReset(cxt);
                }
                count += 1;
            }
        });
    });
    // SAFETY: the context was created above; nothing allocated in it is used after this.
    unsafe { pg_sys::MemoryContextDelete(cxt) };
    count
}

/// Folds one stream again from its newest snapshot and writes its row:
/// es.redact and es.delete_stream leave no row built from what they erased.
/// Must run inside an SPI connection.
pub(crate) fn refresh(target: Oid, owner: Oid, stream_type: &str, stream_id: Datum) {
    let ext = crate::pg::tables::extension_owner();
    let def = definitions::require(stream_type);
    as_user(ext, || {
        refold_row(
            &plans(target),
            owner,
            def,
            stream_id,
            xact::current_context(),
        )
    });
}

/// Folds a stream from its newest snapshot (the folder's memory in `cxt`)
/// and upserts its row as the table's owner. Runs as the extension owner.
fn refold_row(
    p: &Plans,
    owner: Oid,
    def: std::rc::Rc<definitions::Def>,
    stream_id: Datum,
    cxt: pg_sys::MemoryContext,
) {
    let folder = fold_stream(cxt, stream_id, def, i64::MAX, false);
    let state = folder.result();
    sandboxed(owner, PINNED_PATH, || {
        exec(
            p.upsert,
            &[
                Some(stream_id),
                Some(Datum::from(folder.version)),
                Some(state),
            ],
            false,
        )
    });
    folder.free();
}

/// Empties the table and fills it again; returns the number of streams.
pub(crate) fn rebuild(p: &Projection) -> i64 {
    let plans = plans(p.target);
    sandboxed(p.owner, PINNED_PATH, || exec(plans.delete, &[], false));
    let stream_type = p
        .stream_types
        .as_ref()
        .and_then(|t| t.first())
        .cloned()
        .unwrap_or_default();
    fill(p.target, p.owner, &stream_type)
}

kept_plan!(
    CHECK_TABLE,
    c"SELECT c.relkind IN ('r', 'p') AND c.relpersistence = 'p',
             (SELECT count(*) FROM pg_catalog.pg_attribute a
               WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                 AND ((a.attname = 'stream_id' AND a.atttypid = 'text'::regtype)
                   OR (a.attname = 'version' AND a.atttypid = 'int8'::regtype)
                   OR (a.attname = 'state' AND a.atttypid = 'jsonb'::regtype))) = 3,
             EXISTS (SELECT FROM pg_catalog.pg_index i
                      JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                     WHERE i.indrelid = c.oid AND i.indisunique AND i.indnkeyatts = 1
                       AND i.indpred IS NULL AND i.indexprs IS NULL AND a.attname = 'stream_id'),
             pg_catalog.has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE')
               AND pg_catalog.pg_has_role(c.relowner, 'USAGE'),
             pg_catalog.has_function_privilege('es.materialize_aggregate(text, text)', 'EXECUTE')
        FROM pg_catalog.pg_class c WHERE c.oid = $1",
    [pg_sys::OIDOID]
);

crate::v1_function_info!(pg_finfo_es_create_materializer);

/// es._create_materializer(stream_type text, target regclass): checks the
/// table, registers the inline projection (named after the table), fills it.
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose arguments match
/// the function's SQL signature in `sql/`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_create_materializer(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let (Some(stream_type), Some(target)) = (
        fcinfo::pg_getarg::<&str>(fcinfo, 0),
        fcinfo::pg_getarg::<Oid>(fcinfo, 1),
    ) else {
        fail(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "stream_type and table_name must not be NULL".into(),
        );
    };
    let owner = roles::current();
    spi::connected(|| {
        if CHECK_TABLE.run(&[Some(Datum::from(target))], false) != 1 {
            fail(
                PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
                "the table to materialize into does not exist".into(),
            );
        }
        let flag = |c| spi::value_bool(0, c) == Some(true);
        let (is_table, columns, unique, privileges, allowed) =
            (flag(1), flag(2), flag(3), flag(4), flag(5));
        let name = qualified_name(target);
        if !allowed {
            fail(
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                "permission denied for function es.materialize_aggregate".into(),
            );
        }
        if !is_table || !columns || !unique {
            fail_hint(
                PgSqlErrorCode::ERRCODE_INVALID_TABLE_DEFINITION,
                format!("table {name} cannot hold materialized states"),
                "It must be an ordinary, permanent table (not temporary or unlogged, not a view) with columns stream_id text, version bigint and state jsonb, and a unique index (or primary key) on stream_id alone. Or pass the name of a table that does not exist yet.",
            );
        }
        if !privileges {
            fail(
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                format!(
                    "only the owner of table {name} (or a member of its role) may materialize into it"
                ),
            );
        }
        crate::projections::registry::lock_out_appends("materializing an aggregate");
        let p = Projection {
            name,
            kind: "materializer".into(),
            mode: "inline".into(),
            handler: Oid::INVALID,
            reset: Oid::INVALID,
            target,
            event_types: None,
            stream_types: Some(vec![stream_type.to_owned()]),
            owner,
            position: 0,
            search_path: c"pg_catalog".into(),
            handler_name: None,
            reset_name: None,
        };
        as_user(crate::pg::tables::extension_owner(), || {
            crate::projections::registry::register(&p)
        });
        fill(target, owner, stream_type);
    });
    Datum::from(0usize)
}

kept_plan!(
    MATERIALIZER,
    c"SELECT r.target::pg_catalog.oid, r.owner::pg_catalog.oid, c.relkind IN ('r', 'p')
        FROM es.projection_registry r JOIN pg_catalog.pg_class c ON c.oid = r.target
       WHERE r.name = $1 AND r.kind = 'materializer'",
    [pg_sys::TEXTOID]
);

crate::v1_function_info!(pg_finfo_es_materialized_rows);

/// es._materialized_rows(projection text) RETURNS TABLE (stream_id text,
/// version bigint, state jsonb): the rows of a materializer's table, for
/// es.verify. Read as the table's registered owner, sandboxed: whatever runs
/// when the table is read (a rule that turned it into a view, a policy) is
/// that owner's code and must not run with the rights of whoever verifies.
/// The caller still needs SELECT on the table, as for reading it directly.
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose arguments match
/// the function's SQL signature in `sql/`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_materialized_rows(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let projection =
        crate::store::args::identifier("projection", fcinfo::pg_getarg::<&str>(fcinfo, 0));
    let caller = roles::current();
    // SAFETY: a set-returning function in materialize mode: the tuplestore
    // and descriptor live in the query's memory; tuplestore_putvalues
    // copies each row into it, so SPI's rows may go after each put.
    pg_sys::InitMaterializedSRF(fcinfo, 0);
    let rsinfo = (*fcinfo).resultinfo as *mut pg_sys::ReturnSetInfo;
    let (store, desc) = ((*rsinfo).setResult, (*rsinfo).setDesc);
    spi::connected(|| {
        let (target, owner, is_table) = as_user(crate::pg::tables::extension_owner(), || {
            if MATERIALIZER.run(&[projection.into_datum()], true) != 1 {
                fail(
                    PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
                    format!("materializer \"{projection}\" does not exist"),
                );
            }
            let oid = |c| spi::value(0, c).map_or(Oid::INVALID, |d| Oid::from(d.value() as u32));
            (oid(1), oid(2), spi::value_bool(0, 3) == Some(true))
        });
        let name = qualified_name(target);
        if !is_table {
            fail(
                PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
                format!("{name} is no longer an ordinary table"),
            );
        }
        if pg_sys::pg_class_aclcheck(target, caller, pg_sys::ACL_SELECT as pg_sys::AclMode)
            != pg_sys::AclResult::ACLCHECK_OK
        {
            fail(
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                format!("permission denied for table {name}"),
            );
        }
        let plan = prepare(format!("SELECT stream_id, version, state FROM {name}"), &[]);
        sandboxed(owner, PINNED_PATH, || {
            let n = exec(plan, &[], true) as usize;
            for r in 0..n {
                let mut values = [Datum::from(0usize); 3];
                let mut nulls = [true; 3];
                for c in 0..3 {
                    if let Some(d) = spi::value(r, c as i32 + 1) {
                        values[c] = d;
                        nulls[c] = false;
                    }
                }
                pg_sys::tuplestore_putvalues(store, desc, values.as_mut_ptr(), nulls.as_mut_ptr());
            }
        });
        pg_sys::SPI_freeplan(plan);
    });
    Datum::from(0usize)
}
