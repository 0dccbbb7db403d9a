//! Writing a row of the extension's tables without the executor.
//!
//! A one-row `INSERT` or `UPDATE` run as a statement spends a good part of
//! its cost starting and ending its plan (a `ModifyTable` node, its scan,
//! projections, the plan cache's checks) rather than on the heap and index
//! work it exists for. These writes do that work directly, as PostgreSQL's logical replication apply
//! does: the heap, every index of the table (unique checks included), the
//! table's constraints, under the same locks and command id a statement
//! takes. `UPDATE` keeps a statement's concurrency rules: a row changed by a
//! transaction that committed after the snapshot is re-read and re-checked
//! at its newest version under READ COMMITTED (what EvalPlanQual does) and is
//! a serialization failure (40001) under REPEATABLE READ and SERIALIZABLE.
//!
//! A writer is opened only where it does exactly what the statement would:
//! the current user may write (and, for an update, read) the table, no row
//! level security applies to them, the table is a plain table without
//! triggers for the command and without stored generated columns, and (for
//! an insert) every column is one the caller fills. Otherwise `open` says no
//! and the caller runs its statement, which fires the triggers, applies the
//! policies and raises the errors a user expects.

use crate::pg::index_scan::{IndexScan, Key};
use crate::pg::tables::relation;
use pgrx::pg_sys::{self, Datum, Oid};
use pgrx::PgSqlErrorCode;
use std::ffi::CStr;

/// What a writer does to its table.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    Insert,
    Update,
}

/// A table open for writing one statement's rows. Made by `open`, inside a
/// `statement`; `close` releases it (an error in between leaves that to the
/// (sub)transaction's abort).
pub(crate) struct TableWriter {
    rel: pg_sys::Relation,
    estate: *mut pg_sys::EState,
    rri: *mut pg_sys::ResultRelInfo,
    /// The row being written (a virtual slot: values set by hand).
    slot: *mut pg_sys::TupleTableSlot,
    /// An update's newest version of the row, when a concurrent update moved it.
    locked: *mut pg_sys::TupleTableSlot,
}

/// What `update_unique` did.
pub(crate) enum Updated {
    /// The row was updated; `TableWriter::value` reads its new version.
    Row,
    /// No row matched (none visible, or `decide` turned it down).
    NoRow,
}

/// Runs `write` (a write, or a read that must see this command's writes) as
/// SPI runs a statement that changes data: the command
/// counter advanced first (so the statement sees what earlier commands of
/// the transaction did) and a fresh snapshot active while it runs, the
/// counter advanced again after (so what follows sees its rows).
pub(crate) fn statement<R>(write: impl FnOnce() -> R) -> R {
    // SAFETY: the snapshot pushed here is popped below; an error in between leaves it to
    // the (sub)transaction's abort, which pops it.
    unsafe {
        pg_sys::CommandCounterIncrement();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        pg_sys::UpdateActiveSnapshotCommandId();
    }
    let r = write();
    // SAFETY: pops the snapshot pushed above; the increment makes the rows written visible.
    unsafe {
        pg_sys::PopActiveSnapshot();
        pg_sys::CommandCounterIncrement();
    }
    r
}

/// The attribute number (1-based) of `rel`'s column `name`.
///
/// # Safety
/// `rel` is an open relation.
unsafe fn attnum(rel: pg_sys::Relation, name: &str) -> Option<usize> {
    let desc = (*rel).rd_att;
    (*desc)
        .attrs
        .as_slice((*desc).natts as usize)
        .iter()
        .position(|a| {
            !a.attisdropped && CStr::from_ptr(a.attname.data.as_ptr()).to_bytes() == name.as_bytes()
        })
        .map(|p| p + 1)
}

/// Whether the current user may do `command` to every row of `table` with a
/// plain statement: the privileges it needs and no row level security.
fn writable(table: Oid, command: Command) -> bool {
    let needed = match command {
        Command::Insert => pg_sys::ACL_INSERT,
        Command::Update => pg_sys::ACL_UPDATE | pg_sys::ACL_SELECT,
    };
    // SAFETY: privilege and policy look-ups by oid; with noError they do not raise.
    unsafe {
        pg_sys::pg_class_aclmask(
            table,
            pg_sys::GetUserId(),
            needed as pg_sys::AclMode,
            pg_sys::AclMaskHow::ACLMASK_ALL,
        ) == needed as pg_sys::AclMode
            && pg_sys::check_enable_rls(table, Oid::INVALID, true)
                != pg_sys::CheckEnableRlsResult::RLS_ENABLED as i32
    }
}

