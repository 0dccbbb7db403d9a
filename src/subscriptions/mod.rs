//! Subscriptions have no Rust: named consumers, their checkpoints, consumer
//! groups and row-level security are plain SQL and PL/pgSQL in
//! `sql/08_subscriptions.sql`, reading `es.events` below the read horizon
//! (`store::position`). Their in-backend tests live here.

#[cfg(any(test, feature = "pg_test"))]
mod tests;
