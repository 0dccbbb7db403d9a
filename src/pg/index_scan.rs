//! Reading a table through one of its btree indexes without the executor.
//!
//! Starting a plan (executor start, a scan node, a projection) costs tens of
//! thousands of instructions, more than reading the one row or the few rows
//! a command's hottest reads return. These reads go to the index and the heap
//! directly, with the caller's snapshot, as PostgreSQL's own catalog look-ups
//! do. A scan is begun only where it gives exactly what the query would: the
//! current user may SELECT the whole table and no row level security applies;
//! otherwise `open` says no and the caller runs its query, which checks column
//! privileges and applies policies (and raises the error a user expects).

use crate::pg::tables::relation;
use pgrx::pg_sys::{self, Datum, Oid};
use std::ffi::CStr;

unsafe extern "C-unwind" {
    // PostgreSQL's own, unguarded: `next_deformed` calls both inside one
    // guard. pgrx guards each call with a sigsetjmp of its own, and two per
    // row were 9% of a long stream's es.load.
    #[link_name = "index_getnext_slot"]
    fn raw_index_getnext_slot(
        scan: pg_sys::IndexScanDesc,
        direction: pg_sys::ScanDirection::Type,
        slot: *mut pg_sys::TupleTableSlot,
    ) -> bool;
    #[link_name = "slot_getsomeattrs_int"]
    fn raw_slot_getsomeattrs_int(slot: *mut pg_sys::TupleTableSlot, attnum: std::ffi::c_int);
}

