//! `es.append_event` and `es.append_events`: the write path.
//!
//! Each append is one statement: a data-modifying CTE that moves the stream's
//! row in `es.streams` (the row lock is what serialises writers of one stream,
//! and only of that stream) and inserts the events with the version it got.
//! Without an expected version a plain UPDATE is tried first: the stream
//! usually exists, and `INSERT ... ON CONFLICT` costs an arbiter-index probe
//! and a tuple lock more (about 5% of an append); the upsert runs only when
//! the UPDATE found no row.
//! The expected-version check is part of that statement's WHERE clause, so
//! under READ COMMITTED a writer that waited for a concurrent append re-checks
//! against the committed row and loses cleanly with 40001.
//! One event to a stream that exists is written the same way without the
//! statement (`append_direct`) wherever that is exactly equivalent; the
//! statement covers everything else.
//!
//! The SQL signatures (defaults, SECURITY DEFINER, pinned search_path) are in
//! `sql/02_append.sql`; these are the C-level entry points they name.

use crate::evolution::validate;
use crate::kept_plan;
use crate::pg::error::{fail, fail_hint};
use crate::pg::json_value::Val;
use crate::pg::jsonb::{self, Container};
use crate::pg::spi;
use crate::pg::spi::KeptPlan;
use crate::settings::MAX_EVENT_SIZE;
use crate::store::append_direct::{self, Done, Outcome};
use crate::store::args;
use crate::store::ids;
use crate::store::position;
use crate::store::{appended, chain, guard};
use pgrx::pg_sys::{self, Datum};
use pgrx::prelude::*;
use pgrx::{fcinfo, IntoDatum};
use std::cell::Cell;

/// Argument types shared by every append statement:
/// $1 stream_id, $2 given stream_type, $3 default stream_type, $4 event_type,
/// $5 data (or the events array), $6 metadata, $7 event_id, $8 first position,
/// $9 expected version, $10 number of events, $11 the events' digests
/// (`chain.rs`), $12 the events' ids (many events; generated where absent),
/// $13 the events' schema versions (`evolution`; used by the `_V` plans only,
/// so that the plain ones also run against a table without the column, a
/// database whose extension is not updated yet).
const ARGS: &[pg_sys::Oid] = &[
    pg_sys::TEXTOID,
    pg_sys::TEXTOID,
    pg_sys::TEXTOID,
    pg_sys::TEXTOID,
    pg_sys::JSONBOID,
    pg_sys::JSONBOID,
    pg_sys::UUIDOID,
    pg_sys::INT8OID,
    pg_sys::INT8OID,
    pg_sys::INT8OID,
    pg_sys::BYTEAOID,
    pg_sys::UUIDARRAYOID,
    pg_sys::INT4ARRAYOID,
];

/// Moves the stream forward, by expected-version mode.
macro_rules! stream_existing {
    () => {
        "WITH s AS (UPDATE es.streams s
                   SET version = s.version + $10, last_position = $8 + $10 - 1, updated_at = pg_catalog.now(),
                       chain_hash = es._chain(s.chain_hash, s.version, s.stream_type, $11)
                   WHERE s.stream_id = $1 AND ($2 IS NULL OR s.stream_type = $2) AND s.last_position < $8
                   RETURNING s.version, s.stream_type)"
    };
}
macro_rules! stream_any {
    () => {
        "WITH s AS (INSERT INTO es.streams AS s (stream_id, stream_type, version, last_position, chain_hash)
                   VALUES ($1, COALESCE($2, $3), $10, $8 + $10 - 1,
                           es._chain(NULL, 0, COALESCE($2, $3), $11))
                   ON CONFLICT (stream_id) DO UPDATE
                   SET version = s.version + $10, last_position = $8 + $10 - 1, updated_at = pg_catalog.now(),
                       chain_hash = es._chain(s.chain_hash, s.version, s.stream_type, $11)
                   WHERE ($2 IS NULL OR s.stream_type = $2) AND s.last_position < $8
                   RETURNING s.version, s.stream_type)"
    };
}
macro_rules! stream_new {
    () => {
        "WITH s AS (INSERT INTO es.streams (stream_id, stream_type, version, last_position, chain_hash)
                   VALUES ($1, COALESCE($2, $3), $10, $8 + $10 - 1,
                           es._chain(NULL, 0, COALESCE($2, $3), $11))
                   ON CONFLICT (stream_id) DO NOTHING
                   RETURNING version, stream_type)"
    };
}
macro_rules! stream_exact {
    () => {
        "WITH s AS (UPDATE es.streams s
                   SET version = s.version + $10, last_position = $8 + $10 - 1, updated_at = pg_catalog.now(),
                       chain_hash = es._chain(s.chain_hash, s.version, s.stream_type, $11)
                   WHERE s.stream_id = $1 AND s.version = $9 AND ($2 IS NULL OR s.stream_type = $2)
                     AND s.last_position < $8
                   RETURNING s.version, s.stream_type)"
    };
}
/// Inserts one event. The INSERT is the main statement (not a second CTE
/// read by a final SELECT): one CTE scan less to set up per append.
macro_rules! insert_one {
    () => {
        " INSERT INTO es.events (global_position, stream_id, stream_type, version,
                                 event_type, data, metadata, event_id)
          SELECT $8, $1, s.stream_type, s.version, $4, $5, COALESCE($6, '{}'::jsonb), $7 FROM s
          RETURNING version, stream_type"
    };
}
/// Added to `insert_one!`'s RETURNING: the row written, for an append that may
/// be due an inline projection or a snapshot, which would otherwise read it
/// back (forming the row costs the others about 1%).
macro_rules! with_row {
    () => {
        ", events"
    };
}
/// Inserts every element of the (already validated) events array. Returns
/// the stream's row, not the events' (a batch may hold a million of them).
macro_rules! insert_many {
    () => {
        ", ins AS (INSERT INTO es.events (global_position, stream_id, stream_type, version,
                                          event_type, data, metadata, event_id)
                   SELECT $8 + e.ord - 1, $1, s.stream_type, s.version - $10 + e.ord,
                          e.v->>'type', e.v->'data',
                          CASE WHEN pg_catalog.jsonb_typeof(e.v->'metadata') = 'object' THEN e.v->'metadata'
                               ELSE '{}'::jsonb END,
                          $12[e.ord]
                   FROM s, pg_catalog.jsonb_array_elements($5) WITH ORDINALITY AS e(v, ord))
           SELECT s.version, s.stream_type FROM s"
    };
}
/// As `insert_one!`, storing the event's schema version ($13[1]).
macro_rules! insert_one_v {
    () => {
        " INSERT INTO es.events (global_position, stream_id, stream_type, version,
                                 event_type, data, metadata, event_id, schema_version)
          SELECT $8, $1, s.stream_type, s.version, $4, $5, COALESCE($6, '{}'::jsonb), $7, $13[1] FROM s
          RETURNING version, stream_type"
    };
}
/// As `insert_many!`, storing each event's schema version ($13).
macro_rules! insert_many_v {
    () => {
        ", ins AS (INSERT INTO es.events (global_position, stream_id, stream_type, version,
                                          event_type, data, metadata, event_id, schema_version)
                   SELECT $8 + e.ord - 1, $1, s.stream_type, s.version - $10 + e.ord,
                          e.v->>'type', e.v->'data',
                          CASE WHEN pg_catalog.jsonb_typeof(e.v->'metadata') = 'object' THEN e.v->'metadata'
                               ELSE '{}'::jsonb END,
                          $12[e.ord], $13[e.ord]
                   FROM s, pg_catalog.jsonb_array_elements($5) WITH ORDINALITY AS e(v, ord))
           SELECT s.version, s.stream_type FROM s"
    };
}
macro_rules! cstr {
    ($s:expr) => {
        match ::std::ffi::CStr::from_bytes_with_nul(concat!($s, "\0").as_bytes()) {
            Ok(c) => c,
            Err(_) => panic!("SQL text has a NUL byte"),
        }
    };
}

