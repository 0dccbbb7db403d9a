//! PostgreSQL glue that knows nothing about events: SPI with kept plans,
//! planless reads through a btree index and one-row writes without a plan,
//! V1 function arguments and results, errors with a SQLSTATE,
//! subtransactions and memory contexts, jsonb in its binary form, roles and
//! the sandbox for user code, calling user functions, background-worker
//! registration, shared memory for the preloaded library, waking a
//! background process through its latch, JSON text.
//!
//! May import: pgrx and std only. Everything else builds on it; nothing
//! here imports the domain (`store`, `aggregates`, `projections`,
//! `notifications`, `settings`).

pub(crate) mod bgworker;
pub(crate) mod call;
pub(crate) mod decimal;
pub(crate) mod error;
pub(crate) mod fmgr;
pub(crate) mod index_scan;
pub(crate) mod json_text;
pub(crate) mod json_value;
pub(crate) mod jsonb;
pub(crate) mod jsonb_build;
pub(crate) mod roles;
pub(crate) mod shmem;
pub(crate) mod spi;
pub(crate) mod table_write;
pub(crate) mod tables;
pub(crate) mod wakeup;
pub(crate) mod xact;

#[cfg(any(test, feature = "pg_test"))]
mod tests;
