//! Folding events into aggregate state: `es.load`, `es.fold`, and the work
//! behind snapshots.
//!
//! A `Folder` holds one state and applies events to it, either with the
//! compiled native reducers (state in Rust, events read in jsonb's binary
//! form) or by calling the type's fold function once per event.

use crate::aggregates::definitions::{self, Def, Kind};
use crate::aggregates::index_reads;
use crate::aggregates::reducer;
use crate::aggregates::unordered::Unordered;
use crate::kept_plan;
use crate::pg::error::fail;
use crate::pg::fmgr::{composite_result, same_bytes};
use crate::pg::json_value::Val;
use crate::pg::roles;
use crate::pg::spi;
use crate::pg::xact::{self, copy_into};
use crate::store::args;
use crate::store::event::{Event, RowReader};
use pgrx::fcinfo;
use pgrx::pg_sys::{self, Datum};
use pgrx::prelude::*;
use pgrx::IntoDatum;
use std::rc::Rc;

enum State {
    Native(Val),
    /// A jsonb datum allocated in the folder's own memory context.
    Jsonb(Datum),
}

pub(crate) struct Folder {
    pub(crate) def: Rc<Def>,
    state: State,
    /// Version of the last event applied (or of the snapshot started from).
    pub(crate) version: i64,
    last_stream: Option<String>,
    /// The first event folded: its version, and whether it is a tombstone
    /// (`fold_stream` checks that nothing before it was removed).
    first_seen: Option<(i64, bool)>,
    state_cxt: pg_sys::MemoryContext,
    reader: Option<RowReader>,
    /// The upcasters as the fold began: one fold reads every event with the
    /// same ones (and does not look them up again per event).
    registry: Rc<crate::evolution::registry::Registry>,
}

impl Folder {
    /// A folder starting from `start` (a snapshot's version and state) or from
    /// the definition's initial state. Its memory lives under the current
    /// memory context.
    pub(crate) fn new(def: Rc<Def>, start: Option<(i64, Datum)>) -> Folder {
        // SAFETY: a new context under the current one; it is deleted by `free`, or with its
        // parent.
        let state_cxt = unsafe {
            pg_sys::AllocSetContextCreateInternal(
                pg_sys::CurrentMemoryContext,
                c"es fold state".as_ptr(),
                pg_sys::ALLOCSET_SMALL_MINSIZE as usize,
                pg_sys::ALLOCSET_SMALL_INITSIZE as usize,
                pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
            )
        };
        let (version, state) = match (&def.kind, start) {
            (Kind::Reducers(_, init), None) => (0, State::Native(init.clone())),
            // The snapshot's state, read lazily (`Val::Raw`) from a copy in the folder's
            // context, which outlives the state.
            (Kind::Reducers(..), Some((v, s))) => (
                v,
                State::Native(unsafe {
                    // SAFETY: `s` is the snapshot's non-null jsonb state, read while the SPI
                    // result holds it; the copy is detoasted with a 4-byte header and lives
                    // until `free` deletes the context, after the state's last use.
                    let old = pg_sys::MemoryContextSwitchTo(state_cxt);
                    let copy = pg_sys::pg_detoast_datum_copy(s.cast_mut_ptr());
                    pg_sys::MemoryContextSwitchTo(old);
                    Val::lazy_from_datum(Datum::from(copy))
                }),
            ),
            (Kind::Function(_), None) => (
                0,
                State::Jsonb(copy_into(
                    state_cxt,
                    crate::pg::jsonb::from_text(&def.initial_state),
                )),
            ),
            (Kind::Function(_), Some((v, s))) => (v, State::Jsonb(copy_into(state_cxt, s))),
            (Kind::Missing(msg), _) => {
                fail(PgSqlErrorCode::ERRCODE_UNDEFINED_FUNCTION, msg.clone())
            }
        };
        Folder {
            def,
            state,
            version,
            last_stream: None,
            first_seen: None,
            state_cxt,
            reader: None,
            registry: crate::evolution::registry::get(),
        }
    }

    /// Applies one event, given as an `es.events` composite datum.
    pub(crate) fn apply_row(&mut self, row: Datum) {
        self.apply_rows(&[row]);
    }

