//! Cold storage: `es.archived_events` (sql/12_lifecycle.sql) holds the
//! events of archived streams. Readers of one stream (es.read_stream,
//! es.load) read it too; the Rust ones only once it has ever held a row, so
//! a store that never archived pays nothing for it.

use pgrx::pg_sys;

/// Whether `es.archived_events` may hold rows: false when it is missing (a
/// database not updated yet) or its heap has no page, which holds for every
/// snapshot (pages appear with the first insert, whether or not it commits,
/// and VACUUM removes them only once their rows are gone for everyone).
pub(crate) fn in_use() -> bool {
    let oid = crate::pg::tables::relation(c"archived_events");
    if oid == pg_sys::Oid::INVALID {
        return false;
    }
    // SAFETY: opens an existing relation with the lock a query on it takes,
    // kept to transaction end as a query's is; reads its size, closes it.
    unsafe {
        let rel = pg_sys::table_open(oid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let blocks = pg_sys::RelationGetNumberOfBlocksInFork(rel, pg_sys::ForkNumber::MAIN_FORKNUM);
        pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
        blocks > 0
    }
}
