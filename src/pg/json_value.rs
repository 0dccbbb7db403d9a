//! The state native reducers work on: a JSON value held in Rust, read from
//! jsonb's binary form and written back to jsonb once, at the end of a fold.

use crate::pg::decimal::Num;
use crate::pg::jsonb::{Container, Value};
use pgrx::pg_sys;
use std::fmt::Write;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Val {
    Null,
    Bool(bool),
    Num(Num),
    Str(String),
    Arr(Vec<Val>),
    /// Keys in insertion order; jsonb sorts them on output.
    Obj(Vec<(String, Val)>),
}

impl Val {
    /// Converts one value taken out of a jsonb container.
    pub(crate) fn from_jsonb_value(v: &Value) -> Val {
        let jv = &v.0;
        // SAFETY: `d` is a non-null jsonb datum (the caller's contract); it is detoasted into
        // the current context.
        unsafe {
            match jv.type_ {
                pg_sys::jbvType::jbvNull => Val::Null,
                pg_sys::jbvType::jbvBool => Val::Bool(jv.val.boolean),
                pg_sys::jbvType::jbvNumeric => Val::Num(Num::from_numeric(jv.val.numeric)),
                pg_sys::jbvType::jbvString => Val::Str(v.as_str().unwrap_or_default().to_owned()),
                pg_sys::jbvType::jbvBinary => {
                    Val::from_container(Container::raw(jv.val.binary.data))
                }
                _ => Val::Null,
            }
        }
    }

    /// Converts a whole container (a scalar root comes back as the scalar).
    pub(crate) fn from_container(c: Container) -> Val {
        // SAFETY: `c` points into a detoasted jsonb that outlives the iteration.
        let mut it = unsafe { pg_sys::JsonbIteratorInit(c.as_ptr()) };
        let mut stack: Vec<Val> = Vec::new();
        let mut keys: Vec<Option<String>> = Vec::new();
        let mut raw_scalar = false;
        let mut result = Val::Null;
        loop {
            let mut v = std::mem::MaybeUninit::<pg_sys::JsonbValue>::zeroed();
            // SAFETY: `it` is the iterator made above; PostgreSQL frees it when it returns
            // WJB_DONE.
            let tok = unsafe { pg_sys::JsonbIteratorNext(&mut it, v.as_mut_ptr(), false) };
            // SAFETY: JsonbIteratorNext filled the value for every token this loop reads.
            let v = Value(unsafe { v.assume_init() });
            use pg_sys::JsonbIteratorToken::*;
            match tok {
                WJB_DONE => break,
                WJB_BEGIN_ARRAY => {
                    // SAFETY: an array-begin token carries the `array` member of the union.
                    raw_scalar = unsafe { v.0.val.array.rawScalar };
                    stack.push(Val::Arr(Vec::new()));
                    keys.push(None);
                }
                WJB_BEGIN_OBJECT => {
                    stack.push(Val::Obj(Vec::new()));
                    keys.push(None);
                }
                WJB_KEY => {
                    *keys.last_mut().expect("key inside an object") =
                        Some(v.as_str().unwrap_or_default().to_owned());
                }
                WJB_VALUE | WJB_ELEM => {
                    let item = Val::from_jsonb_value(&v);
                    push_into(&mut stack, &mut keys, item);
                }
                WJB_END_ARRAY | WJB_END_OBJECT => {
                    let done = stack.pop().expect("balanced container");
                    keys.pop();
                    let done = match done {
                        Val::Arr(mut a) if raw_scalar && stack.is_empty() && a.len() == 1 => {
                            a.pop().expect("one element")
                        }
                        other => other,
                    };
                    if stack.is_empty() {
                        result = done;
                    } else {
                        push_into(&mut stack, &mut keys, done);
                    }
                }
                _ => {}
            }
        }
        result
    }

