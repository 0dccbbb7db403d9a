//! `es.stream_version`: a stream's current version, the number a writer
//! passes back as its expected version.
//!
//! In C rather than SQL because it is called once per optimistic write: the
//! SQL function could not be inlined (its body is a sub-select) and so was
//! planned on every call, costing more than the lookup itself. Here it is one
//! probe of `es.streams`' primary key, made without the executor where the
//! caller may read the whole table (`pg::index_scan`), else one kept plan; with
//! the caller's rights either way.

use crate::kept_plan;
use crate::pg::index_scan::{IndexScan, Key};
use crate::pg::spi;
use crate::store::args;
use pgrx::pg_sys::{self, Datum};

kept_plan!(
    VERSION,
    c"SELECT version FROM es.streams WHERE stream_id = $1",
    [pg_sys::TEXTOID]
);

crate::v1_function_info!(pg_finfo_es_stream_version);

/// es.stream_version(stream_id text) RETURNS bigint: 0 when the stream has no events.
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose arguments match
/// the function's SQL signature in `sql/`.
#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_stream_version(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let given = crate::pg::fmgr::arg_datum(fcinfo, 0);
    args::identifier("stream_id", crate::pg::fmgr::arg_str(fcinfo, 0));
    if let Some(mut s) = IndexScan::open(
        c"streams",
        c"streams_pkey",
        &[Key::TextEq(
            "stream_id",
            given.expect("stream_id is checked above"),
        )],
        false,
    ) {
        let version = s
            .next()
            .map_or(0, |_| s.value("version").expect("version").value() as i64);
        s.close();
        return Datum::from(version);
    }
    let version = spi::connected(|| {
        if VERSION.run(&[given], true) == 1 {
            spi::value_i64(0, 1).unwrap_or(0)
        } else {
            0
        }
    });
    Datum::from(version)
}
