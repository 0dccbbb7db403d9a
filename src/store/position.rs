//! Global positions that follow transaction ids.
//!
//! A position is `(xid8 + offset) << 20 | n`: the appending transaction's
//! 64-bit id, shifted, plus a counter within the transaction. A reader may
//! hand out every event of every transaction whose id is below the oldest
//! transaction that can still append, and nothing at or above it: that is
//! the read horizon (`horizon`: with the library preloaded, the oldest
//! transaction of this database that has appended; otherwise the snapshot's
//! `xmin`). A reader paging by position can never skip an event that commits
//! later: any such event belongs to a transaction at or above the horizon,
//! so its position is too. Writers never wait on each other for this.
//!
//! `offset` is 0 unless the events were restored from another cluster, whose
//! transaction ids may be higher than this one's: consumers' stored positions
//! from there must stay below everything appended here. `es.position_base`
//! holds one row per cluster system identifier; `CREATE EXTENSION` writes this
//! cluster's row, so ordinary appends only read it (never wait on each other).
//! A restore that brings another cluster's row flags ours (a trigger, see
//! `sql/14_guards.sql`); the first append after that raises our offset above
//! every restored position, under a table lock so concurrent first appends
//! agree on it. Until then `es.read_horizon()` hands out all restored events.
//!
//! Order within a stream. A transaction may take its id early (an earlier
//! write) and then wait for a stream's row behind a younger transaction that
//! appends to the same stream and commits first; its own positions would
//! then be lower than those of the stream's previous version. So every
//! append also requires the stream's `last_position` to be below its first
//! position; when it is not, `reserve_after_lock` moves the transaction's
//! positions onto the id of a subtransaction started there and then, which
//! is newer than that of every transaction that has ended (the previous
//! writer among them). Positions above the transaction's own id keep the
//! horizon argument intact: they are handed out only after every id below
//! them, the transaction's own included, has ended.

use crate::kept_plan;
use crate::pg::error::fail;
use crate::pg::spi;
use crate::store::horizon;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::Cell;

/// Bits of a position that count events within one transaction.
pub(crate) const COUNTER_BITS: u32 = 20;
pub(crate) const MAX_EVENTS_PER_TRANSACTION: u64 = (1 << COUNTER_BITS) - 1;
const MAX_BASE: u64 = 1 << (63 - COUNTER_BITS);

thread_local! {
    /// (transaction id, next counter, shifted base) of the current transaction.
    static TXN: Cell<(u64, u64, i64)> = const { Cell::new((0, 0, 0)) };
    /// The offset read from a committed `es.position_base` row, and that table's oid.
    static OFFSET: Cell<Option<(i64, pg_sys::Oid)>> = const { Cell::new(None) };
    static CALLBACK_REGISTERED: Cell<bool> = const { Cell::new(false) };
}

/// # Safety
/// Called by PostgreSQL as a registered relcache invalidation callback.
#[pg_guard]
unsafe extern "C-unwind" fn relcache_changed(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    // Dropping and recreating the extension, or a restore, replaces the table.
    OFFSET.with(|o| {
        if let Some((_, cached)) = o.get() {
            if relid == pg_sys::InvalidOid || relid == cached {
                o.set(None);
            }
        }
    });
}

kept_plan!(
    READ_OFFSET,
    c"SELECT xid_offset, restored_foreign,
             'es.position_base'::pg_catalog.regclass::pg_catalog.oid
        FROM es.position_base WHERE system_identifier = $1",
    [pg_sys::INT8OID]
);

kept_plan!(
    LOCK_OFFSETS,
    c"LOCK TABLE es.position_base IN SHARE ROW EXCLUSIVE MODE",
    []
);

// Puts this cluster's positions after every stored one. Any transaction that
// can still append has an id at or above the snapshot's xmin.
kept_plan!(
    RAISE_OFFSET,
    c"UPDATE es.position_base
         SET xid_offset = GREATEST(xid_offset,
                 COALESCE((SELECT pg_catalog.max(global_position) >> 20 FROM es.events), 0) + 1
                 - pg_snapshot_xmin(pg_current_snapshot())::text::bigint),
             restored_foreign = false, recorded_at = pg_catalog.now()
       WHERE system_identifier = $1
      RETURNING xid_offset",
    [pg_sys::INT8OID]
);