    /// The value at a path of object keys (`None` when a key is missing or a
    /// step is not an object).
    pub(crate) fn get_path(&self, keys: &[String]) -> Option<&Val> {
        keys.iter().try_fold(self, |cur, k| match cur {
            Val::Obj(o) => o.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v),
            _ => None,
        })
    }

    /// Converts a jsonb datum.
    ///
    /// # Safety
    /// `d` must be a non-null jsonb datum.
    pub(crate) unsafe fn from_datum(d: pg_sys::Datum) -> Val {
        Val::from_container(Container::from_datum(d))
    }

    pub(crate) fn write_json(&self, out: &mut String) {
        match self {
            Val::Null => out.push_str("null"),
            Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Val::Num(n) => {
                let _ = write!(out, "{n}");
            }
            Val::Str(s) => crate::pg::json_text::write_string(s, out),
            Val::Arr(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_json(out);
                }
                out.push(']');
            }
            Val::Obj(o) => {
                out.push('{');
                for (i, (k, v)) in o.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    crate::pg::json_text::write_string(k, out);
                    out.push(':');
                    v.write_json(out);
                }
                out.push('}');
            }
        }
    }

    /// The value as a jsonb datum, in the current memory context: built
    /// with PostgreSQL's own jsonb builder (it sorts and dedups keys as
    /// `jsonb_in` would), without going through text.
    pub(crate) fn to_jsonb(&self) -> pg_sys::Datum {
        let mut state: *mut pg_sys::JsonbParseState = std::ptr::null_mut();
        // SAFETY: a new parse state; see push_into.
        unsafe { pg_sys::Datum::from(pg_sys::JsonbValueToJsonb(self.push_into(&mut state, None))) }
    }

    /// Pushes the value into a jsonb being built: `seq` is WJB_ELEM or
    /// WJB_VALUE inside a container, `None` for the root (a scalar root is
    /// wrapped as jsonb wants it). Returns what the last push returned.
    ///
    /// # Safety
    /// The parse state and every value handed to pushJsonbValue are palloc'd
    /// in the current context and live until the jsonb is built; token
    /// sequences are balanced by construction.
    pub(crate) unsafe fn push_into(
        &self,
        state: &mut *mut pg_sys::JsonbParseState,
        seq: Option<pg_sys::JsonbIteratorToken::Type>,
    ) -> *mut pg_sys::JsonbValue {
        if seq.is_some() {
            return self.push(state, seq);
        }
        match self {
            Val::Arr(_) | Val::Obj(_) => self.push(state, None),
            scalar => {
                // a scalar root is an array of one element flagged as raw
                let mut begin: pg_sys::JsonbValue = std::mem::zeroed();
                begin.type_ = pg_sys::jbvType::jbvArray;
                begin.val.array.rawScalar = true;
                pg_sys::pushJsonbValue(
                    state,
                    pg_sys::JsonbIteratorToken::WJB_BEGIN_ARRAY,
                    &mut begin,
                );
                scalar.push(state, Some(pg_sys::JsonbIteratorToken::WJB_ELEM));
                pg_sys::pushJsonbValue(
                    state,
                    pg_sys::JsonbIteratorToken::WJB_END_ARRAY,
                    std::ptr::null_mut(),
                )
            }
        }
    }

    /// Pushes the value; `seq` is WJB_ELEM / WJB_VALUE inside a container,
    /// `None` at the root. Returns what the last push returned.
    ///
    /// # Safety
    /// `state` is a parse state in the making (or null at the root).
    unsafe fn push(
        &self,
        state: &mut *mut pg_sys::JsonbParseState,
        seq: Option<pg_sys::JsonbIteratorToken::Type>,
    ) -> *mut pg_sys::JsonbValue {
        use pg_sys::JsonbIteratorToken::*;
        match self {
            Val::Arr(a) => {
                pg_sys::pushJsonbValue(state, WJB_BEGIN_ARRAY, std::ptr::null_mut());
                for v in a {
                    v.push(state, Some(WJB_ELEM));
                }
                pg_sys::pushJsonbValue(state, WJB_END_ARRAY, std::ptr::null_mut())
            }
            Val::Obj(o) => {
                pg_sys::pushJsonbValue(state, WJB_BEGIN_OBJECT, std::ptr::null_mut());
                for (k, v) in o {
                    let mut key = string_value(k);
                    pg_sys::pushJsonbValue(state, WJB_KEY, &mut key);
                    v.push(state, Some(WJB_VALUE));
                }
                pg_sys::pushJsonbValue(state, WJB_END_OBJECT, std::ptr::null_mut())
            }
            scalar => {
                let mut v: pg_sys::JsonbValue = std::mem::zeroed();
                match scalar {
                    Val::Null => v.type_ = pg_sys::jbvType::jbvNull,
                    Val::Bool(b) => {
                        v.type_ = pg_sys::jbvType::jbvBool;
                        v.val.boolean = *b;
                    }
                    Val::Num(n) => {
                        v.type_ = pg_sys::jbvType::jbvNumeric;
                        v.val.numeric = numeric(n);
                    }
                    Val::Str(s) => v = string_value(s),
                    _ => unreachable!("containers are pushed above"),
                }
                pg_sys::pushJsonbValue(state, seq.unwrap_or(WJB_ELEM), &mut v)
            }
        }
    }
}

