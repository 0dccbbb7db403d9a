//! Operations have no Rust either: `es.stats()` (`sql/09_stats.sql`),
//! `es.verify()` (`sql/10_verify.sql`, with two helpers in
//! `store::chain` and `projections::materialize`) and the privilege helpers
//! (`sql/11_privileges.sql`). Their in-backend tests live here.

#[cfg(any(test, feature = "pg_test"))]
mod tests;
#[cfg(any(test, feature = "pg_test"))]
mod tests_privileges;
