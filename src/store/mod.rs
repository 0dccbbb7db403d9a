//! The event store: the append path, global positions, stream versions,
//! event ids, argument rules, reading `es.events` rows, the extension's
//! tables, the hash chain over each stream, what the transaction
//! appended, and the read horizon (the registry of appending transactions).
//!
//! May import: `pg`, `settings`, `evolution` (schemas checked on append). What a transaction appended is kept here
//! (`appended`) for the commit's notification to take. Tables, indexes and the read
//! functions are SQL: `sql/01_tables.sql` to `sql/04_read.sql` and `sql/14_guards.sql` (loaded last); the guard that keeps `es.events` append-only and its one sanctioned way past (`guard`), cold storage (`archive`).

pub(crate) mod append;
pub(crate) mod append_direct;
pub(crate) mod appended;
pub(crate) mod archive;
pub(crate) mod args;
pub(crate) mod chain;
pub(crate) mod event;
pub(crate) mod guard;
pub(crate) mod horizon;
pub(crate) mod ids;
pub(crate) mod position;
pub(crate) mod stream_version;

#[cfg(any(test, feature = "pg_test"))]
mod tests;
