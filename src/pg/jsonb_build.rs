//! Writing jsonb's binary form directly, byte for byte what PostgreSQL's own
//! builder (`pushJsonbValue` + `JsonbValueToJsonb`) writes for the same
//! value, without a call into PostgreSQL per value: keys sorted by length
//! then bytes, a duplicate key's last value kept, an offset instead of a
//! length in every 32nd entry, numerics and containers aligned to 4 bytes.
//! Values read out of another jsonb are copied as they are (a nested
//! container is position independent once aligned).
//!
//! The layout is PostgreSQL's (`src/include/utils/jsonb.h`,
//! `convertJsonbValue` in `jsonb_util.c`); a test compares the bytes with
//! `jsonb_in`'s for many shapes.

use crate::pg::error::fail;
use pgrx::pg_sys;
use pgrx::PgSqlErrorCode;

/// Something that can be written as one jsonb value.
pub(crate) trait JsonbWrite {
    /// Appends the value's bytes; returns its JEntry (type bits and length,
    /// padding included).
    fn write(&self, w: &mut Writer) -> u32;

    /// Whether this is an object or an array (a scalar at the root is
    /// wrapped in a one-element array, as jsonb wants it).
    fn is_container(&self) -> bool;
}

/// A jsonb being written: the varlena header first, the root container next.
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn new() -> Writer {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&[0; 4]);
        Writer { buf }
    }

    /// Pads to a 4-byte boundary (from the varlena's start, as PostgreSQL
    /// does); returns the bytes added.
    fn pad(&mut self) -> u32 {
        let pad = (4 - self.buf.len() % 4) % 4;
        self.buf.extend_from_slice(&[0u8; 3][..pad]);
        pad as u32
    }

    fn put_u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_ne_bytes());
    }

    fn set_u32(&mut self, at: usize, v: u32) {
        self.buf[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    }

    pub(crate) fn null(&mut self) -> u32 {
        pg_sys::JENTRY_ISNULL
    }

    pub(crate) fn bool(&mut self, b: bool) -> u32 {
        if b {
            pg_sys::JENTRY_ISBOOL_TRUE
        } else {
            pg_sys::JENTRY_ISBOOL_FALSE
        }
    }

    pub(crate) fn string(&mut self, s: &[u8]) -> u32 {
        check_len(s.len());
        self.buf.extend_from_slice(s);
        s.len() as u32
    }

    /// # Safety
    /// `n` points to a valid numeric varlena.
    pub(crate) unsafe fn numeric(&mut self, n: pg_sys::Numeric) -> u32 {
        let len = pgrx::varsize_any(n as *const pg_sys::varlena);
        let pad = self.pad();
        self.buf
            .extend_from_slice(std::slice::from_raw_parts(n as *const u8, len));
        check_len(len);
        pg_sys::JENTRY_ISNUMERIC | (pad + len as u32)
    }

    /// A value read out of a jsonb (a scalar, or a container in binary form).
    ///
    /// # Safety
    /// `v` is a scalar or jbvBinary value whose pointers are valid.
    pub(crate) unsafe fn stored(&mut self, v: &pg_sys::JsonbValue) -> u32 {
        match v.type_ {
            pg_sys::jbvType::jbvNull => self.null(),
            pg_sys::jbvType::jbvBool => self.bool(v.val.boolean),
            pg_sys::jbvType::jbvString => self.string(std::slice::from_raw_parts(
                v.val.string.val as *const u8,
                v.val.string.len as usize,
            )),
            pg_sys::jbvType::jbvNumeric => self.numeric(v.val.numeric),
            pg_sys::jbvType::jbvBinary => {
                let pad = self.pad();
                let len = v.val.binary.len as usize;
                self.buf.extend_from_slice(std::slice::from_raw_parts(
                    v.val.binary.data as *const u8,
                    len,
                ));
                check_len(len);
                pg_sys::JENTRY_ISCONTAINER | (pad + len as u32)
            }
            other => pgrx::error!("jsonb value of unexpected type {other} in a container"),
        }
    }

    /// An object of `pairs` (keys sorted here; the last of equal keys wins).
    pub(crate) fn object(&mut self, pairs: &[(&[u8], &dyn JsonbWrite)]) -> u32 {
        // sorted by (length, bytes), equal keys latest first; dedup keeps the first
        let mut order: Vec<usize> = (0..pairs.len()).collect();
        order.sort_by(|&a, &b| {
            let (ka, kb) = (pairs[a].0, pairs[b].0);
            ka.len()
                .cmp(&kb.len())
                .then_with(|| ka.cmp(kb))
                .then_with(|| b.cmp(&a))
        });
        order.dedup_by(|later, first| pairs[*later].0 == pairs[*first].0);
        let n = order.len();
        let start = self.buf.len();
        self.pad();
        self.put_u32(n as u32 | pg_sys::JB_FOBJECT);
        let entries = self.buf.len();
        self.buf.resize(entries + 8 * n, 0);
        let mut total = 0u32;
        for (i, &p) in order.iter().enumerate() {
            let meta = self.string(pairs[p].0);
            total = self.entry(entries, i, meta, total);
        }
        for (i, &p) in order.iter().enumerate() {
            let meta = pairs[p].1.write(self);
            total = self.entry(entries, n + i, meta, total);
        }
        pg_sys::JENTRY_ISCONTAINER | self.container_len(start)
    }

    /// An array of `items`, in order.
    pub(crate) fn array(&mut self, items: &[&dyn JsonbWrite]) -> u32 {
        self.array_flagged(items, 0)
    }

    fn array_flagged(&mut self, items: &[&dyn JsonbWrite], flags: u32) -> u32 {
        let n = items.len();
        let start = self.buf.len();
        self.pad();
        self.put_u32(n as u32 | pg_sys::JB_FARRAY | flags);
        let entries = self.buf.len();
        self.buf.resize(entries + 4 * n, 0);
        let mut total = 0u32;
        for (i, item) in items.iter().enumerate() {
            let meta = item.write(self);
            total = self.entry(entries, i, meta, total);
        }
        pg_sys::JENTRY_ISCONTAINER | self.container_len(start)
    }

    /// Stores child `i`'s JEntry: its length, or every 32nd time the end
    /// offset of all children so far.
    fn entry(&mut self, entries: usize, i: usize, meta: u32, total: u32) -> u32 {
        let total = total as usize + (meta & pg_sys::JENTRY_OFFLENMASK) as usize;
        check_len(total);
        let meta = if i.is_multiple_of(pg_sys::JB_OFFSET_STRIDE as usize) {
            (meta & pg_sys::JENTRY_TYPEMASK) | total as u32 | pg_sys::JENTRY_HAS_OFF
        } else {
            meta
        };
        self.set_u32(entries + 4 * i, meta);
        total as u32
    }

    fn container_len(&self, start: usize) -> u32 {
        let len = self.buf.len() - start;
        check_len(len);
        len as u32
    }
}

fn check_len(len: usize) {
    if len > pg_sys::JENTRY_OFFLENMASK as usize {
        fail(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!(
                "total size of jsonb elements exceeds the maximum of {} bytes",
                pg_sys::JENTRY_OFFLENMASK
            ),
        );
    }
}

/// `v` as a jsonb datum, palloc'd in the current memory context.
pub(crate) fn to_datum(v: &dyn JsonbWrite) -> pg_sys::Datum {
    let mut w = Writer::new();
    if v.is_container() {
        v.write(&mut w);
    } else {
        w.array_flagged(&[v], pg_sys::JB_FSCALAR);
    }
    let len = w.buf.len();
    // SAFETY: a fresh palloc of `len` bytes (in the current context, inside a
    // transaction), filled with the bytes written; the first 4 are the varlena header.
    unsafe {
        let p = pg_sys::palloc(len) as *mut u8;
        std::ptr::copy_nonoverlapping(w.buf.as_ptr(), p, len);
        pgrx::set_varsize_4b(p as *mut pg_sys::varlena, len as i32);
        pg_sys::Datum::from(p)
    }
}
