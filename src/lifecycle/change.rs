//! The change primitives behind es.delete_stream, es.truncate_stream,
//! es.apply_retention, es.redact, es.archive_stream and es.unarchive_stream.
//! Each locks the stream's row (its caller already holds it), runs its one
//! statement with the guard open, keeps the stream's hash chain checkable
//! (`es.stream_lifecycle.chain_base`, or a re-anchored `chain_hash`), and
//! writes its `es.audit` row. None is open to any role (`sql/14_guards.sql`).

use crate::kept_plan;
use crate::pg::error::fail;
use crate::pg::spi;
use crate::store::chain::{self, Hash};
use crate::store::guard;
use pgrx::pg_sys::{self, Datum};
use pgrx::prelude::*;
use pgrx::IntoDatum;

kept_plan!(
    STREAM,
    c"SELECT COALESCE(l.first_version, 1), l.chain_base, s.chain_hash IS NOT NULL,
             COALESCE(l.deleted, false)
        FROM es.streams s LEFT JOIN es.stream_lifecycle l ON l.stream_id = s.stream_id
       WHERE s.stream_id = $1
         FOR UPDATE OF s",
    [pg_sys::TEXTOID]
);
kept_plan!(
    DELETE_BELOW,
    c"DELETE FROM es.events e WHERE e.stream_id = $1 AND e.version < $2",
    [pg_sys::TEXTOID, pg_sys::INT8OID]
);
kept_plan!(
    SET_BASE,
    c"INSERT INTO es.stream_lifecycle AS l (stream_id, first_version, chain_base) VALUES ($1, $2, $3)
      ON CONFLICT (stream_id) DO UPDATE
         SET first_version = EXCLUDED.first_version, chain_base = EXCLUDED.chain_base,
             updated_at = pg_catalog.now()",
    [pg_sys::TEXTOID, pg_sys::INT8OID, pg_sys::BYTEAOID]
);
kept_plan!(
    AUDIT,
    c"INSERT INTO es.audit (by_role, operation, stream_id, versions, event_count, reason, details)
      VALUES ($1, $2, $3, pg_catalog.int8range($4, $5), $6, $7, COALESCE($8, '{}'::jsonb))",
    [
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::INT8OID,
        pg_sys::INT8OID,
        pg_sys::INT8OID,
        pg_sys::TEXTOID,
        pg_sys::JSONBOID
    ]
);
kept_plan!(
    REDACT,
    c"WITH u AS (UPDATE es.events e SET data = es._mask(e.data, $2)
                  WHERE e.stream_id = $1 AND ($3::text[] IS NULL OR e.event_type = ANY ($3))
                    AND es._mask(e.data, $2) IS DISTINCT FROM e.data
                 RETURNING e.version),
           a AS (UPDATE es.archived_events e SET data = es._mask(e.data, $2)
                  WHERE e.stream_id = $1 AND ($3::text[] IS NULL OR e.event_type = ANY ($3))
                    AND es._mask(e.data, $2) IS DISTINCT FROM e.data
                 RETURNING e.version)
      SELECT pg_catalog.count(*), pg_catalog.min(x.version), pg_catalog.max(x.version)
        FROM (SELECT version FROM u UNION ALL SELECT version FROM a) x",
    [pg_sys::TEXTOID, pg_sys::JSONBOID, pg_sys::TEXTARRAYOID]
);
kept_plan!(
    SET_CHAIN,
    c"UPDATE es.streams s SET chain_hash = $2 WHERE s.stream_id = $1",
    [pg_sys::TEXTOID, pg_sys::BYTEAOID]
);
// Column lists spelled out: es.archived_events is LIKE es.events, and an
// upgraded es.events has the same columns in the same order, but a list
// does not depend on it.
kept_plan!(
    ARCHIVE,
    c"WITH m AS (DELETE FROM es.events e WHERE e.stream_id = $1 RETURNING e.*),
           i AS (INSERT INTO es.archived_events (global_position, stream_id, stream_type, version, event_type, data, metadata, event_id,
                    recorded_at, schema_version)
                 SELECT global_position, stream_id, stream_type, version, event_type, data, metadata, event_id,
                    recorded_at, schema_version FROM m
                 RETURNING version)
      SELECT pg_catalog.count(*), pg_catalog.min(version), pg_catalog.max(version) FROM i",
    [pg_sys::TEXTOID]
);
kept_plan!(
    UNARCHIVE,
    c"WITH m AS (DELETE FROM es.archived_events a WHERE a.stream_id = $1 RETURNING a.*),
           i AS (INSERT INTO es.events (global_position, stream_id, stream_type, version, event_type, data, metadata, event_id,
                    recorded_at, schema_version)
                 SELECT global_position, stream_id, stream_type, version, event_type, data, metadata, event_id,
                    recorded_at, schema_version FROM m
                 RETURNING version, global_position)
      SELECT pg_catalog.count(*), pg_catalog.min(version), pg_catalog.max(version),
             pg_catalog.max(global_position) FROM i",
    [pg_sys::TEXTOID]
);
kept_plan!(
    MARK_ARCHIVED,
    c"WITH l AS (INSERT INTO es.stream_lifecycle AS l (stream_id, archived) VALUES ($1, $2)
                 ON CONFLICT (stream_id) DO UPDATE SET archived = $2, updated_at = pg_catalog.now()
                 RETURNING l.deleted)
      UPDATE es.streams s
         SET last_position = CASE WHEN $2 OR (SELECT l.deleted FROM l) THEN 9223372036854775807 ELSE $3 END
       WHERE s.stream_id = $1",
    [pg_sys::TEXTOID, pg_sys::BOOLOID, pg_sys::INT8OID]
);
kept_plan!(
    APPEND_MARKER,
    c"SELECT es.append_event($1, $2, $3, $4)",
    [
        pg_sys::TEXTOID,
        pg_sys::TEXTOID,
        pg_sys::JSONBOID,
        pg_sys::INT8OID
    ]
);

