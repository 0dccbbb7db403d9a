//! Version-1 C functions: their `pg_finfo_*` records, argument readers
//! (and an inline comparison of the short strings they give), composite
//! results. The SQL signatures of these functions are written by
//! hand in `sql/`.

use pgrx::pg_sys::{self, Datum};

/// How a varlena is stored, read from its first byte (the header bits as
/// PostgreSQL lays them out on little-endian machines; elsewhere always
/// `Other`, which callers hand to PostgreSQL to detoast).
pub(crate) enum Stored {
    /// A plain 4-byte header, uncompressed; the total length, header included.
    Plain(usize),
    /// A short 1-byte header; the total length, header included.
    Short(usize),
    /// Compressed, external, or not known here.
    Other,
}

/// # Safety
/// `p` points to a varlena.
pub(crate) unsafe fn stored(p: *const u8) -> Stored {
    let first = *p;
    if !cfg!(target_endian = "little") {
        Stored::Other
    } else if first & 0x03 == 0x00 {
        // the 4-byte header holds the total length shifted by two
        Stored::Plain(((p as *const u32).read_unaligned() >> 2) as usize)
    } else if first & 0x01 == 0x01 && first != 0x01 {
        Stored::Short((first >> 1) as usize)
    } else {
        Stored::Other
    }
}

/// The bytes of a text datum as `&str` (detoasting if needed).
///
/// # Safety
/// `d` must be a valid, non-null text datum that outlives the returned slice.
pub(crate) unsafe fn text_datum_str<'a>(d: pg_sys::Datum) -> &'a str {
    let p = d.cast_mut_ptr::<u8>();
    // A short (1-byte header) or plain 4-byte-header value is read in place,
    // its length from the header read once; only a compressed or external
    // one needs detoasting (a call into PostgreSQL, which folds pay per event
    // and per column).
    let (ptr, len) = match stored(p) {
        Stored::Short(total) => (p.add(1) as *const u8, total - 1),
        Stored::Plain(total) => (p.add(4) as *const u8, total - 4),
        Stored::Other => {
            let v = pg_sys::pg_detoast_datum_packed(p.cast());
            (
                pgrx::vardata_any(v) as *const u8,
                pgrx::varsize_any_exhdr(v),
            )
        }
    };
    // The server encoding is checked on input; only UTF-8-compatible bytes reach us
    // for the ASCII comparisons we do, so lossless reinterpretation is fine.
    std::str::from_utf8_unchecked(std::slice::from_raw_parts(ptr, len))
}

/// Whether two byte strings are equal, compared inline: the keys, types and
/// stream ids folds compare per event are short, and a call into the C
/// library's memcmp (what slice equality makes) costs more than they do.
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    // SAFETY: every read below lies within both slices (equal lengths `n`,
    // offsets checked against `n`); reads are unaligned and may overlap.
    unsafe {
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let word = |p: *const u8, i: usize| p.add(i).cast::<u64>().read_unaligned();
        let half = |p: *const u8, i: usize| p.add(i).cast::<u32>().read_unaligned();
        if n >= 8 {
            let mut i = 0;
            while i + 8 < n {
                if word(pa, i) != word(pb, i) {
                    return false;
                }
                i += 8;
            }
            // the last eight bytes (overlapping the ones compared before)
            word(pa, n - 8) == word(pb, n - 8)
        } else if n >= 4 {
            half(pa, 0) == half(pb, 0) && half(pa, n - 4) == half(pb, n - 4)
        } else {
            (0..n).all(|i| *pa.add(i) == *pb.add(i))
        }
    }
}

/// Argument `n` of a V1 C function as a raw datum, `None` when SQL NULL.
///
/// # Safety
/// `fcinfo` is the call's, with at least `n + 1` arguments.
pub(crate) unsafe fn arg_datum(
    fcinfo: pg_sys::FunctionCallInfo,
    n: usize,
) -> Option<pg_sys::Datum> {
    if pgrx::fcinfo::pg_arg_is_null(fcinfo, n) {
        None
    } else {
        Some(pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, n))
    }
}

/// Argument `n` (text) as a string slice into the argument, `None` when SQL NULL.
///
/// # Safety
/// `fcinfo` is the call's, with at least `n + 1` arguments, argument `n` of type text.
pub(crate) unsafe fn arg_str<'a>(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> Option<&'a str> {
    arg_datum(fcinfo, n).map(|d| text_datum_str(d))
}

/// Forms the function's composite result from `values` (None is NULL).
///
/// # Safety
/// `fcinfo` is the call's, for a function whose SQL result type is a composite of as many
/// columns as `values`.
pub(crate) unsafe fn composite_result(
    fcinfo: pg_sys::FunctionCallInfo,
    values: &[Option<Datum>],
) -> Datum {
    let mut tupdesc: pg_sys::TupleDesc = std::ptr::null_mut();
    if pg_sys::get_call_result_type(fcinfo, std::ptr::null_mut(), &mut tupdesc)
        != pg_sys::TypeFuncClass::TYPEFUNC_COMPOSITE
    {
        pgrx::error!("function returning a composite called in a context that cannot accept it");
    }
    let tupdesc = pg_sys::BlessTupleDesc(tupdesc);
    let mut datums: Vec<Datum> = values
        .iter()
        .map(|v| v.unwrap_or(Datum::from(0usize)))
        .collect();
    let mut nulls: Vec<bool> = values.iter().map(|v| v.is_none()).collect();
    let tuple = pg_sys::heap_form_tuple(tupdesc, datums.as_mut_ptr(), nulls.as_mut_ptr());
    pg_sys::HeapTupleHeaderGetDatum((*tuple).t_data)
}

/// Declares the `pg_finfo_*` record PostgreSQL looks up for a V1 C function
/// whose SQL signature is written in `sql/`.
#[macro_export]
macro_rules! v1_function_info {
    ($finfo:ident) => {
        #[unsafe(no_mangle)]
        #[doc(hidden)]
        pub extern "C" fn $finfo() -> &'static ::pgrx::pg_sys::Pg_finfo_record {
            const V1: ::pgrx::pg_sys::Pg_finfo_record =
                ::pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }
    };
}
