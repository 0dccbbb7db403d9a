//! Reading jsonb in its binary form, without converting it to text.

use pgrx::pg_sys;
use std::mem::MaybeUninit;

/// A jsonb container (an object, an array, or a scalar wrapped in an array).
#[derive(Clone, Copy)]
pub(crate) struct Container(*mut pg_sys::JsonbContainer);

/// One value taken out of a container.
#[derive(Clone, Copy)]
pub(crate) struct Value(pub pg_sys::JsonbValue);

impl Container {
    /// # Safety
    /// `d` must be a non-null jsonb datum; the detoasted copy lives in the
    /// current memory context.
    pub(crate) unsafe fn from_datum(d: pg_sys::Datum) -> Container {
        let v = pg_sys::pg_detoast_datum(d.cast_mut_ptr());
        Container((v as *mut u8).add(pg_sys::VARHDRSZ) as *mut pg_sys::JsonbContainer)
    }

    /// A container pointer taken from a `JsonbValue` of type jbvBinary.
    pub(crate) fn raw(p: *mut pg_sys::JsonbContainer) -> Container {
        Container(p)
    }

    pub(crate) fn as_ptr(&self) -> *mut pg_sys::JsonbContainer {
        self.0
    }

    /// Follows a path of object keys; `None` when a key is missing or a
    /// step is not an object.
    pub(crate) fn path(&self, keys: &[String]) -> Option<Value> {
        let (last, init) = keys.split_last()?;
        let mut c = *self;
        for k in init {
            c = c.get(k)?.container()?;
        }
        c.get(last)
    }

    fn header(&self) -> u32 {
        // SAFETY: a container starts with its 4-byte header.
        unsafe { *(self.0 as *const u32) }
    }

    pub(crate) fn is_object(&self) -> bool {
        self.header() & pg_sys::JB_FOBJECT != 0
    }

    pub(crate) fn is_array(&self) -> bool {
        let h = self.header();
        h & pg_sys::JB_FARRAY != 0 && h & pg_sys::JB_FSCALAR == 0
    }

    /// Elements of an array, or pairs of an object.
    pub(crate) fn len(&self) -> u32 {
        self.header() & pg_sys::JB_CMASK
    }

    /// The value under `key` of an object (`None` for arrays and scalars).
    pub(crate) fn get(&self, key: &str) -> Option<Value> {
        if !self.is_object() {
            return None;
        }
        let mut res = MaybeUninit::<pg_sys::JsonbValue>::uninit();
        // SAFETY: `self.0` is a valid container; the key is passed with its length, no NUL
        // needed.
        unsafe {
            let found = pg_sys::getKeyJsonValueFromContainer(
                self.0,
                key.as_ptr() as *const std::ffi::c_char,
                key.len() as i32,
                res.as_mut_ptr(),
            );
            if found.is_null() {
                None
            } else {
                Some(Value(res.assume_init()))
            }
        }
    }