/// A jbvString pointing at `s` itself: pushJsonbValue keeps the pointer, so
/// `s` must live until the jsonb is built (JsonbValueToJsonb copies it).
pub(crate) fn borrowed_string_value(s: &str) -> pg_sys::JsonbValue {
    // SAFETY: an all-zero JsonbValue is a valid value of the C struct; the fields set
    // below make it a jbvString.
    let mut v: pg_sys::JsonbValue = unsafe { std::mem::zeroed() };
    v.type_ = pg_sys::jbvType::jbvString;
    v.val.string.val = s.as_ptr() as *mut std::ffi::c_char;
    v.val.string.len = s.len() as i32;
    v
}

/// A jbvString over a palloc'd copy of `s`.
///
/// # Safety
/// Called inside a transaction (palloc).
pub(crate) unsafe fn string_value(s: &str) -> pg_sys::JsonbValue {
    let mut v: pg_sys::JsonbValue = std::mem::zeroed();
    v.type_ = pg_sys::jbvType::jbvString;
    let p = pg_sys::palloc(s.len().max(1)) as *mut u8;
    std::ptr::copy_nonoverlapping(s.as_ptr(), p, s.len());
    v.val.string.val = p as *mut std::ffi::c_char;
    v.val.string.len = s.len() as i32;
    v
}

/// A numeric for `n` (integers without text; others through numeric_in).
///
/// # Safety
/// Called inside a transaction (palloc).
unsafe fn numeric(n: &crate::pg::decimal::Num) -> pg_sys::Numeric {
    if let crate::pg::decimal::Num::Dec { m, scale: 0 } = n {
        if let Ok(i) = i64::try_from(*m) {
            return pg_sys::int64_to_numeric(i);
        }
    }
    let text = std::ffi::CString::new(n.to_string()).expect("a number's text has no NUL");
    pgrx::fcinfo::direct_function_call_as_datum(
        pg_sys::numeric_in,
        &[
            Some(pg_sys::Datum::from(text.as_ptr())),
            Some(pg_sys::Datum::from(pg_sys::InvalidOid)),
            Some(pg_sys::Datum::from(-1i32)),
        ],
    )
    .expect("numeric_in returns a value")
    .cast_mut_ptr()
}

fn push_into(stack: &mut [Val], keys: &mut [Option<String>], item: Val) {
    match stack.last_mut() {
        Some(Val::Arr(a)) => a.push(item),
        Some(Val::Obj(o)) => {
            let k = keys
                .last_mut()
                .and_then(|k| k.take())
                .expect("value after key");
            o.push((k, item));
        }
        _ => {}
    }
}
