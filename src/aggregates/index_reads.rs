//! es.load's reads straight from the indexes (src/pg/index_scan.rs): the
//! stream's row, its latest snapshot, the events after it. Each gives exactly
//! the rows of the query it stands for in fold.rs (`STREAM_AND_SNAPSHOT`,
//! `LATEST_SNAPSHOT`, `EVENTS_AFTER_COLUMNS`, the last with the fold keeping
//! its version bounds), read with the active snapshot; where it cannot
//! (no table-level SELECT, row level security, archived events) it says so
//! and the query runs. A command loads its aggregate once: planless reads cut
//! es.load of a stream a few events past its snapshot to about half.

use crate::pg::index_scan::{IndexScan, Key};
use pgrx::pg_sys::Datum;

/// A stream's latest snapshot of a revision at or below a version:
/// (version, state). The state points into the scan's buffer, or into the
/// SPI result that read it: `release` after the folder copied it.
pub(crate) struct SnapshotRead {
    pub(crate) snapshot: Option<(i64, Datum)>,
    scan: Option<IndexScan>,
}

impl SnapshotRead {
    /// A snapshot read by query (or none), held by the SPI result.
    pub(crate) fn held(snapshot: Option<(i64, Datum)>) -> SnapshotRead {
        SnapshotRead {
            snapshot,
            scan: None,
        }
    }

    pub(crate) fn release(self) {
        if let Some(s) = self.scan {
            s.close();
        }
    }
}

/// The latest snapshot of `revision` at or below `upper`, as
/// `LATEST_SNAPSHOT` reads it; None: read with the query instead. `every`:
/// the type's `snapshot_every` (0: none are taken).
///
/// A stream keeps every snapshot it took, and PostgreSQL 15's btree tests
/// every entry of a page that its keys let through before it returns the
/// first: a backward scan from `upper` read all the stream's snapshots on
/// the page (the bank benchmark's accounts, about 500 events old: 50 of
/// them, 5% of a deposit's instructions). Appends take one whenever the
/// version reaches a multiple of `every` (within an append of several
/// events too), so the newest is usually above `upper - every`: the scan
/// looks there first, with that as a key that stops it, and only when none
/// is there (a stream older than its type's definition, a snapshot
/// removed) looks further down.
pub(crate) fn latest_snapshot(
    stream_id: Datum,
    revision: i64,
    upper: i64,
    every: i64,
) -> Option<SnapshotRead> {
    if upper < 1 {
        return Some(SnapshotRead::held(None));
    }
    if every > 0 && upper > every {
        let near = snapshot_scan(stream_id, revision, upper, Some(upper - every))?;
        if near.snapshot.is_some() {
            return Some(near);
        }
    }
    snapshot_scan(stream_id, revision, upper, None)
}

/// One backward scan for the newest snapshot in `(above, upper]`; None: read
/// with the query instead.
fn snapshot_scan(
    stream_id: Datum,
    revision: i64,
    upper: i64,
    above: Option<i64>,
) -> Option<SnapshotRead> {
    let keys = [
        Key::TextEq("stream_id", stream_id),
        Key::Int8Eq("revision", Datum::from(revision)),
        Key::Int8Le("version", Datum::from(upper)),
        Key::Int8Gt("version", Datum::from(above.unwrap_or(0))),
    ];
    let keys = if above.is_some() {
        &keys[..]
    } else {
        &keys[..3]
    };
    let mut n = IndexScan::open(c"snapshots", c"snapshots_pkey", keys, true)?;
    if n.next().is_none() {
        n.close();
        return Some(SnapshotRead::held(None));
    }
    Some(SnapshotRead {
        snapshot: Some((
            n.value("version").expect("version").value() as i64,
            n.value("state").expect("state"),
        )),
        scan: Some(n),
    })
}

/// What `STREAM_AND_SNAPSHOT` returns: the stream's type and version and its
/// latest snapshot of a revision at or below a version.
pub(crate) struct FirstLook {
    pub(crate) stream_type: String,
    pub(crate) version: i64,
    /// Neither archived nor deleted: the row's last_position is not the
    /// mark es.archive_stream and es.delete_stream leave (i64::MAX). False
    /// where not known (read by query).
    pub(crate) live: bool,
    pub(crate) snapshot: SnapshotRead,
}

/// The stream's row and, for `revision` (snapshots every `every` versions),
/// its latest snapshot at or below `min(version, upto)`. None: read with the
/// query instead; Some(None): no such stream.
pub(crate) fn stream_and_snapshot(
    stream_id: Datum,
    revision: i64,
    every: i64,
    upto: i64,
) -> Option<Option<FirstLook>> {
    let mut s = IndexScan::open(
        c"streams",
        c"streams_pkey",
        &[Key::TextEq("stream_id", stream_id)],
        false,
    )?;
    let row = s.next().map(|_| {
        // SAFETY: stream_type is the row's non-null text, copied out before the scan ends.
        let stream_type = unsafe {
            crate::pg::fmgr::text_datum_str(s.value("stream_type").expect("stream_type"))
        };
        (
            stream_type.to_owned(),
            s.value("version").expect("version").value() as i64,
            s.value("last_position").expect("last_position").value() as i64 != i64::MAX,
        )
    });
    s.close();
    let Some((stream_type, version, live)) = row else {
        return Some(None);
    };
    let snapshot = latest_snapshot(stream_id, revision, version.min(upto), every)?;
    Some(Some(FirstLook {
        stream_type,
        version,
        live,
        snapshot,
    }))
}

/// The scan of the stream's events from version `from + 1` on, in version
/// order; None when the query must read them (some of the stream's events
/// are archived, or the tables are not plainly readable). `live`: the
/// stream's row says it is neither archived nor deleted (`FirstLook`), so
/// es.archived_events need not be looked at.
///
/// The caller keeps `from < version <= target` itself and stops at the first
/// row past `target` (`Folder::apply_slot_within`): PostgreSQL 15's btree
/// tests every key of a scan on every index entry, and a `version` key reads
/// the column out of an entry whose text column comes first (about 260
/// instructions an entry, per key). So the upper bound is never a key, and the
/// lower one only where it positions the scan (after a snapshot).
pub(crate) fn events_after(stream_id: Datum, from: i64, live: bool) -> Option<IndexScan> {
    if !live && crate::store::archive::in_use() {
        let mut a = IndexScan::open(
            c"archived_events",
            c"archived_events_stream_version_key",
            &[Key::TextEq("stream_id", stream_id)],
            false,
        )?;
        let archived = a.next().is_some();
        a.close();
        if archived {
            return None;
        }
    }
    let stream = Key::TextEq("stream_id", stream_id);
    let after = Key::Int8Gt("version", Datum::from(from));
    let keys: &[Key] = if from > 0 {
        &[stream, after]
    } else {
        &[stream]
    };
    IndexScan::open(c"events", c"events_stream_version_key", keys, false)
}