kept_plan!(
    ONE_EXISTING,
    cstr!(concat!(stream_existing!(), insert_one!())),
    types = ARGS
);
kept_plan!(
    ONE_ANY,
    cstr!(concat!(stream_any!(), insert_one!())),
    types = ARGS
);
kept_plan!(
    ONE_NEW,
    cstr!(concat!(stream_new!(), insert_one!())),
    types = ARGS
);
kept_plan!(
    ONE_EXACT,
    cstr!(concat!(stream_exact!(), insert_one!())),
    types = ARGS
);
kept_plan!(
    MANY_EXISTING,
    cstr!(concat!(stream_existing!(), insert_many!())),
    types = ARGS
);
kept_plan!(
    MANY_ANY,
    cstr!(concat!(stream_any!(), insert_many!())),
    types = ARGS
);
kept_plan!(
    MANY_NEW,
    cstr!(concat!(stream_new!(), insert_many!())),
    types = ARGS
);
kept_plan!(
    MANY_EXACT,
    cstr!(concat!(stream_exact!(), insert_many!())),
    types = ARGS
);

kept_plan!(
    ONE_EXISTING_V,
    cstr!(concat!(stream_existing!(), insert_one_v!())),
    types = ARGS
);
kept_plan!(
    ONE_ANY_V,
    cstr!(concat!(stream_any!(), insert_one_v!())),
    types = ARGS
);
kept_plan!(
    ONE_NEW_V,
    cstr!(concat!(stream_new!(), insert_one_v!())),
    types = ARGS
);
kept_plan!(
    ONE_EXACT_V,
    cstr!(concat!(stream_exact!(), insert_one_v!())),
    types = ARGS
);
kept_plan!(
    ONE_EXISTING_R,
    cstr!(concat!(stream_existing!(), insert_one!(), with_row!())),
    types = ARGS
);
kept_plan!(
    ONE_ANY_R,
    cstr!(concat!(stream_any!(), insert_one!(), with_row!())),
    types = ARGS
);
kept_plan!(
    ONE_NEW_R,
    cstr!(concat!(stream_new!(), insert_one!(), with_row!())),
    types = ARGS
);
kept_plan!(
    ONE_EXACT_R,
    cstr!(concat!(stream_exact!(), insert_one!(), with_row!())),
    types = ARGS
);
kept_plan!(
    ONE_EXISTING_V_R,
    cstr!(concat!(stream_existing!(), insert_one_v!(), with_row!())),
    types = ARGS
);
kept_plan!(
    ONE_ANY_V_R,
    cstr!(concat!(stream_any!(), insert_one_v!(), with_row!())),
    types = ARGS
);
kept_plan!(
    ONE_NEW_V_R,
    cstr!(concat!(stream_new!(), insert_one_v!(), with_row!())),
    types = ARGS
);
kept_plan!(
    ONE_EXACT_V_R,
    cstr!(concat!(stream_exact!(), insert_one_v!(), with_row!())),
    types = ARGS
);
/// The single-event plans, by whether they store schema versions and
/// whether they return the row: existing, any, new, exact (by expected
/// version: none tries existing then any).
static ONE_PLANS: [[[&KeptPlan; 4]; 2]; 2] = [
    [
        [&ONE_EXISTING, &ONE_ANY, &ONE_NEW, &ONE_EXACT],
        [&ONE_EXISTING_R, &ONE_ANY_R, &ONE_NEW_R, &ONE_EXACT_R],
    ],
    [
        [&ONE_EXISTING_V, &ONE_ANY_V, &ONE_NEW_V, &ONE_EXACT_V],
        [
            &ONE_EXISTING_V_R,
            &ONE_ANY_V_R,
            &ONE_NEW_V_R,
            &ONE_EXACT_V_R,
        ],
    ],
];

