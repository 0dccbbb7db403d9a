//! After an append: inline projections, then snapshots, for each event the
//! append wrote, in version order, in the appending transaction (an error
//! fails the append).
//!
//! The append path calls this directly (`store::append`'s hook, set in
//! `_PG_init`); it used to be an `AFTER INSERT` row trigger on `es.events`
//! whose `WHEN` clause PostgreSQL read back from its stored form and compiled
//! for every statement: about 21,000 instructions, 6.6% of an append, paid
//! even when nothing was due. Now an append that needs neither costs two
//! look-ups in per-backend caches; a single event that may need them comes
//! back from the append's own statement, and a batch reads its rows back.
//! Rows not written by the extension's append functions (a restore's COPY,
//! the lifecycle functions, logical replication) are left alone, as before.

use crate::aggregates::snapshot;
use crate::kept_plan;
use crate::pg::spi;
use crate::pg::xact;
use crate::projections::inline;
use crate::store::event::RowReader;
use pgrx::pg_sys::{self, Datum};
use pgrx::IntoDatum;

// The rows an append just wrote (its own command's writes are visible: the
// hook runs after the append's statement, with a fresh snapshot).
kept_plan!(
    APPENDED,
    c"SELECT e FROM es.events e
       WHERE e.stream_id = $1 AND e.version >= $2 AND e.version <= $3
       ORDER BY e.version",
    [pg_sys::TEXTOID, pg_sys::INT8OID, pg_sys::INT8OID]
);

/// Whether an append to a stream of `stream_type` may be due an inline
/// projection or a snapshot (then a single event's statement returns its row).
pub(crate) fn wants_row(stream_type: &str) -> bool {
    inline::any_for(stream_type) || snapshot::defined(stream_type)
}

/// The hook `store::append` calls after writing versions
/// `first..first + count` of `stream_id` (a stream of `stream_type`); `row`
/// is the `es.events` row when it wrote one event (a composite datum alive
/// for the call), which is then not read back.
pub(crate) fn after_append(
    stream_id: &str,
    stream_type: &str,
    first: i64,
    count: i64,
    row: Option<Datum>,
) {
    let last = first + count - 1;
    if !inline::any_for(stream_type) && !snapshot::due_between(stream_type, first, last) {
        return;
    }
    if let (1, Some(row)) = (count, row) {
        // SAFETY: the row the append's statement returned, alive for this call.
        unsafe { after_insert(row) };
        return;
    }
    let args = [
        stream_id.into_datum(),
        Some(Datum::from(first)),
        Some(Datum::from(last)),
    ];
    // Per-event garbage (row copies, upcast rows) goes into a context reset
    // after every batch of rows.
    let batch_cxt = xact::new_context(xact::current_context(), c"es after append");
    spi::connected(|| {
        APPENDED.tuples(&args, false, count > 1000, |desc, tuples| {
            for row in spi::first_column(desc, tuples) {
                // SAFETY: `batch_cxt` lives until the end of this function.
                let old = unsafe { pg_sys::MemoryContextSwitchTo(batch_cxt) };
                // SAFETY: `row` is an `es.events` row of this result, alive for the call.
                unsafe { after_insert(row) };
                // SAFETY: switches back to the context saved just above.
                unsafe { pg_sys::MemoryContextSwitchTo(old) };
            }
            // SAFETY: nothing allocated in the batch context is used after this point.
            unsafe { pg_sys::MemoryContextReset(batch_cxt) };
        });
    });
    // SAFETY: created above; nothing allocated in it is used any more.
    unsafe { pg_sys::MemoryContextDelete(batch_cxt) };
}

/// Inline projections, then the snapshot, for one event just appended.
///
/// # Safety
/// `row` is a composite datum of an `es.events` row just appended.
unsafe fn after_insert(row: Datum) {
    // a plain 4-byte-header copy if the result tuple packed it, as handlers expect
    let row = Datum::from(pg_sys::pg_detoast_datum(row.cast_mut_ptr()));
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
}

// The trigger functions of databases whose extension is not updated yet
// (0.2.0 created an AFTER INSERT trigger calling these): with this library
// the append path does the work, so the trigger must not do it again.

crate::v1_function_info!(pg_finfo_es_after_insert_due);

/// es._after_insert_due(stream_type text, version bigint, event_type text):
/// always false (see above).
///
/// # Safety
/// Called by PostgreSQL's function manager.
#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_after_insert_due(_fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    Datum::from(false)
}

crate::v1_function_info!(pg_finfo_es_after_insert);

/// Trigger function es._after_insert(): does nothing (see above).
///
/// # Safety
/// Called by PostgreSQL's function manager.
#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_after_insert(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let trigdata = (*fcinfo).context as *mut pg_sys::TriggerData;
    if trigdata.is_null() {
        pgrx::error!("es._after_insert() must be called as a trigger");
    }
    Datum::from(0usize)
}
