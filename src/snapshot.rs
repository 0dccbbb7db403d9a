//! Snapshots: an `AFTER INSERT` row trigger on `es.events` writes one, in the
//! appending transaction, when a stream's version reaches a multiple of its
//! type's `snapshot_every`. The trigger's `WHEN` clause asks
//! `es._snapshot_due`, which answers from the cached definitions, so appends
//! that are not due cost one cheap function call and no trigger event.
//! Each snapshot is folded from the previous one, so its cost does not grow
//! with the stream. Only appends made through the extension's functions take
//! snapshots: rows that a restore copies in are left alone.

use crate::definitions;
use crate::event::RowReader;
use crate::fold::fold_stream;
use crate::validate::text_datum_str;
use crate::{kept_plan, spi};
use pgrx::fcinfo;
use pgrx::pg_sys::{self, Datum};
use pgrx::prelude::*;
use pgrx::IntoDatum;
use std::cell::Cell;

thread_local! {
    static APPEND_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Marks the extent of an append made by the extension's own functions.
pub struct AppendScope;

impl AppendScope {
    pub fn enter() -> AppendScope {
        APPEND_DEPTH.with(|d| d.set(d.get() + 1));
        AppendScope
    }
}

/// Whether an append made by the extension's functions is under way.
pub fn in_append() -> bool {
    APPEND_DEPTH.with(|d| d.get()) > 0
}

impl Drop for AppendScope {
    fn drop(&mut self) {
        APPEND_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

kept_plan!(
    INSERT_SNAPSHOT,
    c"INSERT INTO es.snapshots (stream_id, version, revision, stream_type, state)
      VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    [
        pg_sys::TEXTOID,
        pg_sys::INT8OID,
        pg_sys::INT8OID,
        pg_sys::TEXTOID,
        pg_sys::JSONBOID
    ]
);

crate::v1_function_info!(pg_finfo_es_snapshot_due);

/// es._snapshot_due(stream_type text, version bigint) RETURNS boolean
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_snapshot_due(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    if APPEND_DEPTH.with(|d| d.get()) == 0
        || fcinfo::pg_arg_is_null(fcinfo, 0)
        || fcinfo::pg_arg_is_null(fcinfo, 1)
    {
        return Datum::from(false);
    }
    let stream_type = text_datum_str(fcinfo::pg_getarg_datum_raw(fcinfo, 0));
    let version = fcinfo::pg_getarg_datum_raw(fcinfo, 1).value() as i64;
    let due = definitions::get(stream_type)
        .is_some_and(|d| d.snapshot_every > 0 && version % d.snapshot_every as i64 == 0);
    Datum::from(due)
}

crate::v1_function_info!(pg_finfo_es_take_snapshot);

/// Trigger function es._take_snapshot(): AFTER INSERT ... FOR EACH ROW.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_take_snapshot(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let trigdata = (*fcinfo).context as *mut pg_sys::TriggerData;
    if trigdata.is_null() || (*trigdata).tg_trigtuple.is_null() {
        pgrx::error!("es._take_snapshot() must be called as a row trigger");
    }
    let row = pg_sys::heap_copy_tuple_as_datum(
        (*trigdata).tg_trigtuple,
        (*(*trigdata).tg_relation).rd_att,
    );
    let reader = RowReader::for_row(row);
    let ev = reader.read(row);
    let def = definitions::require(ev.stream_type);
    let stream_id = ev.stream_id.into_datum().expect("stream id");
    let stream_type = ev.stream_type.into_datum();
    let outer = pg_sys::CurrentMemoryContext;
    spi::connected(|| {
        let revision = def.revision;
        let folder = fold_stream(outer, stream_id, def, ev.version, false);
        if folder.version != ev.version {
            pgrx::error!(
                "snapshot of stream {} reached version {} instead of {}",
                ev.stream_id,
                folder.version,
                ev.version
            );
        }
        let state = folder.result();
        INSERT_SNAPSHOT.run(
            &[
                Some(stream_id),
                Some(Datum::from(folder.version)),
                Some(Datum::from(revision)),
                stream_type,
                Some(state),
            ],
            false,
        );
        folder.free();
    });
    Datum::from(0usize)
}
