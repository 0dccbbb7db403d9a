//! Projections: the registry, the SQL entry points, catch-up of async
//! projections (and the background worker that drives it), inline
//! projections run after each append, and the built-in materializer.
//!
//! May import: `pg`, `evolution` (handlers get upcast events), `store`, `aggregates`, `settings`. SQL:
//! `sql/07_projections.sql`.

pub(crate) mod after_append;
pub(crate) mod api;
pub(crate) mod catch_up;
pub(crate) mod handler;
pub(crate) mod inline;
pub(crate) mod materialize;
pub(crate) mod registry;
pub(crate) mod worker;

#[cfg(any(test, feature = "pg_test"))]
mod tests;
