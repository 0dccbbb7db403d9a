//! A thin layer over PostgreSQL's SPI for the hot paths.
//!
//! pgrx's `Spi` wrappers are convenient but convert arguments through its own
//! types; the append path hands the caller's datums (text, jsonb, uuid)
//! straight to kept plans instead, so no value is copied or re-encoded.

use pgrx::pg_sys;
use std::cell::Cell;
use std::ffi::CStr;
use std::thread::LocalKey;

/// SPI's argument arrays: values, and ' ' / 'n' for not null / null.
fn pack(args: &[Option<pg_sys::Datum>]) -> ([pg_sys::Datum; 16], [std::ffi::c_char; 16]) {
    let mut values = [pg_sys::Datum::from(0usize); 16];
    let mut nulls = [b' ' as std::ffi::c_char; 16];
    for (i, a) in args.iter().enumerate() {
        match a {
            Some(d) => values[i] = *d,
            None => nulls[i] = b'n' as std::ffi::c_char,
        }
    }
    (values, nulls)
}

/// A statement prepared once per backend and kept (`SPI_keepplan`).
/// PostgreSQL's plan cache re-plans it when the tables change.
pub(crate) struct KeptPlan {
    pub(crate) sql: &'static CStr,
    pub(crate) types: &'static [pg_sys::Oid],
    pub(crate) slot: &'static LocalKey<Cell<pg_sys::SPIPlanPtr>>,
    /// `CURSOR_OPT_GENERIC_PLAN`: one plan for every call. For statements
    /// whose parameters only switch filters on and off (`$1 IS NULL OR ...`):
    /// PostgreSQL would otherwise judge a plan made for each call's values
    /// cheaper and plan every call again.
    pub(crate) options: i32,
}

impl KeptPlan {
    /// The plan, preparing it on first use. Must be called inside an SPI connection.
    pub(crate) fn get(&self) -> pg_sys::SPIPlanPtr {
        let cached = self.slot.with(|c| c.get());
        if !cached.is_null() {
            return cached;
        }
        // Prepared under the pinned search_path whatever the session's is
        // (names resolve the same way on every backend; a later search_path
        // change only makes the plan cache re-plan it).
        // SAFETY: `sql` is NUL-terminated and `types` holds as many oids as passed; called
        // inside an SPI connection.
        let plan = crate::pg::roles::with_search_path(crate::pg::roles::PINNED_PATH, || unsafe {
            pg_sys::SPI_prepare_cursor(
                self.sql.as_ptr(),
                self.types.len() as i32,
                self.types.as_ptr() as *mut pg_sys::Oid,
                self.options,
            )
        });
        // SAFETY: the plan was just prepared (checked for NULL); SPI_keepplan moves it out of
        // SPI's memory.
        unsafe {
            if plan.is_null() {
                pgrx::error!("SPI_prepare failed for: {}", self.sql.to_string_lossy());
            }
            pg_sys::SPI_keepplan(plan);
            self.slot.with(|c| c.set(plan));
            plan
        }
    }

    /// Runs the plan with the given arguments (`None` is SQL NULL) and returns
    /// the number of rows it processed. The rows are in `SPI_tuptable`.
    pub(crate) fn run(&self, args: &[Option<pg_sys::Datum>], read_only: bool) -> u64 {
        debug_assert_eq!(args.len(), self.types.len());
        execute(self.get(), args, read_only).unwrap_or_else(|rc| {
            pgrx::error!(
                "SPI_execute_plan failed ({rc}) for: {}",
                self.sql.to_string_lossy()
            )
        })
    }
}

impl KeptPlan {
    /// Runs the plan through a cursor and hands `f` the first column of each
    /// batch of rows, so a long result never sits in memory whole.
    pub(crate) fn cursor(
        &self,
        args: &[Option<pg_sys::Datum>],
        read_only: bool,
        mut f: impl FnMut(&[pg_sys::Datum]),
    ) {
        self.tuples(args, read_only, true, |desc, tuples| {
            f(&first_column(desc, tuples))
        });
    }
}

/// The first column of each of `tuples` (of descriptor `desc`), NULLs left out.
pub(crate) fn first_column(
    desc: pg_sys::TupleDesc,
    tuples: &[pg_sys::HeapTuple],
) -> Vec<pg_sys::Datum> {
    tuples
        .iter()
        .filter_map(|t| {
            let mut isnull = false;
            // SAFETY: `t` is a live tuple of descriptor `desc`, which has a first column.
            let d = unsafe { pg_sys::SPI_getbinval(*t, desc, 1, &mut isnull) };
            (!isnull).then_some(d)
        })
        .collect()
}