kept_plan!(
    MANY_EXISTING_V,
    cstr!(concat!(stream_existing!(), insert_many_v!())),
    types = ARGS
);
kept_plan!(
    MANY_ANY_V,
    cstr!(concat!(stream_any!(), insert_many_v!())),
    types = ARGS
);
kept_plan!(
    MANY_NEW_V,
    cstr!(concat!(stream_new!(), insert_many_v!())),
    types = ARGS
);
kept_plan!(
    MANY_EXACT_V,
    cstr!(concat!(stream_exact!(), insert_many_v!())),
    types = ARGS
);
kept_plan!(
    STREAM_STATE,
    c"SELECT version, stream_type, last_position FROM es.streams WHERE stream_id = $1",
    [pg_sys::TEXTOID]
);
// Only asked of a stream closed by sql/12_lifecycle.sql, which exists then.
kept_plan!(
    LIFECYCLE,
    c"SELECT archived FROM es.stream_lifecycle WHERE stream_id = $1",
    [pg_sys::TEXTOID]
);
kept_plan!(
    FIND_EVENT_ID,
    c"SELECT stream_id, version, event_type = $2 AND data = $3 FROM es.events WHERE event_id = $1",
    [pg_sys::UUIDOID, pg_sys::TEXTOID, pg_sys::JSONBOID]
);
kept_plan!(
    FIND_BATCH_IDS,
    c"SELECT pg_catalog.count(ev.event_id),
             pg_catalog.count(*) FILTER (WHERE ev.stream_id = $1 AND ev.event_type = x.v->>'type'
                                AND ev.data = x.v->'data'),
             pg_catalog.count(*), pg_catalog.max(ev.version)
      FROM pg_catalog.jsonb_array_elements($2) AS x(v)
      LEFT JOIN es.events ev ON ev.event_id = (x.v->>'id')::uuid",
    [pg_sys::TEXTOID, pg_sys::JSONBOID]
);

kept_plan!(
    FIND_BATCH_PLACES,
    c"SELECT ev.version, ev.global_position
      FROM pg_catalog.jsonb_array_elements($1) WITH ORDINALITY AS x(v, ord)
      JOIN es.events ev ON ev.event_id = (x.v->>'id')::uuid
      ORDER BY x.ord",
    [pg_sys::JSONBOID]
);

/// What is appended: one event (type, data, metadata, id), or an array of
/// them (`data`) with their ids.
struct Events {
    event_type: Option<Datum>,
    data: Datum,
    metadata: Option<Datum>,
    event_id: Option<Datum>,
    ids: Option<Datum>,
    /// The events' schema versions (int4[]), when any is not 1.
    versions: Option<Datum>,
}

/// What an append was asked to do, once its arguments are checked.
pub(crate) struct Request<'a> {
    pub(crate) stream_id: &'a str,
    pub(crate) stream_id_datum: Datum,
    pub(crate) stream_type: Option<&'a str>,
    pub(crate) stream_type_datum: Option<Datum>,
    pub(crate) expected: Option<i64>,
    /// How a wrong expected version is reported.
    pub(crate) wrong_version: WrongVersion,
}

/// How a wrong expected version is reported: as pg_eventsource does
/// (40001), or by another store's API over it (`compat`), given the stream,
/// the expected and the actual version.
#[derive(Clone, Copy)]
pub(crate) enum WrongVersion {
    Es,
    Raise(fn(&str, i64, i64) -> !),
}

/// An event id given to an append that is already taken: pg_eventsource
/// takes the same event again as a retry; another store's API may refuse it
/// (given the id).
#[derive(Clone, Copy)]
pub(crate) enum TakenId {
    Retry,
    Refuse(fn(Datum) -> !),
}