/// The role the session acts as (SET ROLE included): who asked, not the
/// owner whose rights a SECURITY DEFINER function runs with.
fn acting_role() -> String {
    // SAFETY: GetOuterUserId reads a backend global; GetUserNameFromId returns a palloc'd
    // NUL-terminated name (it fails for an unknown role), copied out at once.
    unsafe {
        std::ffi::CStr::from_ptr(pg_sys::GetUserNameFromId(pg_sys::GetOuterUserId(), false))
            .to_string_lossy()
            .into_owned()
    }
}

/// Where the stream's stored versions begin, the chain there, whether it
/// has a chain at all, whether it is hard-deleted. Locks its row.
struct Stream {
    first_version: i64,
    base: Option<Hash>,
    chained: bool,
}

fn stream(stream_id: Datum, name: &str) -> Stream {
    if STREAM.run(&[Some(stream_id)], false) != 1 {
        fail(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("stream \"{name}\" does not exist"),
        );
    }
    let base = spi::value(0, 2).and_then(|d| {
        // SAFETY: a non-null bytea datum of the current SPI result.
        <Hash>::try_from(unsafe { chain::varlena_bytes(d) }).ok()
    });
    Stream {
        first_version: spi::value_i64(0, 1).unwrap_or(1),
        base,
        chained: spi::value_bool(0, 3).unwrap_or(false),
    }
}

#[allow(clippy::too_many_arguments)]
fn audit(
    operation: &str,
    stream_id: Datum,
    lo: i64,
    hi: i64,
    count: i64,
    reason: Option<Datum>,
    details: Option<Datum>,
) {
    AUDIT.run(
        &[
            acting_role().as_str().into_datum(),
            operation.into_datum(),
            Some(stream_id),
            Some(Datum::from(lo)),
            Some(Datum::from(hi)),
            Some(Datum::from(count)),
            reason,
            details,
        ],
        false,
    );
}

fn required(fcinfo: pg_sys::FunctionCallInfo, n: usize, what: &str) -> Datum {
    // SAFETY: `fcinfo` is the call's, with the arguments of the SQL signature.
    unsafe { crate::pg::fmgr::arg_datum(fcinfo, n) }.unwrap_or_else(|| {
        fail(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{what} must not be NULL"),
        )
    })
}

crate::v1_function_info!(pg_finfo_es_remove_events);

/// es._remove_events(stream_id, below_version, operation, reason, details)
/// RETURNS bigint: removes the stream's stored versions below
/// below_version, records the chain up to there as the stream's new base,
/// audits; returns how many events went.
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose arguments match
/// the function's SQL signature in `sql/`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_remove_events(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let sid = required(fcinfo, 0, "stream_id");
    let below = required(fcinfo, 1, "below_version").value() as i64;
    let operation = crate::pg::fmgr::text_datum_str(required(fcinfo, 2, "operation")).to_owned();
    let reason = crate::pg::fmgr::arg_datum(fcinfo, 3);
    let details = crate::pg::fmgr::arg_datum(fcinfo, 4);
    let name = crate::pg::fmgr::text_datum_str(sid).to_owned();
    let n = spi::connected(|| {
        let s = stream(sid, &name);
        if below <= s.first_version {
            return 0;
        }
        let base = if s.chained {
            chain::fold_stored(sid, s.base, s.first_version, below - 1, false)
        } else {
            None
        };
        let n =
            guard::sanctioned(|| DELETE_BELOW.run(&[Some(sid), Some(Datum::from(below))], false))
                as i64;
        SET_BASE.run(
            &[
                Some(sid),
                Some(Datum::from(below)),
                base.map(|h| chain::bytea(&h)),
            ],
            false,
        );
        audit(&operation, sid, s.first_version, below, n, reason, details);
        n
    });
    Datum::from(n)
}

