//! The one `AFTER INSERT` row trigger on `es.events`: inline projections,
//! then snapshots, for the event just appended.
//!
//! One trigger rather than one per feature because PostgreSQL reads a
//! trigger's `WHEN` clause back from its stored form and compiles it for
//! every statement, i.e. for every append: two clauses cost about 10% of an
//! append, one about half that. The clause asks `es._after_insert_due`,
//! which answers from per-backend caches, so an append that needs neither
//! queues no trigger event. Rows that are not appended by the extension's
//! own functions (a restore's COPY) are left alone.

use crate::aggregates::snapshot;
use crate::pg::fmgr::text_datum_str;
use crate::projections::inline;
use crate::store::append::in_append;
use crate::store::event::RowReader;
use pgrx::fcinfo;
use pgrx::pg_sys::{self, Datum};

crate::v1_function_info!(pg_finfo_es_after_insert_due);

/// es._after_insert_due(stream_type text, version bigint, event_type text) RETURNS boolean
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose arguments match
/// the function's SQL signature in `sql/`.
#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_after_insert_due(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    if !in_append() || (0..3).any(|i| fcinfo::pg_arg_is_null(fcinfo, i)) {
        return Datum::from(false);
    }
    let stream_type = text_datum_str(fcinfo::pg_getarg_datum_raw(fcinfo, 0));
    let version = fcinfo::pg_getarg_datum_raw(fcinfo, 1).value() as i64;
    let stored_type = text_datum_str(fcinfo::pg_getarg_datum_raw(fcinfo, 2));
    // an inline projection names the type as read (an upcaster may rename it)
    let reg = crate::evolution::registry::get();
    let event_type = if reg.any_upcaster {
        reg.final_type(stored_type)
    } else {
        stored_type
    };
    Datum::from(inline::due(stream_type, event_type) || snapshot::due(stream_type, version))
}

crate::v1_function_info!(pg_finfo_es_after_insert);

/// Trigger function es._after_insert(): AFTER INSERT ... FOR EACH ROW.
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose arguments match
/// the function's SQL signature in `sql/`.
#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_after_insert(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let trigdata = (*fcinfo).context as *mut pg_sys::TriggerData;
    if trigdata.is_null() || (*trigdata).tg_trigtuple.is_null() {
        pgrx::error!("es._after_insert() must be called as a row trigger");
    }
    // Only rows the append path writes into es.events, whatever table a
    // trigger calling this function was put on: otherwise a made-up row
    // would reach other roles' inline projections.
    if !in_append() || (*(*trigdata).tg_relation).rd_id != crate::pg::tables::relation(c"events") {
        return Datum::from(0usize);
    }
    let row = pg_sys::heap_copy_tuple_as_datum(
        (*trigdata).tg_trigtuple,
        (*(*trigdata).tg_relation).rd_att,
    );
    // an event appended under a type that an upcaster renames is handed
    // out renamed, as every reader sees it
    let row = crate::evolution::upcast::row(row);
    let reader = RowReader::for_row(row);
    let ev = reader.read(row);
    if inline::due(ev.stream_type, ev.event_type) {
        inline::run(row, &ev);
    }
    if snapshot::due(ev.stream_type, ev.version) {
        snapshot::take(&ev);
    }
    Datum::from(0usize)
}
