//! The commonest append written without a plan: one event to a stream that
//! exists, with no expected version or one above 0 (`es.append_event`,
//! Message DB's `write_message`, every command after a stream's first).
//!
//! It does what the append statement (`append.rs`) does, row for row: the
//! stream's row in `es.streams` moves on (same checks: the type, the
//! expected version, a last position below the one reserved) under the same
//! row lock and concurrency rules, then the event goes into `es.events` and
//! each of its indexes. Starting and ending the statement's plan cost about a
//! sixth of an append (299,000 -> 247,000 instructions without it); this does
//! the heap and index work alone (`pg::table_write`). Wherever that would not be exactly the
//! statement (a trigger or policy a user added, a column the store does not
//! know, privileges that differ), `append_existing` says `Unavailable` and
//! the statement runs.

use crate::pg::index_scan::Key;
use crate::pg::table_write::{self, Command, TableWriter, Updated};
use crate::store::{chain, event};
use pgrx::pg_sys::{self, Datum};
use pgrx::IntoDatum;

/// The event, as the statement's parameters carry it.
pub(crate) struct Event {
    pub(crate) event_type: Datum,
    pub(crate) data: Datum,
    pub(crate) metadata: Option<Datum>,
    pub(crate) event_id: Datum,
    pub(crate) schema_version: i32,
}

/// The stream's row after the append, as the statement returns it.
pub(crate) struct Done {
    pub(crate) version: i64,
    pub(crate) stream_type: String,
    /// The event's row (`es.events` row type), when asked for.
    pub(crate) row: Option<Datum>,
}

pub(crate) enum Outcome {
    Done(Done),
    /// The stream's row did not take the event (missing, or a check failed):
    /// what the statement reports by returning no row.
    NoRow,
    /// Not done: the statement must run (see the module).
    Unavailable,
}

/// Appends `event` at `position` to the existing stream `stream_id` (a text
/// datum) whose type is `stream_type` (when given), at `expected` version
/// (when given), `digest` its hash-chain digest (`chain.rs`).
pub(crate) fn append_existing(
    stream_id: Datum,
    stream_type: Option<&str>,
    expected: Option<i64>,
    position: i64,
    digest: &chain::Hash,
    event: &Event,
    with_row: bool,
) -> Outcome {
    table_write::statement(|| {
        let Some(mut streams) = TableWriter::open(c"streams", Command::Update, &[]) else {
            return Outcome::Unavailable;
        };
        let Some(mut events) = TableWriter::open(c"events", Command::Insert, &event::COLUMNS)
        else {
            streams.close();
            return Outcome::Unavailable;
        };
        let now = chain::now();
        // The statement's WHERE and SET, on the row as found (and again on its
        // newest version when a concurrent append moved it first).
        let updated = streams.update_unique(
            c"streams_pkey",
            Key::TextEq("stream_id", stream_id),
            |row| {
                let int = |name| row(name).map_or(0, |d: Datum| d.value() as i64);
                let (version, last) = (int("version"), int("last_position"));
                // SAFETY: stream_type is a NOT NULL text column; chain_hash a bytea one.
                let recorded_type = unsafe {
                    chain::varlena_bytes(row("stream_type").expect("stream_type is NOT NULL"))
                };
                if stream_type.is_some_and(|t| t.as_bytes() != recorded_type)
                    || last >= position
                    || expected.is_some_and(|e| e != version)
                {
                    return None;
                }
                // SAFETY: as above.
                let prev = row("chain_hash").map(|h| unsafe { chain::varlena_bytes(h) });
                let head = chain::advance(prev, version, recorded_type, &digest[..]);
                Some(vec![
                    ("version", Some(Datum::from(version + 1))),
                    ("last_position", Some(Datum::from(position))),
                    ("updated_at", Some(Datum::from(now))),
                    ("chain_hash", head.map(|h| chain::bytea(&h))),
                ])
            },
        );
        let outcome = match updated {
            None => Outcome::Unavailable,
            Some(Updated::NoRow) => Outcome::NoRow,
            Some(Updated::Row) => {
                let version = streams.value("version").map_or(0, |d| d.value() as i64);
                let type_datum = streams.value("stream_type");
                events.insert(&[
                    ("global_position", Some(Datum::from(position))),
                    ("stream_id", Some(stream_id)),
                    ("stream_type", type_datum),
                    ("version", Some(Datum::from(version))),
                    ("event_type", Some(event.event_type)),
                    ("data", Some(event.data)),
                    (
                        "metadata",
                        Some(event.metadata.unwrap_or_else(empty_object)),
                    ),
                    ("event_id", Some(event.event_id)),
                    ("recorded_at", Some(Datum::from(now))),
                    ("schema_version", event.schema_version.into_datum()),
                ]);
                // SAFETY: a NOT NULL text column of the row just written.
                let stream_type = unsafe {
                    String::from_utf8_lossy(chain::varlena_bytes(type_datum.expect("a type")))
                        .into_owned()
                };
                Outcome::Done(Done {
                    version,
                    stream_type,
                    row: with_row.then(|| events.row()),
                })
            }
        };
        events.close();
        streams.close();
        outcome
    })
}

/// `'{}'::jsonb`, the metadata of an event given none.
fn empty_object() -> Datum {
    let bytes = chain::EMPTY_OBJECT;
    let size = pg_sys::VARHDRSZ + bytes.len();
    // SAFETY: a fresh varlena of `size` bytes in the current memory context: its header
    // set, then the jsonb object header (an empty object) copied after it.
    unsafe {
        let v = pg_sys::palloc(size) as *mut u8;
        pgrx::set_varsize_4b(v.cast(), size as i32);
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), v.add(pg_sys::VARHDRSZ), bytes.len());
        Datum::from(v)
    }
}
