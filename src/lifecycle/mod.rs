//! The deliberate exceptions to append-only (sql/12_lifecycle.sql): the
//! primitives that remove, rewrite and move stored events, each through the
//! store's guard (`store::guard::sanctioned`) for one statement of its own,
//! each writing its `es.audit` row in the same transaction.
//!
//! May import: `pg`, `store`. The functions users call (argument checks,
//! locks, snapshots, markers) are PL/pgSQL in `sql/12_lifecycle.sql`.

pub(crate) mod change;

#[cfg(any(test, feature = "pg_test"))]
mod tests;