    /// The key and value of every pair of an object, in stored order, read
    /// straight from the container's entries (what PostgreSQL's iterator
    /// gives with skipNested, without a call into PostgreSQL per pair).
    /// Nested containers come back as jbvBinary values pointing into `self`.
    pub(crate) fn pairs(&self) -> Vec<(&str, Value)> {
        if !self.is_object() {
            return Vec::new();
        }
        let n = self.len() as usize;
        // SAFETY: the layout of a jsonb container (PostgreSQL's jsonb.h): a 4-byte header,
        // 2n JEntries (keys, then values), then the data, whose offsets the JEntries give;
        // the container is detoasted and outlives the values that point into it.
        unsafe {
            let children = (self.0 as *const u32).add(1);
            let entry = |i: usize| children.add(i).read_unaligned();
            let base = children.add(2 * n) as *const u8;
            let offset = |i: usize| {
                let mut off = 0u32;
                for j in (0..i).rev() {
                    let e = entry(j);
                    off += e & pg_sys::JENTRY_OFFLENMASK;
                    if e & pg_sys::JENTRY_HAS_OFF != 0 {
                        break;
                    }
                }
                off as usize
            };
            let length = |i: usize, off: usize| {
                let e = entry(i);
                let f = (e & pg_sys::JENTRY_OFFLENMASK) as usize;
                if e & pg_sys::JENTRY_HAS_OFF != 0 {
                    f - off
                } else {
                    f
                }
            };
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                let ko = offset(i);
                let kl = length(i, ko);
                let key =
                    std::str::from_utf8_unchecked(std::slice::from_raw_parts(base.add(ko), kl));
                let vi = n + i;
                let vo = offset(vi);
                let vl = length(vi, vo);
                let e = entry(vi) & pg_sys::JENTRY_TYPEMASK;
                let mut v: pg_sys::JsonbValue = std::mem::zeroed();
                // INTALIGN: numerics and containers start at 4-byte boundaries
                let aligned = (vo + 3) & !3;
                match e {
                    pg_sys::JENTRY_ISSTRING => {
                        v.type_ = pg_sys::jbvType::jbvString;
                        v.val.string.val = base.add(vo) as *mut std::ffi::c_char;
                        v.val.string.len = vl as i32;
                    }
                    pg_sys::JENTRY_ISNUMERIC => {
                        v.type_ = pg_sys::jbvType::jbvNumeric;
                        v.val.numeric = base.add(aligned) as pg_sys::Numeric;
                    }
                    pg_sys::JENTRY_ISBOOL_FALSE | pg_sys::JENTRY_ISBOOL_TRUE => {
                        v.type_ = pg_sys::jbvType::jbvBool;
                        v.val.boolean = e == pg_sys::JENTRY_ISBOOL_TRUE;
                    }
                    pg_sys::JENTRY_ISNULL => v.type_ = pg_sys::jbvType::jbvNull,
                    _ => {
                        v.type_ = pg_sys::jbvType::jbvBinary;
                        v.val.binary.data = base.add(aligned) as *mut pg_sys::JsonbContainer;
                        v.val.binary.len = (vl - (aligned - vo)) as i32;
                    }
                }
                out.push((key, Value(v)));
            }
            out
        }
    }

    /// The `i`-th element of an array.
    pub(crate) fn ith(&self, i: u32) -> Option<Value> {
        // SAFETY: `self.0` is a valid container; PostgreSQL returns a palloc'd value or NULL.
        unsafe {
            let v = pg_sys::getIthJsonbValueFromContainer(self.0, i);
            if v.is_null() {
                None
            } else {
                Some(Value(*v))
            }
        }
    }
}

impl Value {
    /// The string points into the container, which outlives this `Value`.
    pub(crate) fn as_str<'a>(&self) -> Option<&'a str> {
        if self.0.type_ != pg_sys::jbvType::jbvString {
            return None;
        }
        // SAFETY: a jbvString's pointer and length describe bytes inside the container, which
        // outlives the value.
        unsafe {
            let s = self.0.val.string;
            let bytes = std::slice::from_raw_parts(s.val as *const u8, s.len as usize);
            std::str::from_utf8(bytes).ok()
        }
    }

    /// The nested container of an object or array value.
    pub(crate) fn container(&self) -> Option<Container> {
        if self.0.type_ != pg_sys::jbvType::jbvBinary {
            return None;
        }
        // SAFETY: the union's `binary` member is the one a jbvBinary value carries.
        Some(Container(unsafe { self.0.val.binary.data }))
    }

    pub(crate) fn is_object(&self) -> bool {
        self.container().is_some_and(|c| c.is_object())
    }

    pub(crate) fn is_null(&self) -> bool {
        self.0.type_ == pg_sys::jbvType::jbvNull
    }

    /// Bytes the value takes in its binary form (strings and containers; other
    /// scalars are small and count as 0).
    pub(crate) fn byte_len(&self) -> usize {
        // SAFETY: the union member read is the one the value's type tag names.
        unsafe {
            match self.0.type_ {
                pg_sys::jbvType::jbvString => self.0.val.string.len as usize,
                pg_sys::jbvType::jbvBinary => self.0.val.binary.len as usize,
                _ => 0,
            }
        }
    }
}

/// Is this jsonb datum an object?
///
/// # Safety
/// `d` must be a non-null jsonb datum.
pub(crate) unsafe fn datum_is_object(d: pg_sys::Datum) -> bool {
    Container::from_datum(d).is_object()
}

/// Parses JSON text into a jsonb datum (in the current memory context).
pub(crate) fn from_text(s: &str) -> pg_sys::Datum {
    let c = std::ffi::CString::new(s).expect("JSON text has no NUL byte");
    // SAFETY: `c` is NUL-terminated and outlives the call to jsonb_in.
    unsafe {
        pgrx::fcinfo::direct_function_call_as_datum(
            pg_sys::jsonb_in,
            &[Some(pg_sys::Datum::from(c.as_ptr()))],
        )
        .expect("jsonb_in returns a value")
    }
}