impl Request<'_> {
    /// The statement's arguments for `events` (what $4 to $7 and $12 carry)
    /// at positions from `position` on.
    fn args(
        &self,
        events: &Events,
        position: i64,
        count: i64,
        digests: Datum,
    ) -> [Option<Datum>; 13] {
        let default_type = args::default_stream_type(self.stream_id).into_datum();
        [
            Some(self.stream_id_datum),
            self.stream_type_datum,
            default_type,
            events.event_type,
            Some(events.data),
            events.metadata,
            events.event_id,
            Some(Datum::from(position)),
            self.expected.map(Datum::from),
            Some(Datum::from(count)),
            Some(digests),
            events.ids,
            events.versions,
        ]
    }

    /// Fails with 55000: the stream is hard-deleted or archived (its
    /// `last_position` is the largest there is, so no append can follow).
    fn closed(&self) -> ! {
        let archived = LIFECYCLE.run(&[Some(self.stream_id_datum)], false) == 1
            && spi::value_bool(0, 1).unwrap_or(false);
        if archived {
            fail_hint(
                PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!(
                    "stream \"{}\" is archived: nothing can be appended to it",
                    self.stream_id
                ),
                "es.unarchive_stream brings it back.",
            );
        }
        fail_hint(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!(
                "stream \"{}\" was deleted: nothing can be appended to it",
                self.stream_id
            ),
            "es.delete_stream(..., hard => true) closed it for good; write to a new stream.",
        );
    }

    /// The statement returned no row. Returns when the only reason is that
    /// the stream's last event has a position at or after `first` (the
    /// caller then takes later positions and tries again); otherwise fails,
    /// saying why (wrong version, or wrong type).
    fn explain_refusal(&self, first: i64) {
        let (actual, recorded_type, last) =
            if STREAM_STATE.run(&[Some(self.stream_id_datum)], false) == 1 {
                (
                    spi::value_i64(0, 1).unwrap_or(0),
                    spi::value_string(0, 2),
                    spi::value_i64(0, 3).unwrap_or(0),
                )
            } else {
                (0, None, 0)
            };
        if last == i64::MAX {
            self.closed();
        }
        let type_ok = self.stream_type.is_none() || recorded_type.as_deref() == self.stream_type;
        let version_ok = match self.expected {
            None => true,
            Some(e) => e == actual && (e > 0 || recorded_type.is_none()),
        };
        if type_ok && version_ok && last >= first {
            return;
        }
        if let Some(expected) = self.expected {
            if expected != actual {
                if let WrongVersion::Raise(raise) = self.wrong_version {
                    raise(self.stream_id, expected, actual);
                }
                fail_hint(
                    PgSqlErrorCode::ERRCODE_T_R_SERIALIZATION_FAILURE,
                    format!(
                        "wrong expected version for stream \"{}\": expected {expected}, actual {actual}",
                        self.stream_id
                    ),
                    "Another append got there first: load the stream again, re-decide, and retry.",
                );
            }
        }
        fail(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "stream \"{}\" has type \"{}\", not \"{}\"",
                self.stream_id,
                recorded_type.unwrap_or_default(),
                self.stream_type.unwrap_or_default()
            ),
        );
    }
}

/// Runs the plans in order until one moves the stream (returns its row:
/// the new version and the stream's type).
fn run_first(plans: &[&KeptPlan], args: &[Option<Datum>]) -> bool {
    plans.iter().any(|p| p.run(args, false) == 1)
}

/// # Safety
/// `fcinfo` is the call's; the argument numbers are those of the function's SQL signature.
unsafe fn request<'a>(
    fcinfo: pg_sys::FunctionCallInfo,
    stream_id_arg: usize,
    expected_arg: usize,
    stream_type_arg: usize,
) -> Request<'a> {
    let stream_id = args::identifier("stream_id", crate::pg::fmgr::arg_str(fcinfo, stream_id_arg));
    let stream_type = args::optional_identifier(
        "stream_type",
        crate::pg::fmgr::arg_str(fcinfo, stream_type_arg),
    );
    Request {
        stream_id,
        stream_id_datum: fcinfo::pg_getarg_datum_raw(fcinfo, stream_id_arg),
        stream_type,
        stream_type_datum: crate::pg::fmgr::arg_datum(fcinfo, stream_type_arg),
        expected: args::expected_version(fcinfo::pg_getarg::<i64>(fcinfo, expected_arg)),
        wrong_version: WrongVersion::Es,
    }
}

fn check_size(what: &str, bytes: usize) {
    let limit = MAX_EVENT_SIZE.get().max(0) as usize;
    if bytes > limit {
        fail_hint(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!("{what} is {bytes} bytes; es.max_event_size is {limit} bytes"),
            "Store large payloads elsewhere and put a reference in the event, or raise es.max_event_size.",
        );
    }
}

fn duplicate_id(msg: String) -> ! {
    fail_hint(
        PgSqlErrorCode::ERRCODE_UNIQUE_VIOLATION,
        msg,
        "An event id names one event: a retry must repeat the same stream, type and data.",
    )
}

crate::v1_function_info!(pg_finfo_es_append_event);

/// es.append_event(stream_id, event_type, data, expected_version, metadata, event_id, stream_type)
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose arguments match
/// the function's SQL signature in `sql/`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_append_event(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    // 25006 in a read-only transaction (a hot standby's included), before
    // anything asks for a transaction id.
    pg_sys::PreventCommandIfReadOnly(c"es.append_event()".as_ptr());
    let req = request(fcinfo, 0, 3, 6);
    let version = append_one(
        &req,
        fcinfo::pg_getarg_datum_raw(fcinfo, 1),
        crate::pg::fmgr::arg_str(fcinfo, 1),
        crate::pg::fmgr::arg_datum(fcinfo, 2),
        crate::pg::fmgr::arg_datum(fcinfo, 4),
        crate::pg::fmgr::arg_datum(fcinfo, 5),
        TakenId::Retry,
    );
    Datum::from(version)
}