    /// Applies events in order. A fold function runs as its owner, in one
    /// sandbox for the whole slice (entering one costs a search_path change).
    pub(crate) fn apply_rows(&mut self, rows: &[Datum]) {
        let def = self.def.clone();
        match &def.kind {
            Kind::Function(f) => roles::sandboxed(f.owner, roles::PINNED_PATH, || {
                for row in rows {
                    self.apply_one(&def, *row);
                }
            }),
            _ => {
                for row in rows {
                    self.apply_one(&def, *row);
                }
            }
        }
    }

    fn apply_one(&mut self, def: &Def, row: Datum) {
        // Folds see every event as its type's current version: a fold
        // function gets the upcast row; reducers only the upcast type and
        // data (no new row is formed).
        let is_function = matches!(def.kind, Kind::Function(_));
        let row = if is_function {
            crate::evolution::upcast::row(row)
        } else {
            row
        };
        if self.reader.is_none() {
            // SAFETY: the folder's own context, alive while the folder is.
            let old = unsafe { pg_sys::MemoryContextSwitchTo(self.state_cxt) };
            // SAFETY: the folds are handed `es.events` rows only (the aggregate's argument
            // type, the queries of this module).
            self.reader = Some(unsafe { RowReader::for_row(row) });
            // SAFETY: switches back to the context saved just above.
            unsafe { pg_sys::MemoryContextSwitchTo(old) };
        }
        // SAFETY: `row` is an `es.events` row of the reader's type; the event borrows it for
        // this call only.
        let ev = unsafe { self.reader.as_ref().expect("reader").read(row) };
        self.apply_read(def, ev, row, is_function);
    }

    /// Applies the row in `slot` (`es.events`' columns, `e.*`, read in
    /// place) when its version is in `from < version <= target`; false when
    /// it is past `target` (rows come in version order: the caller stops
    /// there). Native reducers only.
    pub(crate) fn apply_slot_within(
        &mut self,
        slot: *mut pg_sys::TupleTableSlot,
        from: i64,
        target: i64,
    ) -> bool {
        let def = self.def.clone();
        debug_assert!(matches!(def.kind, Kind::Reducers(..)));
        if self.reader.is_none() {
            // SAFETY: the folder's own context, alive while the folder is; the slot's
            // descriptor is the query's (es.events' columns), copied there.
            unsafe {
                let old = pg_sys::MemoryContextSwitchTo(self.state_cxt);
                self.reader = Some(RowReader::for_desc((*slot).tts_tupleDescriptor));
                pg_sys::MemoryContextSwitchTo(old);
            }
        }
        // SAFETY: the slot holds a row of that query until this call returns.
        let ev = unsafe { self.reader.as_ref().expect("reader").read_slot(slot) };
        if ev.version > target {
            return false;
        }
        if ev.version > from {
            self.apply_read(&def, ev, Datum::from(0usize), false);
        }
        true
    }

    /// Applies an event given as columns (es.fold's column form; native
    /// reducers only, checked when the folder was made).
    pub(crate) fn apply_columns(&mut self, ev: Event) {
        let def = self.def.clone();
        self.apply_read(&def, ev, Datum::from(0usize), false);
    }

    /// The event read, upcast for reducers, applied. `row` is the event's
    /// composite datum for a fold function (unused by reducers).
    fn apply_read(&mut self, def: &Def, ev: Event, row: Datum, is_function: bool) {
        if is_function {
            // a fold function is handed the upcast row
            return self.apply_event(def, &ev, row);
        }
        let reg = self.registry.clone();
        upcast_read(&reg, ev, |ev| self.apply_event(def, ev, row));
    }

