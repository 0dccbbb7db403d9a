-- Storage. Rows are written only by the extension's functions; see 14_guards.sql.

-- The schema is created here, not named in the control file: a schema that
-- CREATE EXTENSION makes for the control file is not a member of the
-- extension and would outlive DROP EXTENSION. Created here, it is a member,
-- so DROP EXTENSION removes it with everything in it; and if a schema "es"
-- already exists, CREATE EXTENSION fails instead of writing into it.
CREATE SCHEMA es;
COMMENT ON SCHEMA es IS 'pg_eventsource: event store';

CREATE TABLE es.events (
    global_position bigint      NOT NULL PRIMARY KEY,
    stream_id       text        NOT NULL,
    stream_type     text        NOT NULL,
    version         bigint      NOT NULL,
    event_type      text        NOT NULL,
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL DEFAULT '{}',
    event_id        uuid        NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    -- the shape data was written in (sql/03_evolution.sql); readers see every
    -- event upcast to its type's current version. Last, where the upgrade
    -- from 0.2.0 adds it (without rewriting the table).
    schema_version  integer     NOT NULL DEFAULT 1,
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version),
    CONSTRAINT events_event_id_key UNIQUE (event_id)
);
COMMENT ON TABLE es.events IS
    'One row per event, append-only. global_position increases in the order es.read_all hands events out; it is sparse.';

-- Filtered reads of the global order (es.read_all with event_types / stream_types).
CREATE INDEX events_event_type_position_idx ON es.events (event_type, global_position);
CREATE INDEX events_stream_type_position_idx ON es.events (stream_type, global_position);

-- Cold storage: the events of archived streams, as they were in es.events
-- (sql/12_lifecycle.sql). es.read_stream and es.load read them too. ALTER
-- TABLE es.archived_events SET TABLESPACE moves it (its indexes: ALTER INDEX).
CREATE TABLE es.archived_events (LIKE es.events INCLUDING DEFAULTS);
ALTER TABLE es.archived_events
    ADD CONSTRAINT archived_events_pkey PRIMARY KEY (global_position),
    ADD CONSTRAINT archived_events_stream_version_key UNIQUE (stream_id, version);
COMMENT ON TABLE es.archived_events IS
    'Events of archived streams (es.archive_stream). es.read_stream and es.load read them; es.read_all and es.poll do not.';

-- What the lifecycle functions (sql/12_lifecycle.sql) left behind, per stream: where its stored versions now
-- begin and the hash chain up to there (so es.verify can check the rest),
-- whether it is hard-deleted or archived. Rows only for streams changed.
CREATE TABLE es.stream_lifecycle (
    stream_id     text        NOT NULL PRIMARY KEY,
    first_version bigint      NOT NULL DEFAULT 1 CHECK (first_version >= 1),
    chain_base    bytea,
    deleted       boolean     NOT NULL DEFAULT false,
    archived      boolean     NOT NULL DEFAULT false,
    updated_at    timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- One row per stream. Every append updates its stream's row: the row lock
-- orders writers of one stream, and nothing else. Room is left on each page
-- so those updates stay HOT (no indexed column changes).
CREATE TABLE es.streams (
    stream_id   text        NOT NULL PRIMARY KEY,
    stream_type text        NOT NULL,
    version     bigint      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    -- global_position of the stream's last event: an append must place its
    -- events after it (see src/store/position.rs, "order within a stream"). Last,
    -- where the upgrade from 0.1.0 adds it.
    last_position bigint    NOT NULL DEFAULT 0,
    -- SHA-256 chain over the stream's events (src/store/chain.rs), checked by
    -- es.verify(); NULL for a stream that predates it (an upgrade).
    chain_hash  bytea
) WITH (fillfactor = 70);
CREATE INDEX streams_stream_type_idx ON es.streams (stream_type);

-- Offset added to transaction ids to form global positions, per cluster
-- (system identifier); see src/store/position.rs. This cluster's row is written at
-- CREATE EXTENSION. A restore that brings another cluster's row sets
-- restored_foreign on ours, and the next append moves our positions past
-- every restored one.
CREATE TABLE es.position_base (
    system_identifier bigint      NOT NULL PRIMARY KEY,
    xid_offset        bigint      NOT NULL DEFAULT 0 CHECK (xid_offset >= 0),
    restored_foreign  boolean     NOT NULL DEFAULT false,
    recorded_at       timestamptz NOT NULL DEFAULT now()
);

-- pg_dump keeps the contents of these tables.
SELECT pg_catalog.pg_extension_config_dump('es.events', '');
SELECT pg_catalog.pg_extension_config_dump('es.archived_events', '');
SELECT pg_catalog.pg_extension_config_dump('es.stream_lifecycle', '');
SELECT pg_catalog.pg_extension_config_dump('es.streams', '');
SELECT pg_catalog.pg_extension_config_dump('es.position_base', '');

-- Notifications where no relay has shared memory (the library not preloaded):
-- the payloads of committed appends waiting for the relay started on demand,
-- and that relay's pid (src/notifications/outbox.rs). Unlogged: they matter
-- only while the server runs. Only the extension's owner reads or writes them.
CREATE UNLOGGED TABLE es.notify_outbox (payload text NOT NULL);
CREATE UNLOGGED TABLE es.notify_outbox_relay (pid integer NOT NULL);
REVOKE ALL ON es.notify_outbox, es.notify_outbox_relay FROM PUBLIC;