/// Whether `rel` has a trigger that `command` would fire.
///
/// # Safety
/// `rel` is an open relation.
unsafe fn has_triggers(rel: pg_sys::Relation, command: Command) -> bool {
    let t = (*rel).trigdesc;
    if t.is_null() {
        return false;
    }
    let t = &*t;
    match command {
        Command::Insert => {
            t.trig_insert_before_row
                || t.trig_insert_after_row
                || t.trig_insert_instead_row
                || t.trig_insert_before_statement
                || t.trig_insert_after_statement
                || t.trig_insert_new_table
        }
        Command::Update => {
            t.trig_update_before_row
                || t.trig_update_after_row
                || t.trig_update_instead_row
                || t.trig_update_before_statement
                || t.trig_update_after_statement
                || t.trig_update_old_table
                || t.trig_update_new_table
        }
    }
}

impl TableWriter {
    /// Opens `es.<table>` for `command` inside a `statement`. `columns` are
    /// those the caller fills in an insert: a table with another column (one
    /// with a default the caller does not know) is left to the statement.
    /// None: the caller's statement must write instead (see the module).
    pub(crate) fn open(name: &CStr, command: Command, columns: &[&str]) -> Option<TableWriter> {
        Self::open_oid(relation(name), command, columns)
    }

    /// `open` for any table, by oid (a user's table: the materializer's).
    pub(crate) fn open_oid(table: Oid, command: Command, columns: &[&str]) -> Option<TableWriter> {
        if table == Oid::INVALID || !writable(table, command) {
            return None;
        }
        // SAFETY: the relation is opened with the lock an INSERT or UPDATE takes and kept
        // to the end of the transaction, as a statement keeps it; the executor state, the
        // result relation and the slots are made as the apply worker makes them and freed
        // by `close`; nodes are allocated zeroed with their tag.
        unsafe {
            if !pg_sys::ActiveSnapshotSet() {
                return None;
            }
            let rel = pg_sys::table_open(table, pg_sys::RowExclusiveLock as pg_sys::LOCKMODE);
            let form = &*(*rel).rd_rel;
            let desc = (*rel).rd_att;
            let generated = !(*desc).constr.is_null() && (*(*desc).constr).has_generated_stored;
            let unknown_column = command == Command::Insert
                && (*desc)
                    .attrs
                    .as_slice((*desc).natts as usize)
                    .iter()
                    .any(|a| {
                        !a.attisdropped
                            && !columns.iter().any(|c| {
                                CStr::from_ptr(a.attname.data.as_ptr()).to_bytes() == c.as_bytes()
                            })
                    });
            let missing_column = columns.iter().any(|c| attnum(rel, c).is_none());
            if form.relkind != pg_sys::RELKIND_RELATION as std::ffi::c_char
                || form.relispartition
                || has_triggers(rel, command)
                || generated
                || unknown_column
                || missing_column
            {
                pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
                return None;
            }
            let estate = pg_sys::CreateExecutorState();
            let rte =
                pgrx::PgBox::<pg_sys::RangeTblEntry>::alloc_node(pg_sys::NodeTag::T_RangeTblEntry)
                    .into_pg();
            (*rte).rtekind = pg_sys::RTEKind::RTE_RELATION;
            (*rte).relid = table;
            (*rte).relkind = form.relkind;
            (*rte).rellockmode = pg_sys::RowExclusiveLock as i32;
            pg_sys::ExecInitRangeTable(estate, pg_sys::lappend(std::ptr::null_mut(), rte.cast()));
            let rri =
                pgrx::PgBox::<pg_sys::ResultRelInfo>::alloc_node(pg_sys::NodeTag::T_ResultRelInfo)
                    .into_pg();
            pg_sys::InitResultRelInfo(rri, rel, 1, std::ptr::null_mut(), 0);
            (*estate).es_output_cid = pg_sys::GetCurrentCommandId(true);
            (*estate).es_snapshot = pg_sys::GetActiveSnapshot();
            pg_sys::ExecOpenIndices(rri, false);
            let slot =
                pg_sys::ExecInitExtraTupleSlot(estate, (*rel).rd_att, &pg_sys::TTSOpsVirtual);
            let locked = pg_sys::table_slot_create(rel, &mut (*estate).es_tupleTable);
            Some(TableWriter {
                rel,
                estate,
                rri,
                slot,
                locked,
            })
        }
    }

