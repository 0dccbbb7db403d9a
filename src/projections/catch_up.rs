//! Handing events to a handler: an async projection's catch-up
//! (`es.run_projection`, the background worker), the replay into an inline
//! projection at creation, and rebuilds.
//!
//! An async projection's position moves in the same transaction as its
//! handler's writes, so a crash loses or repeats nothing. A catch-up locks
//! the projection's registry row (`FOR UPDATE SKIP LOCKED`): a second
//! catch-up of the same projection returns 0 instead of doing the work twice.
//! A batch runs in one subtransaction; when the handler fails on an event,
//! the batch is rolled back, the events before it are handled again, and the
//! projection is marked failed at the failing event. Handlers run sandboxed
//! as the projection's owner (`pg::roles::sandboxed`).

use super::handler::Handler;
use super::materialize;
use super::registry::{lock, lock_out_appends, Projection};
use crate::evolution::upcast;
use crate::kept_plan;
use crate::pg::call::UserFunction;
use crate::pg::error::fail_hint;
use crate::pg::roles::{self, as_user, sandboxed};
use crate::pg::tables;
use crate::pg::{spi, xact};
use crate::store::event::RowReader;
use pgrx::pg_sys::{self, Datum};
use pgrx::prelude::*;
use pgrx::IntoDatum;

kept_plan!(HORIZON, c"SELECT es._next_read_horizon()", []);
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
    ],
    generic
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

/// The projection's event types as stored: a type renamed by an upcaster
/// is found under its old name too (`evolution::registry`).
fn stored_types(p: &Projection) -> Option<Vec<String>> {
    p.event_types
        .as_ref()
        .map(|t| crate::evolution::registry::get().stored_types(t))
}

/// Calls the handler for every matching event below `upto`, in global
/// order, with no subtransaction: an error aborts the caller's transaction.
/// Returns the number of events and the last position.
pub(crate) fn replay(p: &Projection, upto: i64) -> (i64, i64) {
    let handler = Handler::new(p.function(p.handler, &p.handler_name, "handler"));
    let mut count = 0i64;
    let args = [
        Some(Datum::from(upto)),
        stored_types(p).into_datum(),
        p.stream_types.clone().into_datum(),
    ];
    let ext = tables::extension_owner();
    let batch_cxt = xact::new_context(xact::current_context(), c"es projection batch");
    as_user(ext, || {
        ALL_EVENTS.cursor(&args, false, |rows| {
            // SAFETY: `batch_cxt` was created above and lives until the end of this function.
            let old = unsafe { pg_sys::MemoryContextSwitchTo(batch_cxt) };
            // upcast before the handler's sandbox (an upcaster function runs as its own owner)
            let rows: Vec<Datum> = rows.iter().map(|r| upcast::row(*r)).collect();
            let mut done = 0;
            sandboxed(p.owner, &p.search_path, || {
                handler.handle(&rows, false, &mut done)
            });
            count += rows.len() as i64;
            // SAFETY: switches back to the saved context, then frees the batch's garbage.
            unsafe {
                pg_sys::MemoryContextSwitchTo(old);
                pg_sys::MemoryContextReset(batch_cxt);
            }
        });
    });
    // SAFETY: the batch context was created above; nothing allocated in it is used after this.
    unsafe { pg_sys::MemoryContextDelete(batch_cxt) };
    let last = as_user(ext, || {
        LAST_POSITION.run(&args, false);
        spi::value_i64(0, 1).unwrap_or(0)
    });
    (count, last)
}

/// Handles `rows` in a subtransaction. On an error at event k, rolls back,
/// handles rows[..k] again (shrinking k if an earlier event fails this time),
/// and returns k with the error. A batch handler that fails is called again
/// with one event at a time, to find the event it fails on.
pub(crate) fn handle_batch(p: &Projection, rows: &[Datum]) -> (usize, Option<String>) {
    let mut upto = rows.len();
    let mut error = None;
    let mut one_by_one = false;
    loop {
        let mut done = 0usize;
        let mut batched = false;
        let r = xact::in_subtransaction(|| {
            // Looked up in here: a dropped handler fails the projection,
            // not the caller.
            let handler = Handler::new(p.function(p.handler, &p.handler_name, "handler"));
            batched = handler.batched();
            // an upcaster that fails fails the projection, not the caller
            let rows: Vec<Datum> = rows[..upto].iter().map(|r| upcast::row(*r)).collect();
            sandboxed(p.owner, &p.search_path, || {
                handler.handle(&rows, one_by_one, &mut done)
            })
        });
        match r {
            Ok(()) => return (upto, error),
            Err(_) if batched && !one_by_one && done == 0 && upto > 1 => one_by_one = true,
            Err(e) => {
                upto = done;
                error = Some(e);
            }
        }
    }
}

/// One catch-up step of an async projection: at most `max` events. Returns
/// how many were handled; 0 when another transaction is catching it up.
pub(crate) fn run(name: &str, max: i64) -> i64 {
    // SAFETY: a plain read of the current memory context.
    let outer = unsafe { pg_sys::CurrentMemoryContext };
    spi::connected(|| {
        let caller = roles::current();
        let ext = tables::extension_owner();
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
                    stored_types(&p).into_datum(),
                    p.stream_types.clone().into_datum(),
                    Some(Datum::from(max)),
                ],
                false,
            ) as usize;
            let mut rows = Vec::with_capacity(n);
            let mut positions = Vec::with_capacity(n);
            for r in 0..n {
                let row = spi::value(r, 1).expect("event row");
                rows.push(xact::copy_into(outer, row));
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
            // SAFETY: `rows[done]` is an `es.events` row copied into the caller's memory above.
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

/// Empties a projection's read model (its reset function, or the
/// materializer's table) and replays every event into it, in this
/// transaction; returns how many events (streams, for a materializer).
pub(crate) fn rebuild(name: &str) -> i64 {
    rebuild_as(name, roles::current())
}

/// [`rebuild`], allowed when role `caller` is a member of the projection's
/// owner.
pub(crate) fn rebuild_as(name: &str, caller: pg_sys::Oid) -> i64 {
    spi::connected(|| {
        let ext = tables::extension_owner();
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
    })
}
