//! Notifications on the channel `es_events`: the transaction callback that
//! sends one per committing transaction that appended, its payload, and the
//! relay (a background process per database) that sends it when another
//! notifying commit holds PostgreSQL's notification lock.
//!
//! May import: `pg`, `settings`. Inside: `notify` uses `channel` and
//! `relay`; `relay` uses `channel`.

pub(crate) mod channel;
pub(crate) mod notify;
pub(crate) mod relay;

#[cfg(any(test, feature = "pg_test"))]
mod tests;
