//! One `es.events` row as the folds see it: read straight out of the row's
//! composite datum, with `data` and `metadata` kept in jsonb's binary form.

use crate::pg::fmgr::text_datum_str;
use crate::pg::jsonb::Container;
use pgrx::pg_sys::{self, Datum};

pub(crate) struct Event<'a> {
    pub(crate) global_position: i64,
    pub(crate) stream_id: &'a str,
    pub(crate) stream_type: &'a str,
    pub(crate) version: i64,
    pub(crate) event_type: &'a str,
    pub(crate) data: Container,
    pub(crate) data_datum: Datum,
    /// Detoasted only when a step reads it.
    pub(crate) metadata_datum: Datum,
    pub(crate) event_id: Datum,
    pub(crate) recorded_at: Datum,
    /// The shape the data was written in (1 where the table has no such
    /// column yet: an extension not updated).
    pub(crate) schema_version: i32,
}

impl Event<'_> {
    pub(crate) fn metadata(&self) -> Container {
        // SAFETY: `metadata_datum` is the row's non-null jsonb column (checked when the row was
        // read).
        unsafe { Container::from_datum(self.metadata_datum) }
    }

    /// `recorded_at` as `to_jsonb` writes a timestamptz (ISO 8601).
    pub(crate) fn recorded_at_text(&self) -> String {
        // SAFETY: `recorded_at` is a timestamptz by value; the text is copied out at once.
        unsafe {
            let p = pg_sys::JsonEncodeDateTime(
                std::ptr::null_mut(),
                self.recorded_at,
                pg_sys::TIMESTAMPTZOID,
                std::ptr::null(),
            );
            std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }

    pub(crate) fn event_id_text(&self) -> String {
        // SAFETY: a uuid datum points to its 16 bytes, alive as long as the row.
        let b = unsafe { std::slice::from_raw_parts(self.event_id.cast_mut_ptr::<u8>(), 16) };
        let h: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            h[..4].concat(),
            h[4..6].concat(),
            h[6..8].concat(),
            h[8..10].concat(),
            h[10..].concat()
        )
    }
}

/// Reads `es.events` rows (whole-row composite datums). The attribute numbers
/// are looked up by name once, so the reader follows the table's shape.
pub(crate) struct RowReader {
    tupdesc: pg_sys::TupleDesc,
    /// 0-based attribute index of each column, in `Event` order.
    idx: [usize; REQUIRED],
    /// `schema_version`'s, when the table has it.
    schema_version: Option<usize>,
}

/// Room for the row's attributes, dropped columns included.
const MAX_ATTS: usize = 32;

/// The columns of `es.events`, in `Event` order: what an append fills
/// (`append_direct`) and a row is read by. The last, `schema_version`, is
/// missing from a table whose extension is not updated yet; the others
/// (`REQUIRED`) are always there.
pub(crate) const COLUMNS: [&str; 10] = [
    "global_position",
    "stream_id",
    "stream_type",
    "version",
    "event_type",
    "data",
    "metadata",
    "event_id",
    "recorded_at",
    "schema_version",
];
const REQUIRED: usize = 9;

impl RowReader {
    /// # Safety
    /// `row` must be a composite datum of type `es.events`. The tuple
    /// descriptor is copied into the current memory context.
    pub(crate) unsafe fn for_row(row: Datum) -> RowReader {
        let th = pg_sys::pg_detoast_datum(row.cast_mut_ptr()) as pg_sys::HeapTupleHeader;
        let typid = (*th).t_choice.t_datum.datum_typeid;
        let typmod = (*th).t_choice.t_datum.datum_typmod;
        Self::from_desc(pg_sys::lookup_rowtype_tupdesc_copy(typid, typmod))
    }

    /// A reader of result tuples with descriptor `desc` (a query of
    /// `es.events`' columns, `e.*`), matched by name.
    ///
    /// # Safety
    /// `desc` must be a valid tuple descriptor holding `es.events`' columns.
    /// It is copied into the current memory context.
    pub(crate) unsafe fn for_desc(desc: pg_sys::TupleDesc) -> RowReader {
        Self::from_desc(pg_sys::CreateTupleDescCopy(desc))
    }

