//! Tamper evidence: a SHA-256 chain over each stream's events.
//!
//! The guards stop every role from changing `es.events`, but a superuser can
//! disable them (or edit a dump before restoring it). So every append also
//! moves `es.streams.chain_hash`, in the same UPDATE of the stream's row:
//!
//! ```text
//! digest(e) = SHA-256(stream_id, event_type, event_id, recorded_at, data,
//!                     metadata, global_position)      -- in Rust, before the statement
//! chain'    = SHA-256(chain, version, stream_type, digest(e))  -- es._chain, in the UPDATE
//! ```
//!
//! `es.verify()` folds the stored events again (`es._stream_chain`) and
//! reports every stream whose result differs. jsonb is hashed in its binary
//! form (the bytes of a standalone jsonb, which are the same for the same
//! value); fields are length-prefixed so no two events share an input.
//! A chain starts at a stream's first event; streams created before the
//! chain existed (an upgrade) keep `chain_hash` NULL and are not checked.
//! Cost: two SHA-256 runs per event (the CPU's SHA extensions where present).

use crate::kept_plan;
use crate::pg::spi;
use crate::store::event::RowReader;
use pgrx::pg_sys::{self, Datum};
use pgrx::{fcinfo, IntoDatum};
use sha2::{Digest, Sha256};

pub(crate) type Hash = [u8; 32];

fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

/// What one event contributes to its stream's chain, but its position
/// (an append learns its position late, and may have to take another).
pub(crate) struct EventParts<'a> {
    pub(crate) stream_id: &'a [u8],
    pub(crate) event_type: &'a [u8],
    pub(crate) event_id: &'a [u8],
    pub(crate) recorded_at: i64,
    /// The payload bytes of standalone jsonb values (no varlena header).
    pub(crate) data: &'a [u8],
    pub(crate) metadata: &'a [u8],
}

/// The digest so far; [`finish`] adds the position.
pub(crate) fn partial(e: &EventParts) -> Sha256 {
    let mut h = Sha256::new();
    h.update(b"pg_eventsource event 1");
    field(&mut h, e.stream_id);
    field(&mut h, e.event_type);
    field(&mut h, e.event_id);
    h.update(e.recorded_at.to_be_bytes());
    field(&mut h, e.data);
    field(&mut h, e.metadata);
    h
}

pub(crate) fn finish(mut h: Sha256, position: i64) -> Hash {
    h.update(position.to_be_bytes());
    h.finalize().into()
}

/// The binary form of the empty object `{}` (an object header counting no
/// pairs): the metadata of an event appended without any.
pub(crate) const EMPTY_OBJECT: [u8; 4] = pg_sys::JB_FOBJECT.to_ne_bytes();

/// Calls `f` with the bytes of a standalone jsonb holding `v`, as the `->`
/// operator builds it from the same value (an append of many events takes
/// data and metadata out of the array with `->`): a nested object or array
/// is its container's own bytes, which `->` copies as they are; a scalar is
/// encoded the way PostgreSQL encodes one.
pub(crate) fn with_value_bytes<R>(v: &crate::pg::jsonb::Value, f: impl FnOnce(&[u8]) -> R) -> R {
    let mut jv = v.0;
    if jv.type_ == pg_sys::jbvType::jbvBinary {
        // SAFETY: a binary value points at `len` bytes of its container,
        // which outlives the value.
        let bytes = unsafe {
            let b = jv.val.binary;
            std::slice::from_raw_parts(b.data as *const u8, b.len as usize)
        };
        return f(bytes);
    }
    // SAFETY: JsonbValueToJsonb encodes the scalar into a new varlena in the
    // current memory context; it is read and freed here.
    unsafe {
        let j = pg_sys::JsonbValueToJsonb(&mut jv);
        let r = f(varlena_bytes(Datum::from(j)));
        pg_sys::pfree(j.cast());
        r
    }
}

/// One link: the chain after the event at `version` with digest `d`.
pub(crate) fn step(prev: &Hash, version: i64, stream_type: &[u8], d: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(version.to_be_bytes());
    field(&mut h, stream_type);
    h.update(d);
    h.finalize().into()
}

