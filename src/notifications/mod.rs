//! Notifications on the channel `es_events`: the transaction callback that
//! sends one per committing transaction that appended, its payload, and the
//! relay (a background process per database) that sends it when another
//! notifying commit holds PostgreSQL's notification lock, and the
//! short-lived process that announces the read horizon where no relay does;
//! where the library is not preloaded, a relay started on demand that takes
//! the payloads from a table (`outbox`).
//!
//! May import: `pg` (also to wake the projection worker at commit),
//! `settings`, `store` (what the transaction appended, the horizon
//! registry). Inside: `notify` uses `channel`, `relay`, `outbox`
//! and `announcer`; `relay`, `outbox` and `announcer` use `channel`.

pub(crate) mod announcer;
pub(crate) mod channel;
pub(crate) mod notify;
pub(crate) mod outbox;
pub(crate) mod relay;

#[cfg(any(test, feature = "pg_test"))]
mod tests;