    fn apply_event(&mut self, def: &Def, ev: &Event, row: Datum) {
        check_stream_type(def, ev);
        if self.first_seen.is_none() {
            self.first_seen = Some((
                ev.version,
                ev.event_type == crate::store::guard::STREAM_DELETED,
            ));
        }
        // The store's own markers ($StreamDeleted, $EventsRedacted) are
        // skipped unless the reducers name them.
        if ev.event_type.starts_with('$')
            && !matches!(&def.kind, Kind::Reducers(r, _) if r.names(ev.event_type))
        {
            self.last_stream = Some(ev.stream_id.to_owned());
            self.version = ev.version;
            return;
        }
        let same_stream = self
            .last_stream
            .as_deref()
            .is_some_and(|s| same_bytes(s.as_bytes(), ev.stream_id.as_bytes()));
        if same_stream && ev.version <= self.version {
            fail(
                PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
                format!(
                    "events of stream \"{}\" are not in version order ({} after {}); fold them ORDER BY version",
                    ev.stream_id, ev.version, self.version
                ),
            );
        }
        if !same_stream {
            self.last_stream = Some(ev.stream_id.to_owned());
        }
        match (&def.kind, &mut self.state) {
            (Kind::Reducers(r, _), State::Native(state)) => {
                if let Err(e) = r.apply(state, ev) {
                    fail(
                        PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
                        reducer::step_failed(ev.stream_id, ev.version, ev.event_type, &e),
                    );
                }
            }
            (Kind::Function(f), State::Jsonb(state)) => {
                // SAFETY: nothing here needs unwinding (the state and its
                // context belong to the caller's memory, freed with it).
                let Some(next) = (unsafe { f.call_propagating(&[*state, row]) }) else {
                    fail(
                        PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                        "the aggregate's fold function returned NULL; it must return the new state"
                            .into(),
                    );
                };
                let copied = copy_into(self.state_cxt, next);
                // SAFETY: the previous state was allocated by `copy_into` in the folder's
                // context and nothing else points to it.
                unsafe { pg_sys::pfree(state.cast_mut_ptr()) };
                *state = copied;
            }
            _ => unreachable!("state kind follows the definition"),
        }
        self.version = ev.version;
    }

    /// The state as jsonb, in the current memory context.
    pub(crate) fn result(&self) -> Datum {
        match &self.state {
            State::Native(v) => v.to_jsonb(),
            // SAFETY: the state is a jsonb datum in the folder's context; the copy goes into
            // the caller's.
            State::Jsonb(d) => unsafe {
                Datum::from(pg_sys::pg_detoast_datum_copy(d.cast_mut_ptr()))
            },
        }
    }
}

/// Fails for an event of another stream type than the one folded.
fn check_stream_type(def: &Def, ev: &Event) {
    if !same_bytes(ev.stream_type.as_bytes(), def.stream_type.as_bytes()) {
        fail(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "cannot fold events of stream types \"{}\" and \"{}\" together; group the events by stream",
                def.stream_type, ev.stream_type
            ),
        );
    }
}

/// Hands `f` the event as reducers read it: its type's current version
/// (the upcast type and data; no new row is formed).
fn upcast_read(reg: &crate::evolution::registry::Registry, ev: Event, f: impl FnOnce(&Event)) {
    // a renamed type borrows from the registry: the event lives no longer than it
    let mut ev: Event<'_> = ev;
    // data the chain built for this event, freed once it is applied
    let mut built = None;
    if reg.any_upcaster {
        if let Some((renamed, _, data)) = crate::evolution::upcast::chain(
            reg,
            ev.event_type,
            ev.schema_version,
            ev.data_datum,
            ev.metadata_datum,
        ) {
            if let Some(t) = renamed {
                ev.event_type = t;
            }
            // reducers read the upcast data as they read stored data
            // (built without a call into PostgreSQL per value)
            // SAFETY: `chain` returns a non-null jsonb datum.
            ev.data = unsafe { crate::pg::jsonb::Container::from_datum(data) };
            built = (data != ev.data_datum).then_some(data);
            ev.data_datum = data;
        }
    }
    f(&ev);
    if let Some(data) = built {
        // SAFETY: built for this event by the chain in the current context; the
        // state copied what it kept (Val owns its values).
        unsafe { pg_sys::pfree(data.cast_mut_ptr()) };
    }
}

impl Folder {
    /// Frees the folder's memory now rather than with its parent context.
    /// (Not a `Drop`: inside an aggregate the parent context, and this one
    /// with it, is gone by the time the Rust side is dropped.)
    pub(crate) fn free(self) {
        // SAFETY: the context was created by `Folder::new` and is deleted only here.
        unsafe { pg_sys::MemoryContextDelete(self.state_cxt) };
    }
}