kept_plan!(
    ADD_OFFSET_ROW,
    c"INSERT INTO es.position_base (system_identifier) VALUES ($1)",
    [pg_sys::INT8OID]
);

pub(crate) fn system_identifier() -> i64 {
    // SAFETY: a plain read of the cluster's system identifier.
    unsafe { pg_sys::GetSystemIdentifier() as i64 }
}

/// The offset of this cluster's committed `es.position_base` row, cached;
/// `None` while a restore has flagged it (or it is missing). Must be called
/// inside an SPI connection (unless cached).
fn committed_offset(read_only: bool) -> Option<i64> {
    if let Some((off, _)) = OFFSET.with(|o| o.get()) {
        return Some(off);
    }
    let sysid = Some(pg_sys::Datum::from(system_identifier()));
    if READ_OFFSET.run(&[sysid], read_only) == 1 && spi::value_bool(0, 2) == Some(false) {
        let off = spi::value_i64(0, 1).unwrap_or(0);
        let oid = pg_sys::Oid::from(spi::value_i64(0, 3).unwrap_or(0) as u32);
        if !CALLBACK_REGISTERED.with(|c| c.replace(true)) {
            // SAFETY: registers a static callback once per backend (`CALLBACK_REGISTERED`).
            unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(relcache_changed), 0.into()) };
        }
        OFFSET.with(|o| o.set(Some((off, oid))));
        return Some(off);
    }
    None
}

kept_plan!(
    MAX_POSITION,
    c"SELECT pg_catalog.max(global_position) FROM es.events",
    []
);

crate::v1_function_info!(pg_finfo_es_horizon_position);

/// es._horizon_position(xid bigint): the first position transaction id
/// `xid` can have, so a read horizon as a position. After a restore from
/// another cluster and before the first append here, past every stored
/// event (the restored ones are all below it).
///
/// # Safety
/// Called by PostgreSQL's function manager for the SQL signature in `sql/05_horizon.sql`
/// (STRICT: the argument is not NULL).
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_horizon_position(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let xid = pgrx::fcinfo::pg_getarg::<i64>(fcinfo, 0).unwrap_or(0);
    // A horizon is a fact about es.events: for those who may read it (as
    // when this was a query over it).
    let events = crate::pg::tables::relation(c"events");
    // SAFETY: a privilege check of the current user on an existing relation; the error
    // call raises 42501 with PostgreSQL's own message.
    unsafe {
        let ok = pg_sys::pg_class_aclcheck(
            events,
            pg_sys::GetUserId(),
            pg_sys::ACL_SELECT as pg_sys::AclMode,
        );
        if ok != pg_sys::AclResult::ACLCHECK_OK {
            pg_sys::aclcheck_error(ok, pg_sys::ObjectType::OBJECT_TABLE, c"events".as_ptr());
        }
    }
    // the cached offset needs no SPI connection (readers call this once per call)
    let position = match OFFSET.with(|o| o.get()) {
        Some((off, _)) => (xid + off) << COUNTER_BITS,
        None => spi::connected(|| match committed_offset(true) {
            Some(off) => (xid + off) << COUNTER_BITS,
            None => {
                MAX_POSITION.run(&[], true);
                spi::value_i64(0, 1).unwrap_or(0) + 1
            }
        }),
    };
    pg_sys::Datum::from(position)
}