crate::v1_function_info!(pg_finfo_es_redact_events);

/// es._redact_events(stream_id, mask, stored_types, reason, details) RETURNS
/// bigint: applies the mask to the data of the stream's stored events (of
/// the types given, all when NULL) where it changes something, re-anchors
/// the stream's chain on the result, audits; returns how many changed.
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose arguments match
/// the function's SQL signature in `sql/`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_redact_events(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let sid = required(fcinfo, 0, "stream_id");
    let mask = required(fcinfo, 1, "mask");
    let types = crate::pg::fmgr::arg_datum(fcinfo, 2);
    let reason = crate::pg::fmgr::arg_datum(fcinfo, 3);
    let details = crate::pg::fmgr::arg_datum(fcinfo, 4);
    let name = crate::pg::fmgr::text_datum_str(sid).to_owned();
    let n = spi::connected(|| {
        let s = stream(sid, &name);
        guard::sanctioned(|| REDACT.run(&[Some(sid), Some(mask), types], false));
        let n = spi::value_i64(0, 1).unwrap_or(0);
        if n == 0 {
            return 0;
        }
        let (lo, hi) = (
            spi::value_i64(0, 2).unwrap_or(0),
            spi::value_i64(0, 3).unwrap_or(0),
        );
        if s.chained {
            let head = chain::fold_stored(sid, s.base, s.first_version, i64::MAX, false);
            SET_CHAIN.run(&[Some(sid), head.map(|h| chain::bytea(&h))], false);
        }
        audit("redact", sid, lo, hi + 1, n, reason, details);
        n
    });
    Datum::from(n)
}

crate::v1_function_info!(pg_finfo_es_move_events);

/// es._move_events(stream_id, to_archive, reason) RETURNS bigint: moves
/// the stream's events into es.archived_events (and marks the stream so no
/// append follows), or back into es.events at their positions; audits;
/// returns how many moved.
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose arguments match
/// the function's SQL signature in `sql/`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_move_events(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let sid = required(fcinfo, 0, "stream_id");
    let to_archive = required(fcinfo, 1, "to_archive").value() != 0;
    let reason = crate::pg::fmgr::arg_datum(fcinfo, 2);
    let name = crate::pg::fmgr::text_datum_str(sid).to_owned();
    let n = spi::connected(|| {
        stream(sid, &name);
        let plan = if to_archive { &ARCHIVE } else { &UNARCHIVE };
        guard::sanctioned(|| plan.run(&[Some(sid)], false));
        let n = spi::value_i64(0, 1).unwrap_or(0);
        let (lo, hi) = (
            spi::value_i64(0, 2).unwrap_or(0),
            spi::value_i64(0, 3).unwrap_or(0),
        );
        let last = if to_archive {
            None
        } else {
            spi::value_i64(0, 4)
        };
        MARK_ARCHIVED.run(
            &[
                Some(sid),
                Some(Datum::from(to_archive)),
                last.map(Datum::from),
            ],
            false,
        );
        let op = if to_archive {
            "archive_stream"
        } else {
            "unarchive_stream"
        };
        audit(op, sid, lo, hi + 1, n, reason, None);
        n
    });
    Datum::from(n)
}

crate::v1_function_info!(pg_finfo_es_append_marker);

/// es._append_marker(stream_id, event_type, data, expected_version) RETURNS
/// bigint: appends one of the store's own marker events ($StreamDeleted,
/// $EventsRedacted) through the ordinary append path.
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose arguments match
/// the function's SQL signature in `sql/`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_append_marker(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let sid = required(fcinfo, 0, "stream_id");
    let ty = required(fcinfo, 1, "event_type");
    let data = required(fcinfo, 2, "data");
    let expected = crate::pg::fmgr::arg_datum(fcinfo, 3);
    let t = crate::pg::fmgr::text_datum_str(ty);
    if t != guard::STREAM_DELETED && t != guard::EVENTS_REDACTED {
        fail(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("\"{t}\" is not one of the store's marker events"),
        );
    }
    let v = spi::connected(|| {
        guard::markers(|| APPEND_MARKER.run(&[Some(sid), Some(ty), Some(data), expected], false));
        spi::value_i64(0, 1).unwrap_or(0)
    });
    Datum::from(v)
}