kept_plan!(
    LATEST_SNAPSHOT,
    c"SELECT version, state FROM es.snapshots
       WHERE stream_id = $1 AND revision = $2 AND version <= $3
       ORDER BY version DESC LIMIT 1",
    [pg_sys::TEXTOID, pg_sys::INT8OID, pg_sys::INT8OID]
);
// `es.load`'s first look in one statement: the stream's row and, for the
// revision of the type its id names, the latest snapshot at or below the
// version asked ($3). One statement instead of two: each costs an executor
// start, which is most of what reading one row costs.
kept_plan!(
    STREAM_AND_SNAPSHOT,
    c"SELECT s.stream_type, s.version, n.version, n.state
        FROM es.streams s
        LEFT JOIN LATERAL (
             SELECT n.version, n.state FROM es.snapshots n
              WHERE n.stream_id = $1 AND n.revision = $2
                AND n.version <= LEAST(s.version, $3)
              ORDER BY n.version DESC LIMIT 1) n ON true
       WHERE s.stream_id = $1",
    [pg_sys::TEXTOID, pg_sys::INT8OID, pg_sys::INT8OID]
);
kept_plan!(
    FIRST_STORED,
    c"SELECT first_version FROM es.stream_lifecycle WHERE stream_id = $1",
    [pg_sys::TEXTOID]
);

/// Fails with 55000 when the fold from version `from` missed events that
/// es.truncate_stream, es.delete_stream or retention removed (no snapshot
/// holds the state there): it read none up to `target`, or its first was
/// not the next one (nor a tombstone, after which a stream starts afresh).
/// A gap the lifecycle functions did not make is left to es.verify.
fn check_removed(stream_id: Datum, from: i64, target: i64, first_seen: Option<(i64, bool)>) {
    let missed = match first_seen {
        None => target > from && target < i64::MAX,
        Some((v, tombstone)) => v != from + 1 && !tombstone,
    };
    if !missed || crate::pg::tables::relation(c"stream_lifecycle") == pg_sys::Oid::INVALID {
        return;
    }
    let first = if FIRST_STORED.run(&[Some(stream_id)], true) == 1 {
        spi::value_i64(0, 1).unwrap_or(1)
    } else {
        1
    };
    if first > from + 1 {
        // SAFETY: `stream_id` is the caller's text datum.
        let name = unsafe { crate::pg::fmgr::text_datum_str(stream_id) };
        crate::pg::error::fail_hint(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("stream \"{name}\" no longer stores its events below version {first}: they were removed"),
            "es.truncate_stream, es.delete_stream and retention remove events (see es.audit); es.load reaches the versions from the stream's kept snapshot on.",
        );
    }
}

// The same as columns, for native reducers (no composite row per event).
kept_plan!(
    EVENTS_AFTER_COLUMNS,
    c"SELECT e.* FROM es.events e
       WHERE e.stream_id = $1 AND e.version > $2 AND e.version <= $3
       ORDER BY e.version",
    [pg_sys::TEXTOID, pg_sys::INT8OID, pg_sys::INT8OID]
);
kept_plan!(
    EVENTS_AFTER,
    c"SELECT e FROM es.events e
       WHERE e.stream_id = $1 AND e.version > $2 AND e.version <= $3
       ORDER BY e.version",
    [pg_sys::TEXTOID, pg_sys::INT8OID, pg_sys::INT8OID]
);
// The same, once a stream has been archived (es.archived_events has rows).
kept_plan!(
    EVENTS_AFTER_ALL,
    c"SELECT x.e FROM (
        SELECT e, e.version AS v FROM es.events e
         WHERE e.stream_id = $1 AND e.version > $2 AND e.version <= $3
        UNION ALL
        SELECT ROW(a.*)::es.events, a.version FROM es.archived_events a
         WHERE a.stream_id = $1 AND a.version > $2 AND a.version <= $3) x
      ORDER BY x.v",
    [pg_sys::TEXTOID, pg_sys::INT8OID, pg_sys::INT8OID]
);

/// Folds a stream up to `target` from its newest usable snapshot at or below
/// it. Must run inside an SPI connection; the folder's memory lives in the
/// memory context `outer`. `read_only` reads with the caller's snapshot (a
/// STABLE function, possibly on a standby); otherwise with a fresh one that
/// sees the current command's own writes (the snapshot trigger, the
/// materializer).
pub(crate) fn fold_stream(
    outer: pg_sys::MemoryContext,
    stream_id: Datum,
    def: Rc<Def>,
    target: i64,
    read_only: bool,
) -> Folder {
    if !read_only {
        // Read as a statement of its own (what SPI does for one that must see
        // this command's writes: the snapshot trigger's fold); every read below,
        // straight from the indexes or by query, is made with its snapshot.
        return crate::pg::table_write::statement(|| {
            fold_stream(outer, stream_id, def, target, true)
        });
    }
    let read = snapshot_at(stream_id, &def, target);
    let folder = fold_from(outer, stream_id, def, read.snapshot, target, false);
    read.release();
    folder
}