impl KeptPlan {
    /// Runs the plan and hands `f` whole result tuples with the result's
    /// descriptor (copies in SPI's result table: `slots` reads rows in
    /// place); the tuples live until `f` returns. `batched`: through
    /// a cursor, a thousand at a time, so a long result never sits in memory
    /// whole; otherwise one execution, every row at once (no portal to open,
    /// fetch and close), for a result of at most about a thousand rows.
    pub(crate) fn tuples(
        &self,
        args: &[Option<pg_sys::Datum>],
        read_only: bool,
        batched: bool,
        mut f: impl FnMut(pg_sys::TupleDesc, &[pg_sys::HeapTuple]),
    ) {
        // SAFETY: inside an SPI connection (the caller's contract); each result table is read
        // while current and freed after `f` returns; the portal is opened and closed here.
        unsafe {
            let hand = |f: &mut dyn FnMut(pg_sys::TupleDesc, &[pg_sys::HeapTuple])| {
                let n = pg_sys::SPI_processed as usize;
                let table = pg_sys::SPI_tuptable;
                if n > 0 && !table.is_null() {
                    f(
                        (*table).tupdesc,
                        std::slice::from_raw_parts((*table).vals, n),
                    );
                }
                n
            };
            if !batched {
                self.run(args, read_only);
                hand(&mut f);
                return;
            }
            let (mut values, nulls) = pack(args);
            let portal = pg_sys::SPI_cursor_open(
                std::ptr::null(),
                self.get(),
                values.as_mut_ptr(),
                nulls.as_ptr(),
                read_only,
            );
            loop {
                pg_sys::SPI_cursor_fetch(portal, true, 1000);
                let table = pg_sys::SPI_tuptable;
                if hand(&mut f) == 0 {
                    break;
                }
                pg_sys::SPI_freetuptable(table);
            }
            pg_sys::SPI_cursor_close(portal);
        }
    }
}

/// A receiver of result rows that hands each row's slot to a closure: the
/// executor's own slot, read in place (SPI's result table would copy every
/// row first).
#[repr(C)]
struct SlotReceiver<'f> {
    /// First, so that a pointer to the receiver is a pointer to this.
    dest: pg_sys::DestReceiver,
    f: &'f mut dyn FnMut(*mut pg_sys::TupleTableSlot),
}

/// # Safety
/// Called by the executor with a receiver made by `KeptPlan::slots`.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn receive_slot(
    slot: *mut pg_sys::TupleTableSlot,
    this: *mut pg_sys::DestReceiver,
) -> bool {
    // SAFETY: `this` points to the `dest` field of a live `SlotReceiver` (the first field
    // of a repr(C) struct), made by `KeptPlan::slots` for this execution only.
    let receiver = unsafe { &mut *this.cast::<SlotReceiver>() };
    (receiver.f)(slot);
    true
}

unsafe extern "C-unwind" fn receiver_startup(
    _this: *mut pg_sys::DestReceiver,
    _operation: std::ffi::c_int,
    _desc: pg_sys::TupleDesc,
) {
}

unsafe extern "C-unwind" fn receiver_done(_this: *mut pg_sys::DestReceiver) {}

impl KeptPlan {
    /// Runs the plan and hands `f` each result row as the executor's slot,
    /// valid until `f` returns: nothing is copied or kept, so a result of
    /// any length streams through. What `f` allocates goes into the current
    /// memory context.
    pub(crate) fn slots(
        &self,
        args: &[Option<pg_sys::Datum>],
        read_only: bool,
        mut f: impl FnMut(*mut pg_sys::TupleTableSlot),
    ) {
        debug_assert_eq!(args.len(), self.types.len());
        let plan = self.get();
        let mut receiver = SlotReceiver {
            dest: pg_sys::DestReceiver {
                receiveSlot: Some(receive_slot),
                rStartup: Some(receiver_startup),
                rShutdown: Some(receiver_done),
                rDestroy: Some(receiver_done),
                // as PL/pgSQL's RETURN QUERY hands SPI its own receiver
                mydest: pg_sys::CommandDest::DestTuplestore,
            },
            f: &mut f,
        };
        // SAFETY: the parameter list has room for `args.len()` entries, each set below; the
        // receiver outlives the execution, which is the only user of its pointer.
        let rc = unsafe {
            let params = pg_sys::makeParamList(args.len() as i32);
            let slots = (*params).params.as_mut_slice(args.len());
            for ((p, a), ty) in slots.iter_mut().zip(args).zip(self.types) {
                p.value = a.unwrap_or(pg_sys::Datum::from(0usize));
                p.isnull = a.is_none();
                p.pflags = pg_sys::PARAM_FLAG_CONST as u16;
                p.ptype = *ty;
            }
            let options = pg_sys::SPIExecuteOptions {
                params,
                read_only,
                allow_nonatomic: false,
                must_return_tuples: false,
                tcount: 0,
                dest: &mut receiver.dest,
                owner: std::ptr::null_mut(),
            };
            pg_sys::SPI_execute_plan_extended(plan, &options)
        };
        if rc < 0 {
            pgrx::error!(
                "SPI_execute_plan_extended failed ({rc}) for: {}",
                self.sql.to_string_lossy()
            );
        }
    }
}