    /// # Safety
    /// `tupdesc` is valid for as long as the reader is used.
    unsafe fn from_desc(tupdesc: pg_sys::TupleDesc) -> RowReader {
        let natts = (*tupdesc).natts as usize;
        let attrs = (*tupdesc).attrs.as_slice(natts);
        let mut idx = [usize::MAX; REQUIRED];
        let mut schema_version = None;
        for (i, a) in attrs.iter().enumerate() {
            if a.attisdropped {
                continue;
            }
            let name = std::ffi::CStr::from_ptr(a.attname.data.as_ptr()).to_string_lossy();
            if let Some(c) = COLUMNS[..REQUIRED].iter().position(|c| *c == name) {
                idx[c] = i;
            } else if name == COLUMNS[REQUIRED] {
                schema_version = Some(i);
            }
        }
        assert!(
            idx.iter().all(|i| *i != usize::MAX) && natts <= MAX_ATTS,
            "the row is not an es.events row"
        );
        RowReader {
            tupdesc,
            idx,
            schema_version,
        }
    }

    /// # Safety
    /// `row` must be a composite datum of type `es.events` that outlives the event.
    pub(crate) unsafe fn read<'a>(&self, row: Datum) -> Event<'a> {
        let th = pg_sys::pg_detoast_datum(row.cast_mut_ptr()) as pg_sys::HeapTupleHeader;
        let mut tuple: pg_sys::HeapTupleData = std::mem::zeroed();
        tuple.t_len = pgrx::varsize_any(th as *const pg_sys::varlena) as u32;
        tuple.t_tableOid = pg_sys::InvalidOid;
        tuple.t_data = th;
        self.read_tuple(&mut tuple)
    }

    /// # Safety
    /// `tuple` must be a tuple of the reader's descriptor that outlives the event.
    unsafe fn read_tuple<'a>(&self, tuple: *mut pg_sys::HeapTupleData) -> Event<'a> {
        // On the stack: this runs once per event of a fold.
        let mut values = [Datum::from(0usize); MAX_ATTS];
        let mut nulls = [false; MAX_ATTS];
        pg_sys::heap_deform_tuple(tuple, self.tupdesc, values.as_mut_ptr(), nulls.as_mut_ptr());
        self.read_values(&values, &nulls)
    }

    /// # Safety
    /// `slot` must hold a row of the reader's descriptor (a query of
    /// `es.events`' columns), left unchanged while the event is used.
    pub(crate) unsafe fn read_slot<'a>(&self, slot: *mut pg_sys::TupleTableSlot) -> Event<'a> {
        let natts = (*self.tupdesc).natts;
        if i32::from((*slot).tts_nvalid) < natts {
            pg_sys::slot_getsomeattrs_int(slot, natts);
        }
        let n = natts as usize;
        self.read_values(
            std::slice::from_raw_parts((*slot).tts_values, n),
            std::slice::from_raw_parts((*slot).tts_isnull, n),
        )
    }

    /// # Safety
    /// `values` and `nulls` are a row of the reader's descriptor whose
    /// by-reference values outlive the event.
    unsafe fn read_values<'a>(&self, values: &[Datum], nulls: &[bool]) -> Event<'a> {
        // A row built by hand (es.fold(ROW(...))) may hold NULLs that the
        // table never does.
        if let Some(c) = (0..REQUIRED).find(|c| nulls[self.idx[*c]]) {
            crate::pg::error::fail(
                pgrx::PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                format!("an event's {} must not be NULL", COLUMNS[c]),
            );
        }
        let v = |c: usize| values[self.idx[c]];
        Event {
            global_position: v(0).value() as i64,
            stream_id: text_datum_str(v(1)),
            stream_type: text_datum_str(v(2)),
            version: v(3).value() as i64,
            event_type: text_datum_str(v(4)),
            data: Container::from_datum(v(5)),
            data_datum: v(5),
            metadata_datum: v(6),
            event_id: v(7),
            recorded_at: v(8),
            schema_version: match self.schema_version {
                Some(i) if !nulls[i] => values[i].value() as i32,
                _ => 1,
            },
        }
    }
}
