//! Aggregates: definitions (`es.define_aggregate`, cached per backend),
//! native reducers with exact decimals, fold functions, `es.load`,
//! `es.fold` (in version order, or in any order and in parallel:
//! `unordered`), and the snapshots the append trigger takes.
//!
//! May import: `pg`, `evolution` (folds read upcast events), `store`. SQL: `sql/06_aggregates.sql`.

pub(crate) mod definitions;
pub(crate) mod fold;
pub(crate) mod index_reads;
pub(crate) mod reducer;
pub(crate) mod snapshot;
pub(crate) mod unordered;

#[cfg(any(test, feature = "pg_test"))]
mod tests;
