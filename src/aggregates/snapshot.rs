//! Snapshots: after each append, the append path
//! (`projections::after_append`) writes one, in the appending transaction,
//! when a stream's version reaches a multiple of its type's `snapshot_every`.
//! Whether one is due is answered from the cached definitions, so appends
//! that are not due read nothing back.
//! Each snapshot is folded from the previous one, so its cost does not grow
//! with the stream. Only appends made through the extension's functions take
//! snapshots: rows that a restore copies in are left alone.

use crate::aggregates::definitions;
use crate::aggregates::fold::fold_stream;
use crate::kept_plan;
use crate::pg::spi;
use crate::store::event::Event;
use pgrx::pg_sys::{self, Datum};
use pgrx::IntoDatum;

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

/// Whether appending version `version` of a stream of this type is due a
/// snapshot (its version reached a multiple of the type's `snapshot_every`).
pub(crate) fn due(stream_type: &str, version: i64) -> bool {
    due_between(stream_type, version, version)
}

/// Whether streams of this type take snapshots at all.
pub(crate) fn defined(stream_type: &str) -> bool {
    definitions::get(stream_type).is_some_and(|d| d.snapshot_every > 0)
}

/// Whether a snapshot is due at any version from `first` to `last`.
pub(crate) fn due_between(stream_type: &str, first: i64, last: i64) -> bool {
    definitions::get(stream_type).is_some_and(|d| {
        let every = d.snapshot_every as i64;
        every > 0 && last / every * every >= first
    })
}

/// Writes the snapshot of the stream at the event just inserted (`row`, read
/// as `ev`), folded from the previous snapshot.
///
/// # Safety
/// `ev` was read from the `es.events` row just appended, in the appending call.
pub(crate) unsafe fn take(ev: &Event) {
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
}
