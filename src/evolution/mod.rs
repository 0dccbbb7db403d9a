//! Schema evolution: event schemas checked on append, upcasters that read
//! old events as their type's current version.
//!
//! May import: `pg`. Below the store: the append path checks schemas
//! through `validate`, and every reader (SQL functions, folds, snapshots,
//! projections) upcasts through `upcast`. SQL: `sql/03_evolution.sql`.
pub(crate) mod json_schema;
pub(crate) mod registry;
pub(crate) mod steps;
#[cfg(any(test, feature = "pg_test"))]
mod tests;
pub(crate) mod upcast;
pub(crate) mod validate;