/// A condition on one column of the table, compared as the index compares.
/// The column is named; `IndexScan::open` finds it among the index's.
#[derive(Clone, Copy)]
pub(crate) enum Key {
    /// `column = text`
    TextEq(&'static str, Datum),
    /// `column = bigint`
    Int8Eq(&'static str, Datum),
    /// `column <= bigint`
    Int8Le(&'static str, Datum),
    /// `column > bigint`
    Int8Gt(&'static str, Datum),
}

/// An open scan. Rows come out in index order (or its reverse); each stays in
/// the slot until the next call. Close it with `close`; an error in between
/// leaves the pins and references to the (sub)transaction's abort, which
/// releases them.
pub(crate) struct IndexScan {
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    scan: pg_sys::IndexScanDesc,
    slot: *mut pg_sys::TupleTableSlot,
    direction: pg_sys::ScanDirection::Type,
    /// Whether `open` opened the relations (and `close` closes them).
    owned: bool,
}

/// Whether the current user reads every row of `table` with a plain SELECT:
/// table-level SELECT, and row level security off for them.
fn readable(table: Oid) -> bool {
    // SAFETY: privilege and policy look-ups by oid; with noError they do not raise.
    unsafe {
        let user = pg_sys::GetUserId();
        pg_sys::pg_class_aclcheck(table, user, pg_sys::ACL_SELECT as pg_sys::AclMode)
            == pg_sys::AclResult::ACLCHECK_OK
            && pg_sys::check_enable_rls(table, Oid::INVALID, true)
                != pg_sys::CheckEnableRlsResult::RLS_ENABLED as i32
    }
}

/// The attribute number (1-based) of the table's column `name`.
///
/// # Safety
/// `heap` is an open relation.
unsafe fn heap_attnum(heap: pg_sys::Relation, name: &str) -> Option<i16> {
    let desc = (*heap).rd_att;
    let attrs = (*desc).attrs.as_slice((*desc).natts as usize);
    attrs
        .iter()
        .position(|a| {
            !a.attisdropped && CStr::from_ptr(a.attname.data.as_ptr()).to_bytes() == name.as_bytes()
        })
        .map(|p| (p + 1) as i16)
}

impl IndexScan {
    /// Begins a scan of the extension's table `es.<table>` through its btree
    /// index `es.<index>` for the rows matching every key (keys in column
    /// order), with the active snapshot. None when the table is not
    /// `readable`, no snapshot is active, or the index is not a btree over the
    /// keys' columns, of their types: the caller then runs its query instead.
    pub(crate) fn open(
        table: &CStr,
        index: &CStr,
        keys: &[Key],
        backward: bool,
    ) -> Option<IndexScan> {
        let (table, index) = (relation(table), relation(index));
        if table == Oid::INVALID || index == Oid::INVALID || !readable(table) {
            return None;
        }
        // SAFETY: relations are opened with the lock a query takes, kept to the end of the
        // transaction as a query keeps it, and closed again (without releasing the locks)
        // when the index is not one `begin` scans.
        unsafe {
            if pg_sys::get_rel_relkind(index) != pg_sys::RELKIND_INDEX as std::ffi::c_char {
                return None;
            }
            let heap = pg_sys::table_open(table, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            let index = pg_sys::index_open(index, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            let scan = Self::begin(heap, index, keys, backward);
            if scan.is_none() {
                pg_sys::index_close(index, pg_sys::NoLock as pg_sys::LOCKMODE);
                pg_sys::table_close(heap, pg_sys::NoLock as pg_sys::LOCKMODE);
            }
            scan.map(|s| IndexScan { owned: true, ..s })
        }
    }

    /// As `open`, on relations the caller opened (and keeps open, locked, until
    /// after `close`): a writer's table and one of its indexes. The caller has
    /// checked that the current user reads the table (`readable`'s rule).
    ///
    /// # Safety
    /// `heap` and `index` are open relations, `index` an index (of any kind).
    pub(crate) unsafe fn begin(
        heap: pg_sys::Relation,
        index: pg_sys::Relation,
        keys: &[Key],
        backward: bool,
    ) -> Option<IndexScan> {
        let table = (*heap).rd_id;
        // SAFETY: the keys are built for the index's own column types and collations and
        // live in `skeys` until `index_rescan` copies them into the scan; the slot is made
        // for the heap's row type.
        unsafe {
            if !pg_sys::ActiveSnapshotSet() {
                return None;
            }
            let mut skeys: Vec<pg_sys::ScanKeyData> = Vec::with_capacity(keys.len());
            for k in keys {
                let (name, proc_, strategy, value) = match *k {
                    Key::TextEq(c, v) => (c, pg_sys::F_TEXTEQ, pg_sys::BTEqualStrategyNumber, v),
                    Key::Int8Eq(c, v) => (c, pg_sys::F_INT8EQ, pg_sys::BTEqualStrategyNumber, v),
                    Key::Int8Le(c, v) => {
                        (c, pg_sys::F_INT8LE, pg_sys::BTLessEqualStrategyNumber, v)
                    }
                    Key::Int8Gt(c, v) => (c, pg_sys::F_INT8GT, pg_sys::BTGreaterStrategyNumber, v),
                };
                let expected = if proc_ == pg_sys::F_TEXTEQ {
                    pg_sys::TEXTOID
                } else {
                    pg_sys::INT8OID
                };
                // A valid btree of this table, the index column that holds the named
                // table column, of the key's type, and not before the previous key's
                // (btree wants the keys in column order). Anything else is not the
                // index this read was written for (changed by hand, or being built):
                // the caller's query reads.
                let nkeys = (*(*index).rd_index).indnkeyatts as usize;
                let indkey = (*(*index).rd_index).indkey.values.as_slice(nkeys);
                let attnum = heap_attnum(heap, name);
                let found = indkey.iter().position(|a| Some(*a) == attnum);
                let form = (*index).rd_index;
                let usable = (*index)
                    .rd_rel
                    .as_ref()
                    .is_some_and(|r| r.relam == pg_sys::BTREE_AM_OID)
                    && (*form).indrelid == table
                    && (*form).indisvalid
                    && (*form).indisready
                    && found.is_some_and(|i| {
                        *(*index).rd_opcintype.add(i) == expected
                            && skeys.last().is_none_or(|p| p.sk_attno as usize <= i + 1)
                    });
                let i = found.filter(|_| usable)?;
                let col = (i + 1) as i16;
                let mut sk: pg_sys::ScanKeyData = std::mem::zeroed();
                pg_sys::ScanKeyEntryInitialize(
                    &mut sk,
                    0,
                    col,
                    strategy as pg_sys::StrategyNumber,
                    Oid::INVALID,
                    // compared under the index's collation, as the index is ordered
                    *(*index).rd_indcollation.add(i),
                    Oid::from(proc_),
                    value,
                );
                skeys.push(sk);
            }
            let scan = pg_sys::index_beginscan(
                heap,
                index,
                pg_sys::GetActiveSnapshot(),
                skeys.len() as i32,
                0,
            );
            pg_sys::index_rescan(
                scan,
                skeys.as_mut_ptr(),
                skeys.len() as i32,
                std::ptr::null_mut(),
                0,
            );
            let slot = pg_sys::table_slot_create(heap, std::ptr::null_mut());
            Some(IndexScan {
                heap,
                index,
                scan,
                slot,
                direction: if backward {
                    pg_sys::ScanDirection::BackwardScanDirection
                } else {
                    pg_sys::ScanDirection::ForwardScanDirection
                },
                owned: false,
            })
        }
    }

    /// The next visible row, in the slot (valid until the next call or `close`).
    pub(crate) fn next(&mut self) -> Option<*mut pg_sys::TupleTableSlot> {
        // SAFETY: the scan and slot were made by `open` and are not closed yet.
        unsafe {
            pg_sys::index_getnext_slot(self.scan, self.direction, self.slot).then_some(self.slot)
        }
    }

    /// As `next`, with every column of the row deformed into the slot's
    /// values, in one guarded call to PostgreSQL instead of two.
    pub(crate) fn next_deformed(&mut self) -> Option<*mut pg_sys::TupleTableSlot> {
        let (scan, direction, slot) = (self.scan, self.direction, self.slot);
        // SAFETY: the scan and slot were made by `open` and are not closed yet; the heap
        // relation is open, so its descriptor is valid. The closure holds nothing to drop,
        // so an error that leaves it through the guard skips no destructor.
        unsafe {
            let natts = (*(*self.heap).rd_att).natts;
            pg_sys::ffi::pg_guard_ffi_boundary(|| {
                let found = raw_index_getnext_slot(scan, direction, slot);
                if found {
                    raw_slot_getsomeattrs_int(slot, natts);
                }
                found
            })
            .then_some(slot)
        }
    }

    /// Column `name` of the row in the slot (None: SQL NULL).
    pub(crate) fn value(&self, name: &str) -> Option<Datum> {
        // SAFETY: the heap relation is open; the slot holds a row of it (`next` returned
        // it), whose attributes up to the one read are deformed before it is read.
        unsafe {
            let att = heap_attnum(self.heap, name)
                .unwrap_or_else(|| panic!("column \"{name}\" is missing"))
                as usize
                - 1;
            let slot = self.slot;
            if usize::from((*slot).tts_nvalid as u16) <= att {
                pg_sys::slot_getsomeattrs_int(slot, att as i32 + 1);
            }
            (!*(*slot).tts_isnull.add(att)).then(|| *(*slot).tts_values.add(att))
        }
    }

    /// Ends the scan (and closes the relations `open` opened); the locks stay
    /// to the end of the transaction.
    pub(crate) fn close(self) {
        // SAFETY: everything was opened by `open` and is released once, here.
        unsafe {
            pg_sys::ExecDropSingleTupleTableSlot(self.slot);
            pg_sys::index_endscan(self.scan);
            if self.owned {
                pg_sys::index_close(self.index, pg_sys::NoLock as pg_sys::LOCKMODE);
                pg_sys::table_close(self.heap, pg_sys::NoLock as pg_sys::LOCKMODE);
            }
        }
    }
}