    /// Inserts a row of the named columns' values (the columns given to
    /// `open`; None: NULL), checking the table's constraints and entering it
    /// in every index (a unique index raises 23505 as a statement's would).
    pub(crate) fn insert(&mut self, values: &[(&str, Option<Datum>)]) {
        // SAFETY: the slot is the table's and empty; every value is set at a column of the
        // table (`open` checked the names) with a datum of that column's type (the caller's
        // contract); the heap and index writes are the apply worker's.
        unsafe {
            self.fill(values, None);
            if !(*(*self.rel).rd_att).constr.is_null() {
                pg_sys::ExecConstraints(self.rri, self.slot, self.estate);
            }
            pg_sys::simple_table_tuple_insert(self.rel, self.slot);
            self.index(false);
        }
    }

    /// Fills the row slot from `values`, the other columns from `from` (a
    /// row of the table) or NULL.
    ///
    /// # Safety
    /// As `insert`; `from` holds a row of this table.
    unsafe fn fill(
        &mut self,
        values: &[(&str, Option<Datum>)],
        from: Option<*mut pg_sys::TupleTableSlot>,
    ) {
        let slot = self.slot;
        let natts = (*(*self.rel).rd_att).natts as usize;
        pg_sys::ExecClearTuple(slot);
        match from {
            Some(f) => {
                pg_sys::slot_getallattrs(f);
                std::ptr::copy_nonoverlapping((*f).tts_values, (*slot).tts_values, natts);
                std::ptr::copy_nonoverlapping((*f).tts_isnull, (*slot).tts_isnull, natts);
            }
            None => {
                for i in 0..natts {
                    *(*slot).tts_values.add(i) = Datum::from(0);
                    *(*slot).tts_isnull.add(i) = true;
                }
            }
        }
        for (name, v) in values {
            let i = attnum(self.rel, name).expect("a column open() checked") - 1;
            *(*slot).tts_values.add(i) = v.unwrap_or(Datum::from(0));
            *(*slot).tts_isnull.add(i) = v.is_none();
        }
        pg_sys::ExecStoreVirtualTuple(slot);
    }