/// The bytes of a varlena datum (detoasted if needed).
///
/// # Safety
/// `d` must be a non-null varlena datum that outlives the slice.
pub(crate) unsafe fn varlena_bytes<'a>(d: Datum) -> &'a [u8] {
    let v = pg_sys::pg_detoast_datum_packed(d.cast_mut_ptr());
    std::slice::from_raw_parts(
        pgrx::vardata_any(v) as *const u8,
        pgrx::varsize_any_exhdr(v),
    )
}

/// The transaction's start time as `now()` and a column default record it.
pub(crate) fn now() -> i64 {
    // SAFETY: reads a backend-local timestamp.
    unsafe { pg_sys::GetCurrentTransactionStartTimestamp() }
}

/// A bytea datum holding `bytes`, in the current memory context.
pub(crate) fn bytea(bytes: &[u8]) -> Datum {
    bytes.into_datum().expect("a bytea")
}

crate::v1_function_info!(pg_finfo_es_chain);

/// es._chain(prev bytea, prev_version bigint, stream_type text, digests bytea) RETURNS bytea:
/// the chain after the events whose digests are concatenated in `digests`,
/// at versions prev_version + 1, + 2, ... NULL when the stream had events
/// but no chain (it predates the chain), or when an argument is missing.
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose arguments match
/// the function's SQL signature in `sql/`.
#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_chain(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let arg = |i| crate::pg::fmgr::arg_datum(fcinfo, i);
    let (Some(version), Some(stream_type), Some(digests)) = (arg(1), arg(2), arg(3)) else {
        return fcinfo::pg_return_null(fcinfo);
    };
    let digests = varlena_bytes(digests);
    if digests.is_empty() || digests.len() % 32 != 0 {
        crate::pg::error::fail(
            pgrx::PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "digests must be a whole number of 32-byte SHA-256 digests".into(),
        );
    }
    match advance(
        arg(0).map(|p| varlena_bytes(p)),
        version.value() as i64,
        varlena_bytes(stream_type),
        digests,
    ) {
        Some(head) => bytea(&head),
        None => fcinfo::pg_return_null(fcinfo),
    }
}

/// The chain after the events whose digests are concatenated in `digests`
/// (whole 32-byte digests), at versions `version` + 1, + 2, ... from `prev`,
/// the chain at `version`: what `es._chain` computes in an append's UPDATE.
/// None when the stream had events but no chain (it predates the chain).
pub(crate) fn advance(
    prev: Option<&[u8]>,
    version: i64,
    stream_type: &[u8],
    digests: &[u8],
) -> Option<Hash> {
    let mut head: Hash = match prev {
        Some(prev) => <Hash>::try_from(prev).ok()?,
        None if version == 0 => [0; 32],
        None => return None,
    };
    for (i, d) in digests.chunks_exact(32).enumerate() {
        let d: &Hash = d.try_into().expect("32 bytes");
        head = step(&head, version + 1 + i as i64, stream_type, d);
    }
    Some(head)
}

kept_plan!(
    STREAM_EVENTS,
    c"SELECT e FROM es.events e WHERE e.stream_id = $1 ORDER BY e.version",
    [pg_sys::TEXTOID]
);
// Stored events of versions $2 to $3, wherever they are (sql/12_lifecycle.sql).
kept_plan!(
    STORED_EVENTS,
    c"SELECT x.e FROM (
        SELECT e, e.version AS v FROM es.events e
         WHERE e.stream_id = $1 AND e.version BETWEEN $2 AND $3
        UNION ALL
        SELECT ROW(a.*)::es.events, a.version FROM es.archived_events a
         WHERE a.stream_id = $1 AND a.version BETWEEN $2 AND $3) x
      ORDER BY x.v",
    [pg_sys::TEXTOID, pg_sys::INT8OID, pg_sys::INT8OID]
);