/// Runs a prepared plan with the given arguments (`None` is SQL NULL);
/// returns the number of rows processed, or SPI's error code.
pub(crate) fn execute(
    plan: pg_sys::SPIPlanPtr,
    args: &[Option<pg_sys::Datum>],
    read_only: bool,
) -> Result<u64, i32> {
    let (mut values, nulls) = pack(args);
    // SAFETY: the argument arrays hold 16 entries, at least as many as the plan's parameters.
    unsafe {
        let rc = pg_sys::SPI_execute_plan(plan, values.as_mut_ptr(), nulls.as_ptr(), read_only, 0);
        if rc < 0 {
            Err(rc)
        } else {
            Ok(pg_sys::SPI_processed)
        }
    }
}

/// Column `col` (1-based) of row `row` of the last SPI result, as a raw datum.
pub(crate) fn value(row: usize, col: i32) -> Option<pg_sys::Datum> {
    // SAFETY: row and column are checked against the current SPI result before the tuple is
    // read.
    unsafe {
        let table = pg_sys::SPI_tuptable;
        if table.is_null() || row as u64 >= pg_sys::SPI_processed {
            return None;
        }
        let tuple = *(*table).vals.add(row);
        let mut isnull = false;
        let d = pg_sys::SPI_getbinval(tuple, (*table).tupdesc, col, &mut isnull);
        if isnull {
            None
        } else {
            Some(d)
        }
    }
}

pub(crate) fn value_i64(row: usize, col: i32) -> Option<i64> {
    value(row, col).map(|d| d.value() as i64)
}

pub(crate) fn value_bool(row: usize, col: i32) -> Option<bool> {
    value(row, col).map(|d| d.value() != 0)
}

pub(crate) fn value_string(row: usize, col: i32) -> Option<String> {
    // SAFETY: a non-null text datum of the current SPI result, copied out at once.
    value(row, col).map(|d| unsafe { crate::pg::fmgr::text_datum_str(d).to_owned() })
}

/// Runs `f` inside an SPI connection, with `search_path` pinned to
/// `pg_catalog, pg_temp`: the statements here name the extension's objects
/// with their schema, but operators and functions like `=` or `now()` would
/// otherwise resolve through the caller's search_path (kept plans are
/// re-planned when it changes), where look-alikes could sit ahead of
/// pg_catalog. Functions whose SQL definition already pins it pay nothing.
pub(crate) fn connected<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: SPI_connect and the SPI_finish below pair up; an error in between is cleaned up
    // by the (sub)transaction abort.
    unsafe {
        if pg_sys::SPI_connect() < 0 {
            pgrx::error!("SPI_connect failed");
        }
    }
    let r = crate::pg::roles::with_search_path(crate::pg::roles::PINNED_PATH, f);
    // SAFETY: closes the connection opened above.
    unsafe {
        pg_sys::SPI_finish();
    }
    r
}

/// Declares a backend-local plan slot and the `KeptPlan` that uses it.
#[macro_export]
macro_rules! kept_plan {
    ($name:ident, $sql:expr, [$($ty:expr),* $(,)?]) => {
        $crate::kept_plan!(@plan $name, $sql, &[$($ty),*], 0);
    };
    // One generic plan for every call (see `KeptPlan::options`).
    ($name:ident, $sql:expr, [$($ty:expr),* $(,)?], generic) => {
        $crate::kept_plan!(@plan $name, $sql, &[$($ty),*],
                           ::pgrx::pg_sys::CURSOR_OPT_GENERIC_PLAN as i32);
    };
    // Argument types given as one constant slice.
    ($name:ident, $sql:expr, types = $types:expr) => {
        $crate::kept_plan!(@plan $name, $sql, $types, 0);
    };
    (@plan $name:ident, $sql:expr, $types:expr, $options:expr) => {
        static $name: $crate::pg::spi::KeptPlan = {
            ::std::thread_local! {
                static SLOT: ::std::cell::Cell<::pgrx::pg_sys::SPIPlanPtr> =
                    const { ::std::cell::Cell::new(::std::ptr::null_mut()) };
            }
            $crate::pg::spi::KeptPlan { sql: $sql, types: $types, slot: &SLOT, options: $options }
        };
    };
}
