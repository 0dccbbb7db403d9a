//! Operations have no Rust either: `es.stats()` (`sql/08_stats.sql`),
//! `es.verify()` (`sql/09_verify.sql`, with two helpers in
//! `store::chain` and `projections::materialize`) and the privilege helpers
//! (`sql/10_privileges.sql`). Their in-backend tests live here.

#[cfg(any(test, feature = "pg_test"))]
mod tests;
#[cfg(any(test, feature = "pg_test"))]
mod tests_privileges;