/// Folds the chain from `head` over the rows a cursor of `plan` gives;
/// None when there are none and no head was given.
fn fold_rows(
    plan: &spi::KeptPlan,
    args: &[Option<Datum>],
    read_only: bool,
    mut head: Option<Hash>,
) -> Option<Hash> {
    let mut reader: Option<RowReader> = None;
    plan.cursor(args, read_only, |rows| {
        for row in rows {
            // SAFETY: the rows are es.events composites from the plan's
            // query, alive until the next fetch.
            unsafe {
                let r = reader.get_or_insert_with(|| RowReader::for_row(*row));
                let ev = r.read(*row);
                let parts = partial(&EventParts {
                    stream_id: ev.stream_id.as_bytes(),
                    event_type: ev.event_type.as_bytes(),
                    event_id: std::slice::from_raw_parts(ev.event_id.cast_mut_ptr::<u8>(), 16),
                    recorded_at: ev.recorded_at.value() as i64,
                    data: varlena_bytes(ev.data_datum),
                    metadata: varlena_bytes(ev.metadata_datum),
                });
                let d = finish(parts, ev.global_position);
                head = Some(step(
                    &head.unwrap_or([0; 32]),
                    ev.version,
                    ev.stream_type.as_bytes(),
                    &d,
                ));
            }
        }
    });
    head
}

/// The chain after the stored events of versions `from` to `to` of a
/// stream, folded from `base` (the chain before `from`; None: none yet).
/// Must run inside an SPI connection; `read_only` reads with the caller's
/// snapshot, otherwise with one that sees this command's own writes.
pub(crate) fn fold_stored(
    stream_id: Datum,
    base: Option<Hash>,
    from: i64,
    to: i64,
    read_only: bool,
) -> Option<Hash> {
    fold_rows(
        &STORED_EVENTS,
        &[
            Some(stream_id),
            Some(Datum::from(from)),
            Some(Datum::from(to)),
        ],
        read_only,
        base,
    )
}

crate::v1_function_info!(pg_finfo_es_stream_chain);

/// es._stream_chain(stream_id text) RETURNS bytea: the chain folded again
/// from the stream's stored events (NULL for a stream with none), for
/// es.verify. Reads with the caller's rights. (The function of databases
/// not updated to es._stream_chain_from yet.)
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose arguments match
/// the function's SQL signature in `sql/`.
#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_stream_chain(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let Some(stream_id) = crate::pg::fmgr::arg_datum(fcinfo, 0) else {
        return fcinfo::pg_return_null(fcinfo);
    };
    match spi::connected(|| fold_rows(&STREAM_EVENTS, &[Some(stream_id)], true, None)) {
        Some(h) => bytea(&h),
        None => fcinfo::pg_return_null(fcinfo),
    }
}

crate::v1_function_info!(pg_finfo_es_stream_chain_from);

/// es._stream_chain_from(stream_id text, base bytea, first_version bigint)
/// RETURNS bytea: the chain folded again over the stream's stored events
/// (es.events and es.archived_events) from first_version on, starting at
/// base (the chain es.truncate_stream and the like recorded for the
/// versions they removed). NULL for a stream with no events, or whose
/// events were removed before it had a chain.
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose arguments match
/// the function's SQL signature in `sql/`.
#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_stream_chain_from(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let Some(stream_id) = crate::pg::fmgr::arg_datum(fcinfo, 0) else {
        return fcinfo::pg_return_null(fcinfo);
    };
    let first = crate::pg::fmgr::arg_datum(fcinfo, 2).map_or(1, |d| d.value() as i64);
    let base = match crate::pg::fmgr::arg_datum(fcinfo, 1) {
        Some(b) => match <Hash>::try_from(varlena_bytes(b)) {
            Ok(h) => Some(h),
            Err(_) => return fcinfo::pg_return_null(fcinfo),
        },
        None if first <= 1 => None,
        None => return fcinfo::pg_return_null(fcinfo),
    };
    match spi::connected(|| fold_stored(stream_id, base, first, i64::MAX, true)) {
        Some(h) => bytea(&h),
        None => fcinfo::pg_return_null(fcinfo),
    }
}
