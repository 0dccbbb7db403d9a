//! Reading jsonb in its binary form, without converting it to text.

use pgrx::pg_sys;

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

    /// As `from_datum`, without a call into PostgreSQL for a value stored
    /// plainly: one with a 4-byte header is read in place, one with a short
    /// (1-byte) header is copied into `scratch` (aligned, as jsonb must be).
    /// Only a compressed or external value is detoasted by PostgreSQL.
    ///
    /// # Safety
    /// `d` must be a non-null jsonb datum. The container points into the
    /// datum or into `scratch`, and is valid until either changes.
    pub(crate) unsafe fn from_datum_scratch(d: pg_sys::Datum, scratch: &mut Vec<u64>) -> Container {
        use crate::pg::fmgr::{stored, Stored};
        let p = d.cast_mut_ptr::<u8>();
        match stored(p) {
            // stored int-aligned (jsonb's typalign)
            Stored::Plain(_) => Container(p.add(pg_sys::VARHDRSZ) as *mut pg_sys::JsonbContainer),
            Stored::Short(total) => {
                let len = total - 1;
                let words = (pg_sys::VARHDRSZ + len).div_ceil(8);
                if scratch.len() < words {
                    scratch.resize(words, 0);
                }
                let dst = (scratch.as_mut_ptr() as *mut u8).add(pg_sys::VARHDRSZ);
                std::ptr::copy_nonoverlapping(p.add(1), dst, len);
                Container(dst as *mut pg_sys::JsonbContainer)
            }
            Stored::Other => Self::from_datum(d),
        }
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

    /// The value under `key` of an object (`None` for arrays and scalars):
    /// a binary search over the keys, read straight from the container's
    /// entries (jsonb sorts them by length, then bytes), as PostgreSQL's
    /// `getKeyJsonValueFromContainer` does, without a guarded call into it.
    pub(crate) fn get(&self, key: &str) -> Option<Value> {
        if !self.is_object() {
            return None;
        }
        let n = self.len() as usize;
        let key = key.as_bytes();
        // SAFETY: the layout of a jsonb container (see `children`); every index read is
        // below 2n; the container is detoasted and outlives the value returned.
        unsafe {
            let entries = (self.0 as *const u32).add(1);
            let base = entries.add(2 * n) as *const u8;
            let (mut lo, mut hi) = (0usize, n);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                let (start, len) = span(entries, mid);
                let k = std::slice::from_raw_parts(base.add(start), len);
                match len.cmp(&key.len()).then_with(|| k.cmp(key)) {
                    std::cmp::Ordering::Less => lo = mid + 1,
                    std::cmp::Ordering::Greater => hi = mid,
                    std::cmp::Ordering::Equal => {
                        let (start, len) = span(entries, n + mid);
                        return Some(value_at(
                            base,
                            entries.add(n + mid).read_unaligned(),
                            start,
                            len,
                        ));
                    }
                }
            }
            None
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
        let all = self.children(2 * n);
        let (keys, values) = all.split_at(n);
        keys.iter()
            .zip(values)
            .map(|(k, v)| {
                // SAFETY: a key is a jbvString pointing into the container (children()); its
                // bytes are text of the database's encoding, read as before without a check.
                let key = unsafe {
                    let s = k.0.val.string;
                    std::str::from_utf8_unchecked(std::slice::from_raw_parts(
                        s.val as *const u8,
                        s.len as usize,
                    ))
                };
                (key, *v)
            })
            .collect()
    }

    /// The elements of an array, in order, read as `pairs` reads an object's.
    pub(crate) fn elements(&self) -> Vec<Value> {
        if !self.is_array() {
            return Vec::new();
        }
        self.children(self.len() as usize)
    }

    /// The container's first `count` children (an array's elements; an
    /// object's keys, then its values), one pass over the entries.
    fn children(&self, count: usize) -> Vec<Value> {
        // SAFETY: the layout of a jsonb container (PostgreSQL's jsonb.h): a 4-byte header,
        // one JEntry per child (an object has 2n: keys, then values), then the data, whose
        // offsets the JEntries give (a length, or every JB_OFFSET_STRIDE-th time the end
        // offset); the container is detoasted and outlives the values that point into it.
        unsafe {
            let entries = (self.0 as *const u32).add(1);
            let total = if self.is_object() {
                2 * self.len() as usize
            } else {
                self.len() as usize
            };
            let base = entries.add(total) as *const u8;
            let mut out = Vec::with_capacity(count);
            let mut start = 0usize;
            for i in 0..count {
                let e = entries.add(i).read_unaligned();
                let field = (e & pg_sys::JENTRY_OFFLENMASK) as usize;
                let end = if e & pg_sys::JENTRY_HAS_OFF != 0 {
                    field
                } else {
                    start + field
                };
                let len = end - start;
                out.push(value_at(base, e, start, len));
                start = end;
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

/// Where child `i` of a container starts and how long it is (its entries at
/// `entries`, its data following them): the lengths of the children before
/// it, back to one whose entry holds its end offset (every
/// JB_OFFSET_STRIDE-th does).
///
/// # Safety
/// `entries` points to a container's JEntry array with more than `i` entries.
unsafe fn span(entries: *const u32, i: usize) -> (usize, usize) {
    let mut start = 0usize;
    let mut j = i;
    while j > 0 {
        j -= 1;
        let e = entries.add(j).read_unaligned();
        start += (e & pg_sys::JENTRY_OFFLENMASK) as usize;
        if e & pg_sys::JENTRY_HAS_OFF != 0 {
            break;
        }
    }
    let e = entries.add(i).read_unaligned();
    let field = (e & pg_sys::JENTRY_OFFLENMASK) as usize;
    let len = if e & pg_sys::JENTRY_HAS_OFF != 0 {
        field - start
    } else {
        field
    };
    (start, len)
}

/// The value of a child whose entry is `e`, at `start` (for `len` bytes) in
/// the data at `base`.
///
/// # Safety
/// `base`, `start` and `len` describe the child's bytes inside a live container.
unsafe fn value_at(base: *const u8, e: u32, start: usize, len: usize) -> Value {
    let mut v: pg_sys::JsonbValue = std::mem::zeroed();
    // INTALIGN: numerics and containers start at 4-byte boundaries
    let aligned = (start + 3) & !3;
    match e & pg_sys::JENTRY_TYPEMASK {
        pg_sys::JENTRY_ISSTRING => {
            v.type_ = pg_sys::jbvType::jbvString;
            v.val.string.val = base.add(start) as *mut std::ffi::c_char;
            v.val.string.len = len as i32;
        }
        pg_sys::JENTRY_ISNUMERIC => {
            v.type_ = pg_sys::jbvType::jbvNumeric;
            v.val.numeric = base.add(aligned) as pg_sys::Numeric;
        }
        t @ (pg_sys::JENTRY_ISBOOL_FALSE | pg_sys::JENTRY_ISBOOL_TRUE) => {
            v.type_ = pg_sys::jbvType::jbvBool;
            v.val.boolean = t == pg_sys::JENTRY_ISBOOL_TRUE;
        }
        pg_sys::JENTRY_ISNULL => v.type_ = pg_sys::jbvType::jbvNull,
        _ => {
            v.type_ = pg_sys::jbvType::jbvBinary;
            v.val.binary.data = base.add(aligned) as *mut pg_sys::JsonbContainer;
            v.val.binary.len = (len - (aligned - start)) as i32;
        }
    }
    Value(v)
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
