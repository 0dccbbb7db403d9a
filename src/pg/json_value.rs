//! The state native reducers work on: a JSON value held in Rust, read from
//! jsonb's binary form and written back to jsonb once, at the end of a fold.
//!
//! A state read from a snapshot is read lazily: its containers stay in the
//! snapshot's bytes (`Val::Raw`) until a step changes something inside one,
//! which then opens that one level only (`Val::open`), and unchanged ones are
//! written back by copying their bytes. So a load or a snapshot of a large
//! state costs a copy of it, not a parse and a rebuild of every value, and
//! appending to a long list touches only the list's entries.

use crate::pg::decimal::Num;
use crate::pg::jsonb::{Container, Value};
use crate::pg::jsonb_build::{JsonbWrite, Pairs, Writer};
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
    /// An object or array not read yet: its bytes in a stored jsonb.
    Raw(Raw),
}

/// An object or array in jsonb's binary form, inside memory that outlives
/// every `Val` holding it (see `Val::lazy_from_datum`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Raw {
    data: *const u8,
    len: u32,
}

impl Raw {
    fn bytes(&self) -> &[u8] {
        // SAFETY: `data` and `len` describe a container inside memory that outlives this
        // value (`Val::lazy_from_datum`'s contract).
        unsafe { std::slice::from_raw_parts(self.data, self.len as usize) }
    }

    pub(crate) fn container(&self) -> Container {
        Container::raw(self.data as *mut pg_sys::JsonbContainer)
    }
}

/// Equal bytes, equal values (not the converse: a value read and one not
/// read yet compare unequal; only tests compare states).
impl PartialEq for Raw {
    fn eq(&self, other: &Raw) -> bool {
        self.bytes() == other.bytes()
    }
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

    /// Converts a jsonb datum.
    ///
    /// # Safety
    /// `d` must be a non-null jsonb datum.
    pub(crate) unsafe fn from_datum(d: pg_sys::Datum) -> Val {
        Val::from_container(Container::from_datum(d))
    }

    /// A jsonb datum as a value not read yet (a scalar root is read).
    ///
    /// # Safety
    /// `d` must be a non-null, detoasted jsonb datum that outlives the value
    /// and every value taken out of it.
    pub(crate) unsafe fn lazy_from_datum(d: pg_sys::Datum) -> Val {
        // a no-op for a detoasted datum with a 4-byte header (which
        // pg_detoast_datum_copy makes); otherwise a copy in the current context
        let v = pg_sys::pg_detoast_datum(d.cast_mut_ptr());
        let c = Container::raw((v as *mut u8).add(pg_sys::VARHDRSZ) as *mut pg_sys::JsonbContainer);
        if !c.is_object() && !c.is_array() {
            return Val::from_container(c);
        }
        Val::Raw(Raw {
            data: c.as_ptr() as *const u8,
            len: pgrx::varsize_any_exhdr(v) as u32,
        })
    }

    /// One value of a container, its nested containers left unread.
    fn shallow(v: &Value) -> Val {
        // SAFETY: the union member read is the one the value's type tag names.
        unsafe {
            if v.0.type_ == pg_sys::jbvType::jbvBinary {
                let b = v.0.val.binary;
                Val::Raw(Raw {
                    data: b.data as *const u8,
                    len: b.len as u32,
                })
            } else {
                Val::from_jsonb_value(v)
            }
        }
    }

    /// Reads one level of a value not read yet (its nested containers stay
    /// unread); any other value is left as it is.
    #[inline]
    pub(crate) fn open(&mut self) {
        if let Val::Raw(r) = *self {
            self.open_raw(r);
        }
    }

    #[inline(never)]
    fn open_raw(&mut self, r: Raw) {
        let c = r.container();
        *self = if c.is_object() {
            Val::Obj(
                c.pairs()
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), Val::shallow(v)))
                    .collect(),
            )
        } else {
            Val::Arr(c.elements().iter().map(Val::shallow).collect())
        };
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
            Val::Raw(r) => Val::from_container(r.container()).write_json(out),
        }
    }

    /// The value as a jsonb datum, in the current memory context: the
    /// bytes `jsonb_in` would make of it (keys sorted, the last of equal
    /// keys kept), written directly (`pg::jsonb_build`).
    pub(crate) fn to_jsonb(&self) -> pg_sys::Datum {
        crate::pg::jsonb_build::to_datum_sized(self, self.size_hint())
    }

    /// About the bytes the value takes as jsonb (exact for parts not read).
    fn size_hint(&self) -> usize {
        match self {
            Val::Null | Val::Bool(_) => 4,
            Val::Num(_) => 16,
            Val::Str(s) => s.len() + 4,
            Val::Arr(a) => 8 + a.iter().map(Val::size_hint).sum::<usize>(),
            Val::Obj(o) => {
                8 + o
                    .iter()
                    .map(|(k, v)| k.len() + 4 + v.size_hint())
                    .sum::<usize>()
            }
            Val::Raw(r) => r.len as usize + 8,
        }
    }
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

impl JsonbWrite for Val {
    fn write(&self, w: &mut Writer) -> u32 {
        match self {
            Val::Null => w.null(),
            Val::Bool(b) => w.bool(*b),
            // SAFETY: `numeric` returns a valid palloc'd numeric.
            Val::Num(n) => unsafe { w.numeric(numeric(n)) },
            Val::Str(s) => w.string(s.as_bytes()),
            Val::Arr(a) => {
                let items: Vec<&dyn JsonbWrite> = a.iter().map(|v| v as &dyn JsonbWrite).collect();
                w.array(&items)
            }
            Val::Obj(o) => {
                let mut pairs: Pairs = o
                    .iter()
                    .map(|(k, v)| (k.as_bytes(), v as &dyn JsonbWrite))
                    .collect();
                w.object(&mut pairs)
            }
            Val::Raw(r) => w.container_bytes(r.bytes()),
        }
    }

    fn is_container(&self) -> bool {
        matches!(self, Val::Arr(_) | Val::Obj(_) | Val::Raw(_))
    }
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
