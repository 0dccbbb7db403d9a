-- The append functions are implemented in Rust (src/append.rs). They run with
-- the extension owner's rights so that the tables can stay closed to direct
-- writes, and with a pinned search_path so that nothing a caller creates can
-- change what they do.

CREATE FUNCTION es.append_event(
    stream_id        text,
    event_type       text,
    data             jsonb,
    expected_version bigint DEFAULT NULL,
    metadata         jsonb  DEFAULT NULL,
    event_id         uuid   DEFAULT NULL,
    stream_type      text   DEFAULT NULL
) RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'es_append_event';

COMMENT ON FUNCTION es.append_event(text, text, jsonb, bigint, jsonb, uuid, text) IS
    'Appends one event; expected_version NULL = any, 0 = new stream, n = stream must be at n (else SQLSTATE 40001). Returns the stream''s new version.';

CREATE FUNCTION es.append_events(
    stream_id        text,
    events           jsonb,
    expected_version bigint DEFAULT NULL,
    stream_type      text   DEFAULT NULL
) RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'es_append_events';

COMMENT ON FUNCTION es.append_events(text, jsonb, bigint, text) IS
    'Appends an array of {"type", "data", "metadata"?, "id"?} to one stream, all or nothing. Returns the stream''s new version.';

-- The append statements move es.streams.chain_hash with this (src/store/chain.rs).
CREATE FUNCTION es._chain(prev bytea, prev_version bigint, stream_type text, digests bytea)
RETURNS bytea
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'es_chain';

CREATE FUNCTION es.append_multi(batches jsonb)
RETURNS TABLE (stream_id text, version bigint, global_position bigint)
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
ROWS 10
AS 'MODULE_PATHNAME', 'es_append_multi';

COMMENT ON FUNCTION es.append_multi(jsonb) IS
    'Appends to several streams at once, all or nothing: batches is an array of {"stream_id", "events", "expected_version"?, "stream_type"?}. One row per event, in the order given, with the version and global_position it got.';

-- Message DB's write_message, for the pg_eventsource_message_db layer
-- (integrations/message_db): its checks in its order and words, Message DB's
-- mapping of metadata and NULL data, an id already taken refused; returns the
-- message's 0-based position (src/compat/message_db.rs).
CREATE FUNCTION es._append_message(
    id               text,
    stream_name      text,
    message_type     text,
    data             jsonb,
    metadata         jsonb,
    expected_version bigint
) RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'es_append_message';