/// Appends one event (the checks and the write of `es.append_event`);
/// returns the stream's new version. `event_type` is a text datum whose
/// text is `event_type_str` (`None`: SQL NULL).
///
/// # Safety
/// `data` and `metadata` are jsonb datums, `given_id` a uuid datum, and
/// `event_type` a text datum when `event_type_str` is given; all outlive the call.
pub(crate) unsafe fn append_one(
    req: &Request,
    event_type: Datum,
    event_type_str: Option<&str>,
    data: Option<Datum>,
    metadata: Option<Datum>,
    given_id: Option<Datum>,
    taken: TakenId,
) -> i64 {
    let type_str = args::identifier("event_type", event_type_str);
    guard::check_event_type("event_type", type_str);
    let Some(data) = data else {
        fail_hint(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "data must not be NULL".into(),
            "An event with no payload can use '{}' or 'null'::jsonb.",
        );
    };
    // SAFETY: `data` is a non-null jsonb datum of the caller's.
    check_size("data", unsafe {
        pg_sys::toast_raw_datum_size(data).saturating_sub(pg_sys::VARHDRSZ)
    });
    if let Some(m) = metadata {
        // SAFETY: a non-null jsonb datum of the caller's.
        if !unsafe { jsonb::datum_is_object(m) } {
            fail(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                "metadata must be a JSON object".into(),
            );
        }
    }
    // SAFETY: `data` is a non-null jsonb datum (the function's contract).
    let schema_version =
        validate::check_append(type_str, unsafe { validate::J::root(data) }, || {
            "data".into()
        });
    let versions = (schema_version != 1)
        .then(|| vec![schema_version].into_datum())
        .flatten();

    spi::connected(|| {
        // A retry is told apart from a clash by reading the event the id
        // names; an API that refuses every taken id needs no read: the
        // unique index refuses it (`refusing_taken_id`, below).
        if let (Some(id), TakenId::Retry) = (given_id, taken) {
            if FIND_EVENT_ID.run(&[Some(id), Some(event_type), Some(data)], false) == 1 {
                let same = spi::value_string(0, 1).as_deref() == Some(req.stream_id)
                    && spi::value_bool(0, 3) == Some(true);
                if same {
                    return spi::value_i64(0, 2).unwrap_or(0);
                }
                duplicate_id("event_id is already used by a different event".into());
            }
        }
        let id = given_id.or_else(|| pgrx::Uuid::from_bytes(ids::uuid_v7()).into_datum());
        let parts = chain::partial(&chain::EventParts {
            stream_id: req.stream_id.as_bytes(),
            event_type: type_str.as_bytes(),
            // SAFETY: a uuid datum points to its 16 bytes.
            event_id: unsafe {
                std::slice::from_raw_parts(id.expect("an id").cast_mut_ptr::<u8>(), 16)
            },
            recorded_at: chain::now(),
            // SAFETY: jsonb datums (varlenas) alive for the whole call.
            data: unsafe { chain::varlena_bytes(data) },
            // SAFETY: as above.
            metadata: metadata.map_or(&chain::EMPTY_OBJECT[..], |m| unsafe {
                chain::varlena_bytes(m)
            }),
        });
        let first = position::reserve(1);
        // the row comes back when something may be due for the stream's type
        // (as given, or as its id says: the recorded one, if it differs, is
        // read back)
        let with_row = after_append_wants_row(
            req.stream_type
                .unwrap_or_else(|| args::default_stream_type(req.stream_id)),
        );
        let family = &ONE_PLANS[usize::from(versions.is_some())][usize::from(with_row)];
        let plans: &[&KeptPlan] = match req.expected {
            None => &family[0..2],
            Some(0) => &family[2..3],
            Some(_) => &family[3..4],
        };
        let event = append_direct::Event {
            event_type,
            data,
            metadata,
            event_id: id.expect("an id"),
            schema_version,
        };
        let write = || {
            let mut pos = first;
            loop {
                let digest = chain::finish(parts.clone(), pos);
                // An existing stream's append without a plan; the statement when
                // that cannot be done, or (no expected version) for a stream that
                // may not exist yet.
                let mut statement = plans;
                if req.expected != Some(0) {
                    match append_direct::append_existing(
                        req.stream_id_datum,
                        req.stream_type,
                        req.expected,
                        pos,
                        &digest,
                        &event,
                        with_row,
                    ) {
                        Outcome::Done(w) => return (pos, w),
                        Outcome::NoRow if req.expected.is_some() => statement = &[],
                        Outcome::NoRow => statement = &plans[1..],
                        Outcome::Unavailable => {}
                    }
                }
                let args = req.args(
                    &Events {
                        event_type: Some(event_type),
                        data,
                        metadata,
                        event_id: id,
                        ids: None,
                        versions,
                    },
                    pos,
                    1,
                    chain::bytea(&digest),
                );
                if run_first(statement, &args) {
                    return (
                        pos,
                        Done {
                            version: spi::value_i64(0, 1).unwrap_or(0),
                            stream_type: spi::value_string(0, 2).unwrap_or_default(),
                            row: if with_row { spi::value(0, 3) } else { None },
                        },
                    );
                }
                req.explain_refusal(pos);
                pos = position::reserve_after_lock(1);
            }
        };
        let (
            pos,
            Done {
                version,
                stream_type,
                row,
            },
        ) = match (given_id, taken) {
            (Some(id), TakenId::Refuse(refuse)) => refusing_taken_id(id, refuse, write),
            _ => write(),
        };
        appended::record(
            req.stream_id,
            &stream_type,
            vec![type_str.to_owned()],
            pos,
            1,
        );
        after_append(req.stream_id, &stream_type, version, 1, row);
        version
    })
}

