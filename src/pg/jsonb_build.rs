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
use smallvec::SmallVec;

/// Something that can be written as one jsonb value.
pub(crate) trait JsonbWrite {
    /// Appends the value's bytes; returns its JEntry (type bits and length,
    /// padding included).
    fn write(&self, w: &mut Writer) -> u32;

    /// Whether this is an object or an array (a scalar at the root is
    /// wrapped in a one-element array, as jsonb wants it).
    fn is_container(&self) -> bool;
}

/// Room for an object's members on the stack while it is written (more
/// spill to the heap).
pub(crate) type Pairs<'a> = SmallVec<[(&'a [u8], &'a dyn JsonbWrite); 8]>;

/// A jsonb being written into palloc'd memory (the current context), which
/// becomes the datum: the varlena header first, the root container next.
pub(crate) struct Writer {
    buf: *mut u8,
    len: usize,
    cap: usize,
}

impl Writer {
    /// A writer with room for `hint` bytes (at least 256): a large state
    /// is then written without a copy per doubling of the buffer.
    fn new(hint: usize) -> Writer {
        // a jsonb stops at 256 MB (JENTRY_OFFLENMASK), below palloc's limit of 1 GB
        let cap = hint.clamp(256, 0x1000_0000);
        // SAFETY: palloc in the current context, inside a transaction.
        let buf = unsafe { pg_sys::palloc(cap) as *mut u8 };
        Writer { buf, len: 4, cap }
    }

    /// Makes room for `n` more bytes.
    #[inline]
    fn grow(&mut self, n: usize) {
        if self.len + n > self.cap {
            let cap = (self.cap * 2).max(self.len + n);
            // SAFETY: `buf` was palloc'd by `new` (or grown here); repalloc keeps its bytes.
            self.buf =
                unsafe { pg_sys::repalloc(self.buf as *mut std::ffi::c_void, cap) as *mut u8 };
            self.cap = cap;
        }
    }

    #[inline]
    fn append(&mut self, bytes: &[u8]) {
        self.grow(bytes.len());
        // SAFETY: room for `bytes` was made above; the source never overlaps the buffer
        // (values are copied out of other datums).
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.buf.add(self.len), bytes.len())
        };
        self.len += bytes.len();
    }

    /// Pads to a 4-byte boundary (from the varlena's start, as PostgreSQL
    /// does); returns the bytes added.
    fn pad(&mut self) -> u32 {
        let pad = (4 - self.len % 4) % 4;
        self.append(&[0u8; 3][..pad]);
        pad as u32
    }

    fn put_u32(&mut self, v: u32) {
        self.append(&v.to_ne_bytes());
    }

    /// Reserves `n` zeroed bytes (filled later by `set_u32`); returns where.
    fn reserve(&mut self, n: usize) -> usize {
        self.grow(n);
        let at = self.len;
        // SAFETY: room for `n` bytes was made above.
        unsafe { std::ptr::write_bytes(self.buf.add(at), 0, n) };
        self.len += n;
        at
    }

    fn set_u32(&mut self, at: usize, v: u32) {
        assert!(at + 4 <= self.len);
        // SAFETY: inside the written part of the buffer (asserted).
        unsafe { (self.buf.add(at) as *mut [u8; 4]).write_unaligned(v.to_ne_bytes()) };
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
        self.append(s);
        s.len() as u32
    }

    /// # Safety
    /// `n` points to a valid numeric varlena.
    pub(crate) unsafe fn numeric(&mut self, n: pg_sys::Numeric) -> u32 {
        let len = pgrx::varsize_any(n as *const pg_sys::varlena);
        let pad = self.pad();
        self.append(std::slice::from_raw_parts(n as *const u8, len));
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
            pg_sys::jbvType::jbvBinary => self.container_bytes(std::slice::from_raw_parts(
                v.val.binary.data as *const u8,
                v.val.binary.len as usize,
            )),
            other => pgrx::error!("jsonb value of unexpected type {other} in a container"),
        }
    }

    /// A container in binary form, copied as it is (aligned first: its
    /// nested containers' padding counts from a 4-byte boundary).
    pub(crate) fn container_bytes(&mut self, bytes: &[u8]) -> u32 {
        let pad = self.pad();
        self.append(bytes);
        check_len(bytes.len());
        pg_sys::JENTRY_ISCONTAINER | (pad + bytes.len() as u32)
    }

    /// An object of `pairs` (sorted here; the last of equal keys wins).
    pub(crate) fn object(&mut self, pairs: &mut [(&[u8], &dyn JsonbWrite)]) -> u32 {
        // by (length, bytes), as jsonb orders keys; stable, so equal keys stay in
        // the order given and the last one's value is kept
        pairs.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then_with(|| a.0.cmp(b.0)));
        let mut n = 0;
        for i in 0..pairs.len() {
            if n > 0 && pairs[n - 1].0 == pairs[i].0 {
                pairs[n - 1] = pairs[i];
            } else {
                pairs[n] = pairs[i];
                n += 1;
            }
        }
        let pairs = &pairs[..n];
        let n = pairs.len();
        let start = self.len;
        self.pad();
        self.put_u32(n as u32 | pg_sys::JB_FOBJECT);
        let entries = self.reserve(8 * n);
        let mut total = 0u32;
        for (i, (k, _)) in pairs.iter().enumerate() {
            let meta = self.string(k);
            total = self.entry(entries, i, meta, total);
        }
        for (i, (_, v)) in pairs.iter().enumerate() {
            let meta = v.write(self);
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
        let start = self.len;
        self.pad();
        self.put_u32(n as u32 | pg_sys::JB_FARRAY | flags);
        let entries = self.reserve(4 * n);
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
        let len = self.len - start;
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
    to_datum_sized(v, 0)
}

/// As `to_datum`, with room made for about `hint` bytes first.
pub(crate) fn to_datum_sized(v: &dyn JsonbWrite, hint: usize) -> pg_sys::Datum {
    let mut w = Writer::new(hint + 16);
    if v.is_container() {
        v.write(&mut w);
    } else {
        w.array_flagged(&[v], pg_sys::JB_FSCALAR);
    }
    // SAFETY: the buffer is palloc'd, at least 4 bytes, and `len` bytes are written; its
    // first 4 are the varlena header.
    unsafe { pgrx::set_varsize_4b(w.buf as *mut pg_sys::varlena, w.len as i32) };
    pg_sys::Datum::from(w.buf)
}

/// A value read out of a jsonb, written as a jsonb of its own.
struct Stored<'a>(&'a pg_sys::JsonbValue);

impl JsonbWrite for Stored<'_> {
    fn write(&self, w: &mut Writer) -> u32 {
        // SAFETY: a value read out of a jsonb that outlives this call (`value_datum`'s contract).
        unsafe { w.stored(self.0) }
    }

    fn is_container(&self) -> bool {
        self.0.type_ == pg_sys::jbvType::jbvBinary
    }
}

/// `v`, a value read out of a jsonb that is still alive, as a jsonb datum of
/// its own (in the current memory context).
pub(crate) fn value_datum(v: &pg_sys::JsonbValue) -> pg_sys::Datum {
    to_datum(&Stored(v))
}