/// The latest snapshot of `def`'s revision at or below `target`, from the
/// index where it may be read so, else by query; with the active snapshot.
fn snapshot_at(stream_id: Datum, def: &Def, target: i64) -> index_reads::SnapshotRead {
    if let Some(read) =
        index_reads::latest_snapshot(stream_id, def.revision, target, def.snapshot_every as i64)
    {
        return read;
    }
    let found = target > 0
        && LATEST_SNAPSHOT.run(
            &[
                Some(stream_id),
                Some(Datum::from(def.revision)),
                Some(Datum::from(target)),
            ],
            true,
        ) == 1;
    index_reads::SnapshotRead::held(found.then(|| {
        (
            spi::value_i64(0, 1).unwrap_or(0),
            spi::value(0, 2).expect("snapshot state"),
        )
    }))
}

/// `STREAM_AND_SNAPSHOT`: what `index_reads::stream_and_snapshot` reads, by
/// query (the stream's liveness not asked).
fn first_look_by_query(
    stream_id: Datum,
    revision: i64,
    upto: i64,
) -> Option<index_reads::FirstLook> {
    let args = [
        Some(stream_id),
        Some(Datum::from(revision)),
        Some(Datum::from(upto)),
    ];
    (STREAM_AND_SNAPSHOT.run(&args, true) == 1).then(|| index_reads::FirstLook {
        stream_type: spi::value_string(0, 1).unwrap_or_default(),
        version: spi::value_i64(0, 2).unwrap_or(0),
        live: false,
        snapshot: index_reads::SnapshotRead::held(
            spi::value_i64(0, 3).map(|v| (v, spi::value(0, 4).expect("snapshot state"))),
        ),
    })
}

/// Folds the stream's events after `start` (a snapshot, or none) up to
/// `target`, read with the active snapshot. `live`: the stream's row, read
/// with it, says the stream is neither archived nor deleted, so none of its
/// events are in es.archived_events (es.archive_stream moves them all, and
/// marks the row).
fn fold_from(
    outer: pg_sys::MemoryContext,
    stream_id: Datum,
    def: Rc<Def>,
    start: Option<(i64, Datum)>,
    target: i64,
    live: bool,
) -> Folder {
    let sid = Some(stream_id);
    // SAFETY: switches to the caller's context `outer` for the folder and back.
    let mut folder = unsafe {
        let old = pg_sys::MemoryContextSwitchTo(outer);
        let f = Folder::new(def, start);
        pg_sys::MemoryContextSwitchTo(old);
        f
    };
    if target <= folder.version {
        return folder;
    }
    // Per-event garbage (detoasted copies, fold function results) goes into a
    // context that is reset after every batch.
    let batch_cxt = xact::new_context(xact::current_context(), c"es fold batch");
    let args = [
        sid,
        Some(Datum::from(folder.version)),
        Some(Datum::from(target)),
    ];
    let from = folder.version;
    // Native reducers are handed the events straight from the index where
    // that gives what the query would (index_reads.rs).
    let reducers = matches!(folder.def.kind, Kind::Reducers(..));
    let direct = if reducers {
        index_reads::events_after(stream_id, from, live)
    } else {
        None
    };
    // Reducers read each row where the index scan or the executor left it (no
    // copy, no cursor, however long the stream); garbage is freed every thousand.
    let mut n = 0u32;
    let mut apply = |slot: *mut pg_sys::TupleTableSlot| -> bool {
        // SAFETY: `batch_cxt` was created above and lives until the end of this
        // function; the saved context is restored before the reset. The slot holds
        // its row until this returns.
        unsafe {
            let old = pg_sys::MemoryContextSwitchTo(batch_cxt);
            let within = folder.apply_slot_within(slot, from, target);
            pg_sys::MemoryContextSwitchTo(old);
            n += 1;
            if n.is_multiple_of(1000) {
                pg_sys::MemoryContextReset(batch_cxt);
            }
            within
        }
    };
    let archive = direct.is_none() && crate::store::archive::in_use();
    if let Some(mut scan) = direct {
        while let Some(slot) = scan.next_deformed() {
            if !apply(slot) {
                break;
            }
        }
        scan.close();
    } else if reducers && !archive {
        EVENTS_AFTER_COLUMNS.slots(&args, true, |slot| {
            apply(slot);
        });
    } else {
        // A fold function is handed whole rows, and so are archived events (read
        // with the stored ones). A few events after a snapshot (the usual case)
        // are read in one go; a long stream with none through a cursor, a
        // thousand at a time.
        let plan = if archive {
            &EVENTS_AFTER_ALL
        } else {
            &EVENTS_AFTER
        };
        plan.tuples(&args, true, target - from > 1000, |desc, tuples| {
            // SAFETY: `batch_cxt` was created above and lives until the end of this function.
            let old = unsafe { pg_sys::MemoryContextSwitchTo(batch_cxt) };
            folder.apply_rows(&spi::first_column(desc, tuples));
            // SAFETY: switches back to the saved context, then frees the batch's garbage.
            unsafe {
                pg_sys::MemoryContextSwitchTo(old);
                pg_sys::MemoryContextReset(batch_cxt);
            }
        });
    }
    // SAFETY: the batch context was created above; nothing allocated in it is used after this.
    unsafe { pg_sys::MemoryContextDelete(batch_cxt) };
    check_removed(stream_id, from, target, folder.first_seen.take());
    folder
}