/// Runs `write`; an event id it stores that is already taken (the unique
/// index on `es.events.event_id` raises 23505, also for an id a concurrent
/// transaction committed meanwhile) is reported by `refuse`. Any other error
/// goes on as it was. Nothing needs undoing: `refuse` raises an error too,
/// and the (sub)transaction's abort takes back what `write` did.
fn refusing_taken_id<R>(id: Datum, refuse: fn(Datum) -> !, write: impl FnOnce() -> R) -> R {
    PgTryBuilder::new(std::panic::AssertUnwindSafe(write))
        .catch_when(PgSqlErrorCode::ERRCODE_UNIQUE_VIOLATION, |e| {
            let names_id_key = match &e {
                pg_sys::panic::CaughtError::PostgresError(r)
                | pg_sys::panic::CaughtError::ErrorReport(r) => {
                    r.message().contains("\"events_event_id_key\"")
                }
                pg_sys::panic::CaughtError::RustPanic { .. } => false,
            };
            if names_id_key {
                refuse(id)
            }
            e.rethrow()
        })
        .execute()
}

/// An events array, checked: how many, whether any carries an id, the
/// distinct event types, each event's id (generated where absent) and its
/// digest but for the position (`chain.rs`).
struct Batch {
    n: u32,
    any_id: bool,
    types: Vec<String>,
    ids: Vec<pgrx::Uuid>,
    parts: Vec<sha2::Sha256>,
    /// Each event's schema version; `None` when all are 1.
    versions: Option<Vec<i32>>,
}

/// Checks every element of an events array (`what` names it in messages:
/// "events", or "batches[2].events").
fn check_events(what: &str, stream_id: &str, events: Datum) -> Batch {
    // SAFETY: `events` is the function's non-null jsonb argument, alive for the whole call.
    let arr = unsafe { Container::from_datum(events) };
    let bad = |msg: String| -> ! {
        fail_hint(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            msg,
            r#"events is a JSON array of {"type": text, "data": any, "metadata"?: object, "id"?: uuid}."#,
        )
    };
    if !arr.is_array() {
        bad(format!("{what} must be a JSON array"));
    }
    let n = arr.len();
    if n == 0 {
        bad(format!("{what} must not be empty"));
    }
    if n as u64 > position::MAX_EVENTS_PER_TRANSACTION {
        fail(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!(
                "{what} has {n} elements; at most {} fit in one append",
                position::MAX_EVENTS_PER_TRANSACTION
            ),
        );
    }
    let mut ids: Vec<[u8; 16]> = Vec::new();
    let mut types: Vec<String> = Vec::new();
    let mut all_ids = Vec::with_capacity(n as usize);
    let mut parts = Vec::with_capacity(n as usize);
    let mut versions: Vec<i32> = Vec::new();
    let recorded_at = chain::now();
    for i in 0..n {
        let Some(el) = arr
            .ith(i)
            .and_then(|v| v.container())
            .filter(|c| c.is_object())
        else {
            bad(format!("{what}[{i}] must be a JSON object"));
        };
        let event_type = match el.get("type").map(|v| v.as_str()) {
            None => bad(format!("{what}[{i}] has no \"type\"")),
            Some(None) => bad(format!("{what}[{i}].type must be a string")),
            Some(Some(t)) => {
                args::check_identifier(&format!("{what}[{i}].type"), t);
                guard::check_event_type(&format!("{what}[{i}].type"), t);
                if !types.iter().any(|x| x == t) {
                    types.push(t.to_owned());
                }
                t
            }
        };
        let data = match el.get("data") {
            None => bad(format!("{what}[{i}] has no \"data\"")),
            Some(d) => {
                check_size(&format!("{what}[{i}].data"), d.byte_len());
                d
            }
        };
        // a violation fails the whole batch: nothing is written
        let v = validate::check_append(event_type, validate::J::of(data), || {
            format!("{what}[{i}].data")
        });
        if v != 1 && versions.is_empty() {
            versions.resize(i as usize, 1);
        }
        if !versions.is_empty() || v != 1 {
            versions.push(v);
        }
        let metadata = el.get("metadata");
        if let Some(m) = metadata {
            if !m.is_null() && !m.is_object() {
                bad(format!("{what}[{i}].metadata must be a JSON object"));
            }
        }
        let id = if let Some(id) = el.get("id").filter(|v| !v.is_null()) {
            let Some(uuid) = id.as_str().and_then(ids::parse_uuid) else {
                bad(format!("{what}[{i}].id must be a UUID string"));
            };
            if ids.contains(&uuid) {
                bad(format!("{what}[{i}].id appears twice in the batch"));
            }
            ids.push(uuid);
            uuid
        } else {
            ids::uuid_v7()
        };
        // What the insert stores: data and metadata as `->` takes them out
        // of the element, `{}` for metadata that is not an object.
        parts.push(chain::with_value_bytes(&data, |data| {
            let digest = |metadata: &[u8]| {
                chain::partial(&chain::EventParts {
                    stream_id: stream_id.as_bytes(),
                    event_type: event_type.as_bytes(),
                    event_id: &id,
                    recorded_at,
                    data,
                    metadata,
                })
            };
            match metadata.filter(|m| m.is_object()) {
                Some(m) => chain::with_value_bytes(&m, digest),
                None => digest(&chain::EMPTY_OBJECT),
            }
        }));
        all_ids.push(pgrx::Uuid::from_bytes(id));
    }
    Batch {
        n,
        any_id: !ids.is_empty(),
        types,
        ids: all_ids,
        parts,
        versions: (!versions.is_empty()).then_some(versions),
    }
}

