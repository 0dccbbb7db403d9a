//! Argument rules of the store shared by every entry point (stream ids,
//! types, expected versions): each bad input gets its own SQLSTATE and a
//! message that says what to change. They run before anything is written,
//! so bad input changes nothing.

use crate::pg::error::{fail, fail_hint};
use pgrx::prelude::*;

/// Longest stream id, event type or stream type accepted, in bytes.
pub(crate) const MAX_ID_BYTES: usize = 1000;

/// A required identifier argument: not NULL, not empty, at most `MAX_ID_BYTES`.
pub(crate) fn identifier<'a>(what: &str, value: Option<&'a str>) -> &'a str {
    match value {
        None => fail(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{what} must not be NULL"),
        ),
        Some(s) => check_identifier(what, s),
    }
}

pub(crate) fn check_identifier<'a>(what: &str, s: &'a str) -> &'a str {
    if s.is_empty() {
        fail(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{what} must not be empty"),
        );
    }
    if s.len() > MAX_ID_BYTES {
        fail(
            PgSqlErrorCode::ERRCODE_STRING_DATA_RIGHT_TRUNCATION,
            format!(
                "{what} is {} bytes long; the limit is {MAX_ID_BYTES} bytes",
                s.len()
            ),
        );
    }
    s
}

/// An optional identifier (NULL allowed, but not empty or too long).
pub(crate) fn optional_identifier<'a>(what: &str, value: Option<&'a str>) -> Option<&'a str> {
    value.map(|s| check_identifier(what, s))
}

pub(crate) fn expected_version(value: Option<i64>) -> Option<i64> {
    if let Some(v) = value {
        if v < 0 {
            fail_hint(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("expected_version must not be negative, got {v}"),
                "Pass NULL for any version, 0 for a new stream, or the stream's current version.",
            );
        }
    }
    value
}

/// The stream type a new stream gets when none is given: the part of the
/// stream id before its first '-' (the whole id when it has none).
pub(crate) fn default_stream_type(stream_id: &str) -> &str {
    match stream_id.find('-') {
        Some(0) | None => stream_id,
        Some(i) => &stream_id[..i],
    }
}

/// Checks a stream id for SQL functions that only read; returns it unchanged.
#[pg_extern(immutable, parallel_safe, schema = "es", name = "_check_stream_id")]
fn check_stream_id(stream_id: Option<&str>) -> &str {
    identifier("stream_id", stream_id)
}

/// Checks that a timestamp argument of a SQL function is given; returns it.
#[pg_extern(immutable, parallel_safe, schema = "es", name = "_check_time")]
fn check_time(what: &str, at: Option<TimestampWithTimeZone>) -> TimestampWithTimeZone {
    match at {
        Some(t) => t,
        None => fail(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{what} must not be NULL"),
        ),
    }
}