crate::v1_function_info!(pg_finfo_es_load);

/// es._load(stream_id text, at_version bigint) RETURNS es.aggregate_state
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose arguments match
/// the function's SQL signature in `sql/`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_load(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let stream_id = args::identifier("stream_id", fcinfo::pg_getarg::<&str>(fcinfo, 0));
    let stream_id_datum = fcinfo::pg_getarg_datum_raw(fcinfo, 0);
    let at_version = fcinfo::pg_getarg::<i64>(fcinfo, 1);
    if let Some(v) = at_version.filter(|v| *v < 0) {
        fail(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("at_version must not be negative, got {v}"),
        );
    }
    let outer = pg_sys::CurrentMemoryContext;
    let (stream_type, folder) = spi::connected(|| {
        // The type the id names is the stream's recorded type but for
        // streams appended with another: then the snapshot read with the
        // first look may be of the wrong type's revision, and is looked up
        // again.
        let named = args::default_stream_type(stream_id);
        let guess = definitions::get(named);
        let upto = at_version.unwrap_or(i64::MAX);
        let revision = guess.as_ref().map_or(0, |d| d.revision);
        let every = guess.as_ref().map_or(0, |d| d.snapshot_every as i64);
        let look = index_reads::stream_and_snapshot(stream_id_datum, revision, every, upto)
            .unwrap_or_else(|| first_look_by_query(stream_id_datum, revision, upto));
        let (stream_type, current, live, first) = match look {
            Some(l) => (l.stream_type, l.version, l.live, Some(l.snapshot)),
            None => (named.to_owned(), 0, false, None),
        };
        let target = upto.min(current);
        let def = definitions::require(&stream_type);
        let guessed = guess.is_some_and(|g| stream_type == named && g.revision == def.revision);
        let read = match first {
            Some(read) if guessed => read,
            other => {
                if let Some(r) = other {
                    r.release();
                }
                snapshot_at(stream_id_datum, &def, target)
            }
        };
        let folder = fold_from(outer, stream_id_datum, def, read.snapshot, target, live);
        read.release();
        (stream_type, folder)
    });
    let values = [
        stream_id.into_datum(),
        stream_type.as_str().into_datum(),
        Some(Datum::from(folder.version)),
        Some(folder.result()),
    ];
    folder.free();
    composite_result(fcinfo, &values)
}

// ---- es.fold(event es.events ORDER BY version) -----------------------------

crate::v1_function_info!(pg_finfo_es_fold_transition);

/// # Safety
/// Called by PostgreSQL when the memory context `boxed_in` registered it
/// with goes; `arg` is that `Box<T>`, dropped once.
unsafe extern "C-unwind" fn drop_boxed<T>(arg: *mut std::ffi::c_void) {
    drop(Box::from_raw(arg as *mut T));
}

