//! Global positions that follow transaction ids.
//!
//! A position is `(xid8 + offset) << 20 | n`: the appending transaction's
//! 64-bit id, shifted, plus a counter within the transaction. A reader may
//! hand out every event of every transaction whose id is below its snapshot's
//! `xmin` (they have all ended), and nothing at or above it, so
//! `es.read_horizon()` is `(xmin + offset) << 20` and a reader paging by
//! position can never skip an event that commits later: any such event
//! belongs to a transaction at or above the horizon, so its position is too.
//! Writers never wait on each other for this.
//!
//! `offset` is 0 unless the events were restored from another cluster (whose
//! transaction ids were higher): then the first append in this cluster records
//! an offset that puts new positions after every restored one
//! (`es.position_base`, one row per cluster system identifier).

use crate::kept_plan;
use crate::spi;
use crate::validate::fail;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::Cell;

/// Bits of a position that count events within one transaction.
pub const COUNTER_BITS: u32 = 20;
pub const MAX_EVENTS_PER_TRANSACTION: u64 = (1 << COUNTER_BITS) - 1;
const MAX_BASE: u64 = 1 << (63 - COUNTER_BITS);

thread_local! {
    /// (transaction id, next counter, shifted base) of the current transaction.
    static TXN: Cell<(u64, u64, i64)> = const { Cell::new((0, 0, 0)) };
    /// The offset read from a committed `es.position_base` row, and that table's oid.
    static OFFSET: Cell<Option<(i64, pg_sys::Oid)>> = const { Cell::new(None) };
    static CALLBACK_REGISTERED: Cell<bool> = const { Cell::new(false) };
}

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
    c"SELECT xid_offset, 'es.position_base'::pg_catalog.regclass::pg_catalog.oid
        FROM es.position_base WHERE system_identifier = $1",
    [pg_sys::INT8OID]
);

kept_plan!(
    LOCK_OFFSETS,
    c"LOCK TABLE es.position_base IN SHARE ROW EXCLUSIVE MODE",
    []
);

kept_plan!(
    CREATE_OFFSET,
    c"INSERT INTO es.position_base (system_identifier, xid_offset)
      SELECT $1, GREATEST(0, COALESCE((SELECT max(global_position) >> 20 FROM es.events), 0) + 1
                              - pg_snapshot_xmin(pg_current_snapshot())::text::bigint)
",
    [pg_sys::INT8OID]
);

pub fn system_identifier() -> i64 {
    unsafe { pg_sys::GetSystemIdentifier() as i64 }
}

/// The offset for this cluster. Must be called inside an SPI connection.
fn offset() -> i64 {
    if let Some((off, _)) = OFFSET.with(|o| o.get()) {
        return off;
    }
    let sysid = Some(pg_sys::Datum::from(system_identifier()));
    if READ_OFFSET.run(&[sysid], false) == 1 {
        let off = spi::value_i64(0, 1).unwrap_or(0);
        let oid = pg_sys::Oid::from(spi::value_i64(0, 2).unwrap_or(0) as u32);
        if !CALLBACK_REGISTERED.with(|c| c.replace(true)) {
            unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(relcache_changed), 0.into()) };
        }
        OFFSET.with(|o| o.set(Some((off, oid))));
        return off;
    }
    // First append in this cluster (or in a database restored from another
    // one): record the offset. The lock makes concurrent first appends wait
    // for the one that records it instead of racing on the insert; after it,
    // a fresh snapshot sees whatever the previous holder committed. Not
    // cached: the row is not committed yet, and only a committed row may be
    // shared by every backend.
    LOCK_OFFSETS.run(&[], false);
    if READ_OFFSET.run(&[sysid], false) != 1 {
        CREATE_OFFSET.run(&[sysid], false);
        READ_OFFSET.run(&[sysid], false);
    }
    spi::value_i64(0, 1).unwrap_or(0)
}

/// Reserves `n` consecutive positions in the current transaction and returns
/// the first. Must be called inside an SPI connection.
pub fn reserve(n: u64) -> i64 {
    let xid = unsafe { pg_sys::GetTopFullTransactionId() }.value;
    let (mut cur_xid, mut next, mut base) = TXN.with(|t| t.get());
    if cur_xid != xid {
        let b = xid as i128 + offset() as i128;
        if b >= MAX_BASE as i128 {
            fail(
                PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
                format!("transaction id {xid} is beyond the range of global positions"),
            );
        }
        (cur_xid, next, base) = (xid, 1, (b as i64) << COUNTER_BITS);
    }
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