crate::v1_function_info!(pg_finfo_es_append_events);

/// es.append_events(stream_id, events, expected_version, stream_type)
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose arguments match
/// the function's SQL signature in `sql/`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_append_events(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    pg_sys::PreventCommandIfReadOnly(c"es.append_events()".as_ptr());
    let req = request(fcinfo, 0, 2, 3);
    let Some(events) = crate::pg::fmgr::arg_datum(fcinfo, 1) else {
        fail(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "events must not be NULL".into(),
        );
    };
    Datum::from(append_array(&req, "events", events).version)
}

/// What one append of an array wrote.
struct Written {
    /// The stream's version after it.
    version: i64,
    /// Each event's version and position, in the array's order.
    events: Placement,
}

enum Placement {
    /// `n` events at consecutive versions and positions from `first` on
    /// (what an append writes).
    Consecutive { first: i64, n: i64 },
    /// A retry that wrote nothing: the events (with their ids) are where
    /// they already were, looked up only when asked (es.append_multi).
    Retried { events: Datum },
}

impl Written {
    /// (version, position) of each event, in the array's order.
    fn each(&self) -> Vec<(i64, i64)> {
        match &self.events {
            Placement::Consecutive { first, n } => (0..*n)
                .map(|i| (self.version - n + 1 + i, first + i))
                .collect(),
            Placement::Retried { events } => spi::connected(|| {
                let rows = FIND_BATCH_PLACES.run(&[Some(*events)], false) as usize;
                (0..rows)
                    .map(|r| {
                        (
                            spi::value_i64(r, 1).unwrap_or(0),
                            spi::value_i64(r, 2).unwrap_or(0),
                        )
                    })
                    .collect()
            }),
        }
    }
}

/// Appends an events array to the request's stream, all or nothing
/// (es.append_events, and each batch of es.append_multi).
fn append_array(req: &Request, what: &str, events: Datum) -> Written {
    let Batch {
        n,
        any_id,
        types,
        ids,
        parts,
        versions,
    } = check_events(what, req.stream_id, events);
    let ids = ids.into_datum();
    let versioned = versions.is_some();
    let versions = versions.and_then(|v| v.into_datum());

    spi::connected(|| {
        if any_id {
            FIND_BATCH_IDS.run(&[Some(req.stream_id_datum), Some(events)], false);
            let found = spi::value_i64(0, 1).unwrap_or(0);
            let matched = spi::value_i64(0, 2).unwrap_or(0);
            if found > 0 {
                if matched == n as i64 {
                    // a retry of an append that committed: nothing is written
                    return Written {
                        version: spi::value_i64(0, 4).unwrap_or(0),
                        events: Placement::Retried { events },
                    };
                }
                duplicate_id(format!(
                    "{found} of the {n} event ids are already used, not all by this same batch"
                ));
            }
        }
        let mut first = position::reserve(n as u64);
        let plans: &[&KeptPlan] = match (req.expected, versioned) {
            (None, false) => &[&MANY_EXISTING, &MANY_ANY],
            (Some(0), false) => &[&MANY_NEW],
            (Some(_), false) => &[&MANY_EXACT],
            (None, true) => &[&MANY_EXISTING_V, &MANY_ANY_V],
            (Some(0), true) => &[&MANY_NEW_V],
            (Some(_), true) => &[&MANY_EXACT_V],
        };
        let digests = |first: i64| {
            let mut all = Vec::with_capacity(parts.len() * 32);
            for (i, p) in parts.iter().enumerate() {
                all.extend_from_slice(&chain::finish(p.clone(), first + i as i64));
            }
            chain::bytea(&all)
        };
        while !run_first(
            plans,
            &req.args(
                &Events {
                    event_type: None,
                    data: events,
                    metadata: None,
                    event_id: None,
                    ids,
                    versions,
                },
                first,
                n as i64,
                digests(first),
            ),
        ) {
            req.explain_refusal(first);
            first = position::reserve_after_lock(n as u64);
        }
        let version = spi::value_i64(0, 1).unwrap_or(0);
        let stream_type = spi::value_string(0, 2).unwrap_or_default();
        appended::record(req.stream_id, &stream_type, types, first, n as i64);
        after_append(
            req.stream_id,
            &stream_type,
            version - n as i64 + 1,
            n as i64,
            None,
        );
        Written {
            version,
            events: Placement::Consecutive { first, n: n as i64 },
        }
    })
}

/// One batch of es.append_multi, checked.
struct MultiBatch<'a> {
    stream_id: &'a str,
    stream_type: Option<&'a str>,
    expected: Option<i64>,
    events: Datum,
}

