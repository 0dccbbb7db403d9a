//! What the router extension (`router/`, SQL over PL/Proxy) needs from this
//! library and SQL cannot tell: whether the caller is inside a transaction
//! block. PL/Proxy commits each remote call on its own, so a writing call
//! is honest only as the whole of its transaction: never inside
//! `BEGIN ... COMMIT` (a later ROLLBACK could not undo it) and never a second
//! time in one transaction. SQL alone cannot tell an explicit block from an
//! implicit transaction: with the extended query protocol that every driver
//! uses for parameters, `statement_timestamp()` already differs from
//! `transaction_timestamp()` in autocommit.
//!
//! The router database loads this library without the store's extension.

use crate::pg::error::fail_hint;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::Cell;

thread_local! {
    /// The local transaction id of this backend's last routed writing call.
    static LAST_WRITE: Cell<Option<pg_sys::LocalTransactionId>> = const { Cell::new(None) };
}

/// The current transaction's local id: unique among this backend's
/// transactions, assigned even to those that write nothing here.
fn local_transaction() -> pg_sys::LocalTransactionId {
    // SAFETY: MyProc is this backend's PGPROC, set before any function runs.
    unsafe { (*pg_sys::MyProc).lxid }
}

crate::v1_function_info!(pg_finfo_es_router_write);

/// es._routed_write(function_name text, done boolean). Before the remote
/// call (`done` false): raises 25001 when the router may not make a writing
/// call now. After it returned (`done` true): notes that this transaction
/// made one. A call that failed wrote nothing and is not noted.
///
/// # Safety
/// Called by PostgreSQL's function manager for the SQL signature in
/// `router/pg_eventsource_router--*.sql` (STRICT: the argument is not NULL).
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_router_write(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let name = pgrx::fcinfo::pg_getarg::<&str>(fcinfo, 0).unwrap_or("es.append_event");
    let lxid = local_transaction();
    if pgrx::fcinfo::pg_getarg::<bool>(fcinfo, 1).unwrap_or(false) {
        LAST_WRITE.with(|w| w.set(Some(lxid)));
        return pg_sys::Datum::from(0);
    }
    // SAFETY: reads the transaction state of this backend.
    if unsafe { pg_sys::GetCurrentTransactionNestLevel() } > 1 {
        // A subtransaction (an EXCEPTION block, a SAVEPOINT) reports itself
        // as a block whatever its top level is, and the top level's state is
        // private to PostgreSQL: refuse rather than guess.
        fail_hint(
            PgSqlErrorCode::ERRCODE_ACTIVE_SQL_TRANSACTION,
            format!(
                "{name} cannot run inside a subtransaction (an EXCEPTION block or a SAVEPOINT) on \
                 a router: its partition commits it at once, and whether a ROLLBACK could still \
                 undo the transaction around it is not known here"
            ),
            "Call it outside EXCEPTION blocks, as a statement of its own; retry after 40001 \
             in the client.",
        );
    }
    // SAFETY: as above.
    if unsafe { pg_sys::IsTransactionBlock() } {
        fail_hint(
            PgSqlErrorCode::ERRCODE_ACTIVE_SQL_TRANSACTION,
            format!(
                "{name} cannot run inside a transaction block on a router: its partition commits \
                 it at once, so a ROLLBACK could not undo it"
            ),
            "Call it as a statement of its own, outside BEGIN ... COMMIT (autocommit). \
             To write several events of one stream atomically, use es.append_events.",
        );
    }
    if LAST_WRITE.with(|w| w.get()) == Some(lxid) {
        fail_hint(
            PgSqlErrorCode::ERRCODE_ACTIVE_SQL_TRANSACTION,
            format!(
                "{name} is this transaction's second writing call through the router: the first \
                 one has already committed on its partition, and the two could not be undone \
                 together"
            ),
            "Make one writing call per statement. To write several events of one stream \
             atomically, use es.append_events.",
        );
    }
    pg_sys::Datum::from(0)
}