/// The offset for this cluster. Must be called inside an SPI connection.
fn offset() -> i64 {
    if let Some(off) = committed_offset(false) {
        return off;
    }
    let sysid = Some(pg_sys::Datum::from(system_identifier()));
    // Restored from another cluster (or our row is missing): raise the offset
    // once. The lock makes concurrent first appends wait for the one that
    // does it; after it, a fresh snapshot sees what that one committed. Not
    // cached: this row is not committed yet.
    LOCK_OFFSETS.run(&[], false);
    if READ_OFFSET.run(&[sysid], false) == 1 && spi::value_bool(0, 2) == Some(false) {
        return spi::value_i64(0, 1).unwrap_or(0);
    }
    if RAISE_OFFSET.run(&[sysid], false) != 1 {
        ADD_OFFSET_ROW.run(&[sysid], false);
        RAISE_OFFSET.run(&[sysid], false);
    }
    spi::value_i64(0, 1).expect("es.position_base has this cluster's row")
}

/// Reserves `n` consecutive positions in the current transaction and returns
/// the first. Must be called inside an SPI connection.
pub(crate) fn reserve(n: u64) -> i64 {
    // SAFETY: assigns or reads the top transaction's id; appends run in a read-write
    // transaction (checked first).
    let xid = unsafe { pg_sys::GetTopFullTransactionId() }.value;
    let (cur_xid, _, _) = TXN.with(|t| t.get());
    if cur_xid != xid {
        // The first append of this transaction: it holds the read horizon
        // from here on. A reader may already have moved past an id taken
        // early (`horizon`): then start from a new one.
        let base = if horizon::register(xid) {
            let id = new_id();
            horizon::moved(id);
            id
        } else {
            xid
        };
        start_at(xid, base);
    }
    take(n)
}

/// Reserves `n` positions after every position of every transaction that
/// has ended: from the id of a subtransaction started now. The rest of the
/// transaction's positions follow on from there. Must be called inside an
/// SPI connection, after `reserve` in the same transaction.
pub(crate) fn reserve_after_lock(n: u64) -> i64 {
    let id = new_id();
    // SAFETY: reads the top transaction's id, assigned by now.
    let top = unsafe { pg_sys::GetTopFullTransactionId() }.value;
    start_at(top, id);
    take(n)
}

/// An id newer than that of every transaction that has ended and than any
/// horizon handed out so far: a subtransaction's, begun and released here.
fn new_id() -> u64 {
    // SAFETY: a subtransaction begun and released here, which is what gives it a new id.
    unsafe {
        let cxt = pg_sys::CurrentMemoryContext;
        let owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        let x = pg_sys::GetCurrentFullTransactionId().value;
        pg_sys::ReleaseCurrentSubTransaction();
        pg_sys::MemoryContextSwitchTo(cxt);
        pg_sys::CurrentResourceOwner = owner;
        x
    }
}

/// The transaction `top` takes its next positions from id `id`.
fn start_at(top: u64, id: u64) {
    let b = id as i128 + offset() as i128;
    if b >= MAX_BASE as i128 {
        fail(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!("transaction id {id} is beyond the range of global positions"),
        );
    }
    let base = (b as i64) << COUNTER_BITS;
    if TXN.with(|t| t.get()).0 != top {
        horizon::held_at(base | 1);
    }
    TXN.with(|t| t.set((top, 1, base)));
}

/// The next `n` positions of the current transaction.
fn take(n: u64) -> i64 {
    let (cur_xid, next, base) = TXN.with(|t| t.get());
    if next + n - 1 > MAX_EVENTS_PER_TRANSACTION {
        fail(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!(
                "a transaction can append at most {MAX_EVENTS_PER_TRANSACTION} events; commit in smaller batches"
            ),
        );
    }
    TXN.with(|t| t.set((cur_xid, next + n, base)));
    base | next as i64
}

/// This cluster's system identifier, which keys `es.position_base`.
#[pg_extern(stable, parallel_safe, schema = "es", name = "_system_identifier")]
fn system_identifier_sql() -> i64 {
    system_identifier()
}

/// Makes every backend re-read `es.position_base` (called by the restore
/// trigger on it; its own updates would not reach cached offsets).
#[pg_extern(volatile, schema = "es", name = "_position_base_changed")]
fn position_base_changed() {
    crate::pg::tables::changed(c"position_base");
}