/// Checks the batches array of es.append_multi (nothing is written yet).
fn check_batches(batches: Datum) -> Vec<MultiBatch<'static>> {
    // SAFETY: the function's non-null jsonb argument, alive for the whole call (the
    // 'static borrows below end with it: the batches are used within the call only).
    let arr = unsafe { Container::from_datum(batches) };
    let bad = |msg: String| -> ! {
        fail_hint(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            msg,
            r#"batches is a JSON array of {"stream_id": text, "events": [...], "expected_version"?: integer, "stream_type"?: text}."#,
        )
    };
    if !arr.is_array() {
        bad("batches must be a JSON array".into());
    }
    if arr.len() == 0 {
        bad("batches must not be empty".into());
    }
    (0..arr.len())
        .map(|i| {
            let Some(b) = arr
                .ith(i)
                .and_then(|v| v.container())
                .filter(|c| c.is_object())
            else {
                bad(format!("batches[{i}] must be a JSON object"));
            };
            for (k, _) in b.pairs() {
                if !matches!(
                    k,
                    "stream_id" | "events" | "expected_version" | "stream_type"
                ) {
                    bad(format!("batches[{i}] has an unknown key \"{k}\""));
                }
            }
            let text = |key: &str| -> Option<&'static str> {
                match b.get(key) {
                    None => None,
                    Some(v) if v.is_null() => None,
                    Some(v) => match v.as_str() {
                        Some(s) => Some(s),
                        None => bad(format!("batches[{i}].{key} must be a string")),
                    },
                }
            };
            let stream_id = match text("stream_id") {
                Some(s) => args::check_identifier(&format!("batches[{i}].stream_id"), s),
                None => fail(
                    PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                    format!("batches[{i}].stream_id must not be NULL"),
                ),
            };
            let stream_type = text("stream_type")
                .map(|s| args::check_identifier(&format!("batches[{i}].stream_type"), s));
            let expected = match b.get("expected_version").filter(|v| !v.is_null()) {
                None => None,
                Some(v) => match Val::from_jsonb_value(&v) {
                    Val::Num(n) if n.as_i64().is_some() => args::expected_version(n.as_i64()),
                    _ => bad(format!("batches[{i}].expected_version must be an integer")),
                },
            };
            let Some(events) = b.get("events") else {
                bad(format!("batches[{i}] has no \"events\""));
            };
            MultiBatch {
                stream_id,
                stream_type,
                expected,
                events: crate::pg::jsonb_build::value_datum(&events.0),
            }
        })
        .collect()
}

crate::v1_function_info!(pg_finfo_es_append_multi);

/// es.append_multi(batches jsonb) RETURNS TABLE (stream_id text, version
/// bigint, global_position bigint): appends to several streams at once, all
/// or nothing, one row per event in the order given.
///
/// The streams are locked in stream id order (a stream named twice keeps
/// its batches' order), so two calls naming the same streams in different
/// orders wait for each other instead of deadlocking.
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose arguments match
/// the function's SQL signature in `sql/`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_append_multi(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    pg_sys::PreventCommandIfReadOnly(c"es.append_multi()".as_ptr());
    let Some(batches) = crate::pg::fmgr::arg_datum(fcinfo, 0) else {
        fail(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "batches must not be NULL".into(),
        );
    };
    let batches = check_batches(batches);
    let mut order: Vec<usize> = (0..batches.len()).collect();
    order.sort_by(|&a, &b| batches[a].stream_id.cmp(batches[b].stream_id));
    let mut written: Vec<Option<(Datum, Written)>> = (0..batches.len()).map(|_| None).collect();
    for i in order {
        let b = &batches[i];
        let stream_id_datum = b.stream_id.into_datum().expect("text");
        let req = Request {
            stream_id: b.stream_id,
            stream_id_datum,
            stream_type: b.stream_type,
            stream_type_datum: b.stream_type.and_then(|t| t.into_datum()),
            expected: b.expected,
            wrong_version: WrongVersion::Es,
        };
        let w = append_array(&req, &format!("batches[{i}].events"), b.events);
        written[i] = Some((stream_id_datum, w));
    }
    // SAFETY: a set-returning function in materialize mode: the tuplestore and its
    // descriptor live in the query's memory; tuplestore_putvalues copies each row.
    pg_sys::InitMaterializedSRF(fcinfo, 0);
    let rsinfo = (*fcinfo).resultinfo as *mut pg_sys::ReturnSetInfo;
    let (store, desc) = ((*rsinfo).setResult, (*rsinfo).setDesc);
    for (stream_id, w) in written.into_iter().flatten() {
        for (version, position) in w.each() {
            let mut values = [stream_id, Datum::from(version), Datum::from(position)];
            let mut nulls = [false; 3];
            pg_sys::tuplestore_putvalues(store, desc, values.as_mut_ptr(), nulls.as_mut_ptr());
        }
    }
    Datum::from(0usize)
}

// ---- after an append ------------------------------------------------------
// Only appends made by these functions take snapshots and reach inline
// projections (the hook below): rows that a restore copies into es.events
// are left alone.

thread_local! {
    static AFTER_APPEND: Cell<Option<AfterAppend>> = const { Cell::new(None) };
}

/// What runs after each append, in its transaction. The layers above the
/// store set it (inline projections and snapshots, `_PG_init`); the store
/// does not import them.
#[derive(Clone, Copy)]
pub(crate) struct AfterAppend {
    /// Whether an append to a stream of this type may need its rows.
    pub(crate) wants_row: fn(&str) -> bool,
    /// (stream_id, stream_type, first version written, number of events,
    /// the `es.events` row when one event was written and asked for).
    pub(crate) run: fn(&str, &str, i64, i64, Option<Datum>),
}

/// Sets the hook (from `_PG_init`).
pub(crate) fn on_append(hook: AfterAppend) {
    AFTER_APPEND.with(|h| h.set(Some(hook)));
}

fn after_append_wants_row(stream_type: &str) -> bool {
    AFTER_APPEND
        .with(|h| h.get())
        .is_some_and(|h| (h.wants_row)(stream_type))
}

fn after_append(stream_id: &str, stream_type: &str, first: i64, count: i64, row: Option<Datum>) {
    if let Some(hook) = AFTER_APPEND.with(|h| h.get()) {
        (hook.run)(stream_id, stream_type, first, count, row);
    }
}
