//! Message DB's `write_message`, for the `pg_eventsource_message_db` layer
//! (integrations/message_db): its checks, in its order and words, and one
//! append, in one C call (it was a PL/pgSQL function around
//! `es.append_event` that probed the id twice).
//!
//! Mapping (the layer's docs say why): versions are 0-based (the stream's
//! version - 1, -1 for none); NULL metadata is stored as `{}`, metadata that
//! is not a non-empty object (or holds one of the two keys below) as
//! `{"$messageDbMetadata": metadata}`, NULL data as JSON null flagged by
//! `"$messageDbNullData": true` in the metadata; an id already taken is an
//! error, as in Message DB, even for the same message (pg_eventsource would
//! take it as a retry).

use crate::kept_plan;
use crate::pg::error::fail;
use crate::pg::json_value::Val;
use crate::pg::jsonb::Container;
use crate::pg::spi;
use crate::store::append::{self, Request, TakenId, WrongVersion};
use crate::store::args;
use pgrx::fcinfo;
use pgrx::pg_sys::{self, Datum};
use pgrx::prelude::*;

const META_KEY: &str = "$messageDbMetadata";
const NULL_DATA_KEY: &str = "$messageDbNullData";

kept_plan!(
    STREAM_VERSION,
    c"SELECT e.version - 1 FROM es.events e WHERE e.stream_id = $1 ORDER BY e.version DESC LIMIT 1",
    [pg_sys::TEXTOID]
);

/// Message DB's error for a wrong expected version (P0001, as its
/// PL/pgSQL `RAISE EXCEPTION` gives), in its 0-based versions.
fn wrong_version(stream: &str, expected: i64, actual: i64) -> ! {
    fail(
        PgSqlErrorCode::ERRCODE_RAISE_EXCEPTION,
        format!("Wrong expected version: {expected} (Stream: {stream}, Stream Version: {actual})"),
    )
}

/// The same, from the append's own check (1-based versions), when another
/// writer got there between the check above and the append.
fn wrong_version_at_append(stream: &str, expected: i64, actual: i64) -> ! {
    wrong_version(stream, expected - 1, actual - 1)
}

/// Message DB's error for an id already taken: the unique index's.
fn duplicate_id(id: Datum) -> ! {
    // SAFETY: `id` is a non-null uuid datum.
    let text = unsafe { pgrx::Uuid::from_datum(id, false) }
        .map(|u| u.to_string())
        .unwrap_or_default();
    ereport!(
        PgLogLevel::ERROR,
        PgSqlErrorCode::ERRCODE_UNIQUE_VIOLATION,
        "duplicate key value violates unique constraint \"messages_id\"",
        format!("Key (id)=({text}) already exists.")
    );
    unreachable!("ereport(ERROR) does not return")
}

fn not_null(column: &str) -> ! {
    fail(
        PgSqlErrorCode::ERRCODE_NOT_NULL_VIOLATION,
        format!("null value in column \"{column}\" of relation \"messages\" violates not-null constraint"),
    )
}

/// The metadata to store for Message DB's `metadata` and `data`.
///
/// # Safety
/// `metadata` is a non-null jsonb datum that outlives the call.
unsafe fn stored_metadata(metadata: Option<Datum>, data_is_null: bool) -> Option<Datum> {
    let mut fields = match metadata {
        None => Vec::new(),
        Some(m) => {
            let c = Container::from_datum(m);
            let kept = c.is_object()
                && c.len() > 0
                && c.get(META_KEY).is_none()
                && c.get(NULL_DATA_KEY).is_none();
            if kept && !data_is_null {
                return Some(m); // stored as given
            }
            if kept {
                let mut v = Val::lazy_from_datum(m);
                v.open();
                match v {
                    Val::Obj(f) => f,
                    _ => unreachable!("an object"),
                }
            } else {
                vec![(META_KEY.to_owned(), Val::lazy_from_datum(m))]
            }
        }
    };
    if data_is_null {
        fields.push((NULL_DATA_KEY.to_owned(), Val::Bool(true)));
    }
    (!fields.is_empty()).then(|| Val::Obj(fields).to_jsonb())
}

crate::v1_function_info!(pg_finfo_es_append_message);

/// es._append_message(id text, stream_name text, type text, data jsonb,
/// metadata jsonb, expected_version bigint) RETURNS bigint: Message DB's
/// `write_message` (the layer's function calls it); returns the message's
/// position (0-based).
///
/// # Safety
/// Called by PostgreSQL's function manager for the SQL signature in `sql/02_append.sql`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_append_message(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    pg_sys::PreventCommandIfReadOnly(c"message_store.write_message()".as_ptr());
    let id = crate::pg::fmgr::arg_str(fcinfo, 0);
    let stream = crate::pg::fmgr::arg_str(fcinfo, 1);
    let message_type = crate::pg::fmgr::arg_str(fcinfo, 2);
    let data = crate::pg::fmgr::arg_datum(fcinfo, 3);
    let metadata = crate::pg::fmgr::arg_datum(fcinfo, 4);
    let expected = fcinfo::pg_getarg::<i64>(fcinfo, 5);
    // Message DB's order: the expected version, the id's type, then the
    // table's NOT NULL columns (stream_name, type, id).
    if let Some(e) = expected {
        let actual = crate::pg::fmgr::arg_datum(fcinfo, 1).map_or(-1, |s| {
            spi::connected(|| {
                if STREAM_VERSION.run(&[Some(s)], true) == 1 {
                    spi::value_i64(0, 1).unwrap_or(-1)
                } else {
                    -1
                }
            })
        });
        if e != actual {
            wrong_version(stream.unwrap_or("<NULL>"), e, actual);
        }
    }
    let id = id.map(|text| {
        let c = std::ffi::CString::new(text).unwrap_or_default();
        // uuid_in raises Message DB's own error for a bad id (22P02)
        pgrx::fcinfo::direct_function_call_as_datum(
            pg_sys::uuid_in,
            &[Some(Datum::from(c.as_ptr()))],
        )
        .expect("uuid_in returns a value")
    });
    let Some(stream) = stream else {
        not_null("stream_name")
    };
    if message_type.is_none() {
        not_null("type");
    }
    let Some(id) = id else { not_null("id") };
    let stream_id = args::identifier("stream_name", Some(stream));
    let req = Request {
        stream_id,
        stream_id_datum: fcinfo::pg_getarg_datum_raw(fcinfo, 1),
        stream_type: None,
        stream_type_datum: None,
        expected: expected.map(|e| e + 1),
        wrong_version: WrongVersion::Raise(wrong_version_at_append),
    };
    let stored_data = data.unwrap_or_else(|| crate::pg::jsonb::from_text("null"));
    let version = append::append_one(
        &req,
        fcinfo::pg_getarg_datum_raw(fcinfo, 2),
        message_type,
        Some(stored_data),
        stored_metadata(metadata, data.is_none()),
        Some(id),
        TakenId::Refuse(duplicate_id),
    );
    Datum::from(version - 1)
}