/// `value` on the Rust heap, dropped when the memory context `cxt` is reset
/// or deleted (an aggregate's state lives as long as its context).
///
/// # Safety
/// `cxt` is a valid memory context; the pointer is not used after it goes.
unsafe fn boxed_in<T>(cxt: pg_sys::MemoryContext, value: T) -> *mut T {
    let state = Box::into_raw(Box::new(value));
    let cb = pg_sys::MemoryContextAlloc(cxt, std::mem::size_of::<pg_sys::MemoryContextCallback>())
        as *mut pg_sys::MemoryContextCallback;
    (*cb).func = Some(drop_boxed::<T>);
    (*cb).arg = state.cast();
    (*cb).next = std::ptr::null_mut();
    pg_sys::MemoryContextRegisterResetCallback(cxt, cb);
    state
}

/// Transition function: (internal, es.events) -> internal.
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose arguments match
/// the function's SQL signature in `sql/`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_fold_transition(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let mut aggcxt: pg_sys::MemoryContext = std::ptr::null_mut();
    if pg_sys::AggCheckCallContext(fcinfo, &mut aggcxt) == 0 {
        pgrx::error!("es.fold's transition function called outside an aggregate");
    }
    let mut state = if fcinfo::pg_arg_is_null(fcinfo, 0) {
        std::ptr::null_mut()
    } else {
        fcinfo::pg_getarg_datum_raw(fcinfo, 0).cast_mut_ptr::<Folder>()
    };
    // A NULL event (a LEFT JOIN's missing side) is skipped, like a strict
    // aggregate skips NULL input; with no state yet the result stays NULL.
    if fcinfo::pg_arg_is_null(fcinfo, 1) {
        if state.is_null() {
            return fcinfo::pg_return_null(fcinfo);
        }
        return Datum::from(state);
    }
    let row = fcinfo::pg_getarg_datum_raw(fcinfo, 1);
    if state.is_null() {
        let reader = RowReader::for_row(row);
        let def = definitions::require(reader.read(row).stream_type);
        let old = pg_sys::MemoryContextSwitchTo(aggcxt);
        state = boxed_in(aggcxt, Folder::new(def, None));
        pg_sys::MemoryContextSwitchTo(old);
    }
    (*state).apply_row(row);
    Datum::from(state)
}

/// The definition es.fold's column form folds `stream_type` with: it cannot
/// hand a fold function its row, nor reducers the columns it is not given.
fn column_def(stream_type: &str) -> Rc<Def> {
    let def = definitions::require(stream_type);
    let unsupported = match &def.kind {
        Kind::Function(_) => {
            Some("it is folded by a fold function, which is handed whole rows".to_owned())
        }
        Kind::Reducers(r, _) => r
            .row_only_source()
            .map(|src| format!("its reducers read \"{src}\"")),
        Kind::Missing(_) => None,
    };
    if let Some(why) = unsupported {
        crate::pg::error::fail_hint(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("es.fold(stream_id, stream_type, version, event_type, data, metadata, schema_version) cannot fold stream type \"{stream_type}\": {why}"),
            "Fold whole rows: es.fold(e ORDER BY version).",
        );
    }
    def
}

/// es.fold's column form's state: given `ORDER BY`, a folder that takes the
/// events in that order; without, segments that take one stream's events in
/// any order (`unordered`).
pub(crate) struct Columns {
    fold: ColumnFold,
    /// Where an event's short jsonb data is copied to be read (reused for
    /// every event).
    scratch: Vec<u64>,
}

enum ColumnFold {
    Ordered(Folder),
    /// With the upcasters as the fold began (as `Folder` keeps them).
    Unordered(Unordered, Rc<crate::evolution::registry::Registry>),
}

crate::v1_function_info!(pg_finfo_es_fold_columns_transition);

