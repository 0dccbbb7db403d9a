//! Other stores' APIs over pg_eventsource's: what their SQL layers (SQL-only
//! extensions under `integrations/`) cannot do fast enough in SQL.

pub(crate) mod message_db;