    /// Enters the row just written in the table's indexes.
    ///
    /// # Safety
    /// The slot holds the row just inserted, or updated (`update`), with its tid.
    unsafe fn index(&mut self, update: bool) {
        if (*self.rri).ri_NumIndices > 0 {
            let recheck = pg_sys::ExecInsertIndexTuples(
                self.rri,
                self.slot,
                self.estate,
                update,
                false,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
            pg_sys::list_free(recheck);
        }
    }

    /// Updates the row that the table's unique btree index `index` finds for
    /// `key`, as `UPDATE ... WHERE <key> AND <decide says yes>` would:
    /// `decide` sees the row (`value` reads it from the slot it is given) and
    /// returns the new values of the columns it changes, or None to leave it.
    /// None as well when the index cannot be read directly (the caller's
    /// statement then writes).
    pub(crate) fn update_unique(
        &mut self,
        index: &CStr,
        key: Key,
        decide: impl FnMut(&dyn Fn(&str) -> Option<Datum>) -> Option<Vec<(&'static str, Option<Datum>)>>,
    ) -> Option<Updated> {
        // SAFETY: the writer's indexes are open (`ExecOpenIndices`) until `close`.
        let index = unsafe {
            self.indexes()
                .iter()
                .copied()
                .find(|&i| CStr::from_ptr((*(*i).rd_rel).relname.data.as_ptr()) == index)?
        };
        self.update_through(index, key, decide)
    }

    /// `update_unique` through the table's unique btree index on text column
    /// `column` alone (no predicate, no expression, the column's default
    /// collation, as `WHERE column = $1` would use), found by `value`.
    pub(crate) fn update_unique_on(
        &mut self,
        column: &'static str,
        value: Datum,
        decide: impl FnMut(&dyn Fn(&str) -> Option<Datum>) -> Option<Vec<(&'static str, Option<Datum>)>>,
    ) -> Option<Updated> {
        // SAFETY: the writer's relation and indexes are open until `close`; the index forms
        // and the attribute are read in place.
        let index = unsafe {
            let att = attnum(self.rel, column)?;
            let desc = (*self.rel).rd_att;
            let a = (*desc).attrs.as_slice((*desc).natts as usize)[att - 1];
            if a.attcollation != pg_sys::DEFAULT_COLLATION_OID {
                return None;
            }
            self.indexes().iter().copied().find(|&i| {
                let form = (*i).rd_index;
                (*form).indisunique
                    && (*form).indnkeyatts == 1
                    && (*form).indimmediate
                    && pg_sys::heap_attisnull(
                        (*i).rd_indextuple,
                        pg_sys::Anum_pg_index_indpred as i32,
                        std::ptr::null_mut(),
                    )
                    && pg_sys::heap_attisnull(
                        (*i).rd_indextuple,
                        pg_sys::Anum_pg_index_indexprs as i32,
                        std::ptr::null_mut(),
                    )
                    && (*form).indkey.values.as_slice(1)[0] as usize == att
                    && *(*i).rd_indcollation == pg_sys::DEFAULT_COLLATION_OID
            })?
        };
        self.update_through(index, Key::TextEq(column, value), decide)
    }

    fn update_through(
        &mut self,
        index: pg_sys::Relation,
        key: Key,
        mut decide: impl FnMut(
            &dyn Fn(&str) -> Option<Datum>,
        ) -> Option<Vec<(&'static str, Option<Datum>)>>,
    ) -> Option<Updated> {
        // SAFETY: `index` is one of the writer's open indexes.
        let mut scan = unsafe { IndexScan::begin(self.rel, index, &[key], false)? };
        let Some(found) = scan.next() else {
            scan.close();
            return Some(Updated::NoRow);
        };
        // SAFETY: `found` holds a row of this table (the scan's heap is this relation);
        // the tid and values read stay valid while the scan is open; the update, the lock
        // and the index entries are made as ExecUpdate makes them, with the active snapshot
        // and this statement's command id.
        unsafe {
            let rel = self.rel;
            let mut tid = (*found).tts_tid;
            let mut from = found;
            loop {
                let read = |name: &str| slot_value(rel, from, name);
                let Some(values) = decide(&read) else {
                    scan.close();
                    return Some(Updated::NoRow);
                };
                self.fill(&values, Some(from));
                if !(*(*rel).rd_att).constr.is_null() {
                    pg_sys::ExecConstraints(self.rri, self.slot, self.estate);
                }
                pg_sys::CheckCmdReplicaIdentity(rel, pg_sys::CmdType::CMD_UPDATE);
                let mut tmfd: pg_sys::TM_FailureData = std::mem::zeroed();
                let mut lockmode: pg_sys::LockTupleMode::Type = 0;
                let mut update_indexes = false;
                let cid = (*self.estate).es_output_cid;
                let result = pg_sys::table_tuple_update(
                    rel,
                    &mut tid,
                    self.slot,
                    cid,
                    (*self.estate).es_snapshot,
                    std::ptr::null_mut(),
                    true,
                    &mut tmfd,
                    &mut lockmode,
                    &mut update_indexes,
                );
                match result {
                    pg_sys::TM_Result::TM_Ok => {
                        if update_indexes {
                            self.index(true);
                        }
                        // the new row's values point into the old one's buffer: copied
                        // before the scan lets it go
                        pg_sys::ExecMaterializeSlot(self.slot);
                        scan.close();
                        return Some(Updated::Row);
                    }
                    pg_sys::TM_Result::TM_SelfModified => {
                        already_modified(tmfd.cmax, cid);
                        scan.close();
                        return Some(Updated::NoRow);
                    }
                    pg_sys::TM_Result::TM_Updated | pg_sys::TM_Result::TM_Deleted => {
                        let deleted = result == pg_sys::TM_Result::TM_Deleted;
                        if pg_sys::XactIsoLevel >= pg_sys::XACT_REPEATABLE_READ as i32 {
                            serialization_failure(deleted);
                        }
                        if deleted {
                            scan.close();
                            return Some(Updated::NoRow);
                        }
                        // READ COMMITTED: lock the newest version and decide again on it
                        let locked = pg_sys::table_tuple_lock(
                            rel,
                            &mut tid,
                            (*self.estate).es_snapshot,
                            self.locked,
                            cid,
                            lockmode,
                            pg_sys::LockWaitPolicy::LockWaitBlock,
                            pg_sys::TUPLE_LOCK_FLAG_FIND_LAST_VERSION as u8,
                            &mut tmfd,
                        );
                        match locked {
                            pg_sys::TM_Result::TM_Ok => {
                                tid = (*self.locked).tts_tid;
                                from = self.locked;
                            }
                            pg_sys::TM_Result::TM_SelfModified => {
                                already_modified(tmfd.cmax, cid);
                                scan.close();
                                return Some(Updated::NoRow);
                            }
                            pg_sys::TM_Result::TM_Deleted => {
                                scan.close();
                                return Some(Updated::NoRow);
                            }
                            other => pgrx::error!("unexpected table_tuple_lock status: {other}"),
                        }
                    }
                    other => pgrx::error!("unexpected table_tuple_update status: {other}"),
                }
            }
        }
    }

    /// The table's indexes, as `ExecOpenIndices` opened them.
    fn indexes(&self) -> &[pg_sys::Relation] {
        // SAFETY: the result relation is `open`'s; its index array holds ri_NumIndices
        // open relations (and may be null when there are none).
        unsafe {
            let n = (*self.rri).ri_NumIndices as usize;
            if n == 0 {
                return &[];
            }
            std::slice::from_raw_parts((*self.rri).ri_IndexRelationDescs, n)
        }
    }

    /// Column `name` of the row last written (None: NULL).
    pub(crate) fn value(&self, name: &str) -> Option<Datum> {
        // SAFETY: the slot holds the row written, a row of this relation.
        unsafe { slot_value(self.rel, self.slot, name) }
    }

    /// The row last written as a value of the table's row type (a composite
    /// datum in the current memory context).
    pub(crate) fn row(&self) -> Datum {
        // SAFETY: the slot holds the row written; the datum is a copy.
        unsafe { pg_sys::ExecFetchSlotHeapTupleDatum(self.slot) }
    }

    /// Releases the executor state and relations; their locks stay to the
    /// end of the transaction (released there all at once, which costs less
    /// than releasing each index's here, as `ExecCloseIndices` would).
    pub(crate) fn close(self) {
        // SAFETY: everything was made by `open` and is released once, here.
        unsafe {
            for index in self.indexes() {
                pg_sys::index_close(*index, pg_sys::NoLock as pg_sys::LOCKMODE);
            }
            pg_sys::ExecResetTupleTable((*self.estate).es_tupleTable, false);
            pg_sys::FreeExecutorState(self.estate);
            pg_sys::table_close(self.rel, pg_sys::NoLock as pg_sys::LOCKMODE);
        }
    }
}

/// Column `name` of the row in `slot`, a slot of `rel`'s rows.
///
/// # Safety
/// `rel` is open and `slot` holds one of its rows.
unsafe fn slot_value(
    rel: pg_sys::Relation,
    slot: *mut pg_sys::TupleTableSlot,
    name: &str,
) -> Option<Datum> {
    let att = attnum(rel, name).unwrap_or_else(|| panic!("column \"{name}\" is missing")) - 1;
    if usize::from((*slot).tts_nvalid as u16) <= att {
        pg_sys::slot_getsomeattrs_int(slot, att as i32 + 1);
    }
    (!*(*slot).tts_isnull.add(att)).then(|| *(*slot).tts_values.add(att))
}

/// A row updated by a later command of this transaction (a trigger's,
/// say): what ExecUpdate reports. Returns when this command updated it.
fn already_modified(cmax: pg_sys::CommandId, cid: pg_sys::CommandId) {
    if cmax != cid {
        crate::pg::error::fail_hint(
            PgSqlErrorCode::ERRCODE_TRIGGERED_DATA_CHANGE_VIOLATION,
            "tuple to be updated was already modified by an operation triggered by the current command".into(),
            "Consider using an AFTER trigger instead of a BEFORE trigger to propagate changes to other rows.",
        );
    }
}

/// A row changed by a transaction that committed after this one's snapshot,
/// under REPEATABLE READ or SERIALIZABLE: what ExecUpdate reports.
fn serialization_failure(deleted: bool) -> ! {
    crate::pg::error::fail(
        PgSqlErrorCode::ERRCODE_T_R_SERIALIZATION_FAILURE,
        format!(
            "could not serialize access due to concurrent {}",
            if deleted { "delete" } else { "update" }
        ),
    )
}