/// Transition function of es.fold's column form: (internal, stream_id text,
/// stream_type text, version bigint, event_type text, data jsonb, metadata
/// jsonb, schema_version integer) -> internal. No row is formed per event
/// (the whole-row argument costs about a third of es.fold(e)).
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose arguments match
/// the function's SQL signature in `sql/`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_fold_columns_transition(
    fcinfo: pg_sys::FunctionCallInfo,
) -> Datum {
    const NAMES: [&str; 7] = [
        "stream_id",
        "stream_type",
        "version",
        "event_type",
        "data",
        "metadata",
        "schema_version",
    ];
    let mut state = if fcinfo::pg_arg_is_null(fcinfo, 0) {
        std::ptr::null_mut()
    } else {
        fcinfo::pg_getarg_datum_raw(fcinfo, 0).cast_mut_ptr::<Columns>()
    };
    let args: [Option<Datum>; 7] =
        std::array::from_fn(|i| crate::pg::fmgr::arg_datum(fcinfo, i + 1));
    // An event that is all NULLs (a LEFT JOIN's missing side) is skipped,
    // like a strict aggregate skips NULL input.
    if args.iter().all(Option::is_none) {
        if state.is_null() {
            return fcinfo::pg_return_null(fcinfo);
        }
        return Datum::from(state);
    }
    if let Some(i) = args.iter().position(Option::is_none) {
        fail(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("an event's {} must not be NULL", NAMES[i]),
        );
    }
    let values = args.map(|a| a.expect("checked above"));
    let stream_type = crate::pg::fmgr::text_datum_str(values[1]);
    if state.is_null() {
        // Asked once per group, not per event (a call through pgrx's error
        // boundary): an `internal` state exists only if this check passed.
        let mut aggcxt: pg_sys::MemoryContext = std::ptr::null_mut();
        if pg_sys::AggCheckCallContext(fcinfo, &mut aggcxt) == 0 {
            pgrx::error!("es.fold's transition function called outside an aggregate");
        }
        let def = column_def(stream_type);
        // Given ORDER BY, the events come in the order asked for, and are
        // folded in it (a window's frame as well: it has no Aggref).
        let aggref = pg_sys::AggGetAggref(fcinfo);
        let ordered = aggref.is_null() || !(*aggref).aggorder.is_null();
        let old = pg_sys::MemoryContextSwitchTo(aggcxt);
        let fold = if ordered {
            ColumnFold::Ordered(Folder::new(def, None))
        } else {
            ColumnFold::Unordered(Unordered::new(def), crate::evolution::registry::get())
        };
        state = boxed_in(
            aggcxt,
            Columns {
                fold,
                scratch: Vec::new(),
            },
        );
        pg_sys::MemoryContextSwitchTo(old);
    }
    let cols = &mut *state;
    // the data is read from the state's scratch space
    let ev = Event {
        global_position: 0,
        stream_id: crate::pg::fmgr::text_datum_str(values[0]),
        stream_type,
        version: values[2].value() as i64,
        event_type: crate::pg::fmgr::text_datum_str(values[3]),
        data: crate::pg::jsonb::Container::from_datum_scratch(values[4], &mut cols.scratch),
        data_datum: values[4],
        metadata_datum: values[5],
        // Not given: reducers reading them are refused by `column_def`.
        event_id: Datum::from(0usize),
        recorded_at: Datum::from(0usize),
        schema_version: values[6].value() as i32,
    };
    match &mut cols.fold {
        ColumnFold::Ordered(folder) => folder.apply_columns(ev),
        ColumnFold::Unordered(u, reg) => {
            check_stream_type(&u.def, &ev);
            upcast_read(reg, ev, |ev| u.add(ev));
        }
    }
    Datum::from(state)
}

crate::v1_function_info!(pg_finfo_es_fold_final);

/// Final function: internal -> jsonb (NULL for no events).
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose arguments match
/// the function's SQL signature in `sql/`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_fold_final(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    if fcinfo::pg_arg_is_null(fcinfo, 0) {
        return fcinfo::pg_return_null(fcinfo);
    }
    let state = fcinfo::pg_getarg_datum_raw(fcinfo, 0).cast_mut_ptr::<Folder>();
    (*state).result()
}

crate::v1_function_info!(pg_finfo_es_fold_columns_final);

/// Final function of the column form: internal -> jsonb (NULL for no
/// events). It leaves the state as it was (PostgreSQL may finish one state
/// twice, for two identical calls in a query).
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose arguments match
/// the function's SQL signature in `sql/`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_fold_columns_final(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    if fcinfo::pg_arg_is_null(fcinfo, 0) {
        return fcinfo::pg_return_null(fcinfo);
    }
    let state = fcinfo::pg_getarg_datum_raw(fcinfo, 0).cast_mut_ptr::<Columns>();
    match &(*state).fold {
        ColumnFold::Ordered(folder) => folder.result(),
        // (a state exists once it has an event: never without segments)
        ColumnFold::Unordered(u, _) => match u.finish() {
            Ok(v) => v.to_jsonb(),
            Err((code, msg)) => fail(code, msg),
        },
    }
}
